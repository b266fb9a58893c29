"""Sieve tests: each takes the run state, the compiled node and the frame, and answers."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime

from roost.sieve.actions import SieveRuntimeError, TrackDuplicate
from roost.sieve.addresses import address_part, parts
from roost.sieve.compiled import Node
from roost.sieve.dates import date_part, header_date, parse_zone
from roost.sieve.message import html_to_text
from roost.sieve.spec import ADDRESS_FIELDS
from roost.sieve.state import FLAGS_VARIABLE, Frame, State, select_index

_NUMBER = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?")


def evaluate(state: State, node: Node, frame: Frame) -> bool:
    state.tick(node)
    return _TESTS[node.name](state, node, frame)


def _strings(node: Node, index: int) -> tuple[str, ...]:
    value = node.args[index]
    assert isinstance(value, tuple)
    return value


def _string(node: Node, index: int) -> str:
    value = node.args[index]
    assert isinstance(value, str)
    return value


def _true(state: State, node: Node, frame: Frame) -> bool:
    return True


def _false(state: State, node: Node, frame: Frame) -> bool:
    return False


def _not(state: State, node: Node, frame: Frame) -> bool:
    return not evaluate(state, node.tests[0], frame)


def _allof(state: State, node: Node, frame: Frame) -> bool:
    return all(evaluate(state, test, frame) for test in node.tests)


def _anyof(state: State, node: Node, frame: Frame) -> bool:
    return any(evaluate(state, test, frame) for test in node.tests)


def _exists(state: State, node: Node, frame: Frame) -> bool:
    names = state.expand_all(_strings(node, 0), frame)
    return all(state.raw_headers(name) for name in names)


def _size(state: State, node: Node, frame: Frame) -> bool:
    limit = node.args[0]
    assert isinstance(limit, int)
    size = state.message.size
    return size > limit if node.tags["size"] == "over" else size < limit


def _header(state: State, node: Node, frame: Frame) -> bool:
    names = state.expand_all(_strings(node, 0), frame)
    values: list[str] = []
    for name in names:
        values.extend(select_index(state.headers(name), node))
    if not values and node.tags.get("match") != "count":
        return False
    return state.match(node, values, _strings(node, 1), frame)


def _address(state: State, node: Node, frame: Frame) -> bool:
    names = state.expand_all(_strings(node, 0), frame)
    part = str(node.tags.get("part", "all"))
    values: list[str] = []
    for name in names:
        if name.lower() not in ADDRESS_FIELDS:
            raise SieveRuntimeError(f"field {name!r} holds no addresses", node.line)
        if "index" in node.tags:
            addresses: list[str] = []
            for value in select_index(state.headers(name), node):
                addresses.extend(state.addresses(value))
            values.extend(parts(addresses, part))
        else:
            values.extend(state.address_parts(name, part))
    if not values and node.tags.get("match") != "count":
        return False
    return state.match(node, values, _strings(node, 1), frame)


def _envelope(state: State, node: Node, frame: Frame) -> bool:
    part = str(node.tags.get("part", "all"))
    addresses: list[str] = []
    for name in state.expand_all(_strings(node, 0), frame):
        match name.lower():
            case "from":
                addresses.append(state.envelope.mail_from)
            case "to":
                addresses.append(state.envelope.rcpt_to)
            case "auth":
                if state.envelope.auth:
                    addresses.append(state.envelope.auth)
            case _:
                raise SieveRuntimeError(f"unknown envelope part {name!r}", node.line)
    # RFC 5228 §5.4: the null reverse-path is the empty string; it has no parts but :all.
    values = [
        value
        for address in addresses
        if (value := address_part(address, part) if address else ("" if part == "all" else None))
        is not None
    ]
    if not values and node.tags.get("match") != "count":
        return False
    return state.match(node, values, _strings(node, 1), frame)


def _string_test(state: State, node: Node, frame: Frame) -> bool:
    values = state.expand_all(_strings(node, 0), frame)
    if node.tags.get("match") == "count":
        # RFC 5229 §5: empty strings are not counted.
        values = [value for value in values if value]
    return state.match(node, values, _strings(node, 1), frame)


def flag_set(text: str) -> list[str]:
    """The flags of a flag variable: split on spaces, without repeats (RFC 5232 §3)."""
    seen: dict[str, str] = {}
    for flag in text.split():
        seen.setdefault(flag.lower(), flag)
    return list(seen.values())


def _hasflag(state: State, node: Node, frame: Frame) -> bool:
    names = node.args[0]
    if isinstance(names, tuple):
        texts = [state.lookup(name, frame) for name in state.expand_all(names, frame)]
    else:
        texts = [state.flags.get(FLAGS_VARIABLE, "")]
    flags = [flag for text in texts for flag in flag_set(text)]
    return state.match(node, flags, _strings(node, 1), frame)


def _body(state: State, node: Node, frame: Frame) -> bool:
    transform = node.tags.get("transform", "text")
    if transform == "raw":
        values = [state.message.body_raw()]
    elif transform == "content":
        wanted = [kind.lower() for kind in state.expand_all(node.tags["content"] or (), frame)]  # type: ignore[arg-type]
        values = [
            part.text
            for part in state.message.body_parts()
            if any(_content_matches(part.content_type, kind) for kind in wanted)
        ]
    else:
        values = [
            html_to_text(part.text) if part.content_type == "text/html" else part.text
            for part in state.message.body_parts()
            if part.content_type.startswith("text/")
        ]
    return state.match(node, values, _strings(node, 0), frame)


def _content_matches(content_type: str, wanted: str) -> bool:
    """RFC 5173 §5.2: "" is any part, "text" any text/*, "text/plain" that type only."""
    if not wanted:
        return True
    if "/" in wanted:
        return content_type == wanted
    return content_type.partition("/")[0] == wanted


def _zoned(state: State, node: Node, frame: Frame, moment: datetime) -> datetime | None:
    zone = node.tags.get("zone")
    if zone == "originalzone":
        return moment
    if isinstance(zone, str):
        target = parse_zone(state.expand(zone, frame))
        if target is None:
            raise SieveRuntimeError(f"invalid zone {zone!r}", node.line)
        return moment.astimezone(target)
    return moment.astimezone(state.host.now().tzinfo)


def _date(state: State, node: Node, frame: Frame) -> bool:
    field_name = state.expand(_string(node, 0), frame)
    part = state.expand(_string(node, 1), frame)
    values: list[str] = []
    for value in select_index(state.headers(field_name), node):
        moment = header_date(value, field_name)
        if moment is None:
            continue
        zoned = _zoned(state, node, frame, moment)
        text = None if zoned is None else date_part(zoned, part)
        if text is None:
            raise SieveRuntimeError(f"unknown date part {part!r}", node.line)
        values.append(text)
    if not values and node.tags.get("match") != "count":
        return False
    return state.match(node, values, _strings(node, 2), frame)


def _currentdate(state: State, node: Node, frame: Frame) -> bool:
    part = state.expand(_string(node, 0), frame)
    zoned = _zoned(state, node, frame, state.host.now())
    text = None if zoned is None else date_part(zoned, part)
    if text is None:
        raise SieveRuntimeError(f"unknown date part {part!r}", node.line)
    return state.match(node, [text], _strings(node, 1), frame)


def _mailboxexists(state: State, node: Node, frame: Frame) -> bool:
    names = state.expand_all(_strings(node, 0), frame)
    return all(state.host.mailbox_exists(name) for name in names)


def duplicate_id(handle: str, value: str) -> str:
    """A stable id for (handle, value); the host stores ids, never message content."""
    return hashlib.sha256(f"{handle}\0{value}".encode()).hexdigest()


def _duplicate(state: State, node: Node, frame: Frame) -> bool:
    tags = node.tags
    source = tags.get("source")
    if source == "uniqueid":
        value: str | None = state.expand(str(tags["uniqueid"]), frame)
    else:
        name = state.expand(str(tags["header"]), frame) if source == "header" else "message-id"
        found = state.raw_headers(name)
        value = found[0].strip() if found else None
    if value is None:
        # RFC 7352 §3.1: no header field, no duplicate and nothing tracked.
        return False
    handle = state.expand(str(tags.get("handle", "")), frame)
    seconds = tags.get("seconds")
    limits = state.limits
    period = limits.default_duplicate_seconds if not isinstance(seconds, int) else seconds
    period = min(period, limits.max_duplicate_seconds)
    identifier = duplicate_id(handle, value)
    seen = state.host.duplicate_seen(identifier)
    # RFC 7352 §3.3: :last restarts the period at every sighting; otherwise only the first.
    if not seen or tags.get("last"):
        state.builder.add(TrackDuplicate(identifier, period), node.line)
    return seen


def score(state: State, test: str, percent: bool) -> str:
    """RFC 5235 score: spamtest 1-10 (0-100 with :percent), virustest 1-5; "0": untested."""
    source = state.host.score_source("spamtest" if test == "spamtest" else "virustest")
    if source is None or source.max_score <= 0:
        return "0"
    values = state.raw_headers(source.header)
    number = _NUMBER.search(values[0]) if values else None
    if number is None:
        return "0"
    ratio = min(max(float(number.group()) / source.max_score, 0.0), 1.0)
    if percent:
        return str(round(ratio * 100))
    top = 10 if test == "spamtest" else 5
    return str(1 + round(ratio * (top - 1)))


def _score_test(state: State, node: Node, frame: Frame) -> bool:
    value = score(state, node.name, bool(node.tags.get("percent")))
    return state.match(node, [value], (_string(node, 0),), frame)


_TESTS: dict[str, Callable[[State, Node, Frame], bool]] = {
    "true": _true,
    "false": _false,
    "not": _not,
    "allof": _allof,
    "anyof": _anyof,
    "exists": _exists,
    "size": _size,
    "header": _header,
    "address": _address,
    "envelope": _envelope,
    "string": _string_test,
    "hasflag": _hasflag,
    "body": _body,
    "date": _date,
    "currentdate": _currentdate,
    "mailboxexists": _mailboxexists,
    "duplicate": _duplicate,
    "spamtest": _score_test,
    "virustest": _score_test,
}
