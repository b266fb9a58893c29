"""Sieve at delivery: which scripts run for a recipient, and what they decided.

For each recipient the site's ``[sieve] before`` scripts run, then the account's active
script, then ``[sieve] after`` (Pigeonhole's sieve_before/sieve_after): the next script
runs only while the message is still kept (implicit or explicit keep), the actions of
every script that ran are gathered, and header edits of one script are what the next one
sees. A script that fails at run time counts as a keep and is logged
(RFC 5228 §2.10.6): mail is never lost because of a script.

The interpreter is pure and synchronous; it runs on a thread, and the few questions that
need the store (was this duplicate seen, was this sender answered, the text of an
included script) are answered on the event loop through ``_StoreHost``. Nothing is carried
out here: ``deliver`` stores, sends and records only after every script ended.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, TypeVar

from roost import sieve
from roost.config.sections import SieveSettings
from roost.delivery.outbound import Relay
from roost.sieve.host import passed_through
from roost.store.errors import NoSuchScript
from roost.store.interface import Account
from roost.store.values import SieveScript

log = logging.getLogger("roost.sieve")

T = TypeVar("T")
VACATION = "vacation"
DUPLICATE = "duplicate"


@dataclass(slots=True)
class SieveContext:
    """What filtering needs from the server: the settings, the relay, compiled site scripts."""

    settings: SieveSettings
    relay: Relay | None
    domains: tuple[str, ...] = ()  # [delivery] domains: "alice" is also alice@each
    _files: dict[Path, tuple[float, sieve.CompiledScript | None]] = field(default_factory=dict)

    @property
    def limits(self) -> sieve.Limits:
        s = self.settings
        return sieve.Limits(
            max_instructions=s.max_instructions,
            max_redirects=s.max_redirects,
            max_actions=s.max_actions,
        )

    def site_script(self, path: Path) -> sieve.CompiledScript | None:
        """A global script file, compiled once per modification time; None when it is
        missing or does not compile (logged: a site script's error must not stop mail)."""
        try:
            mtime = path.stat().st_mtime
        except OSError as error:
            log.error("sieve: cannot read the site script %s: %s", path, error.strerror)
            return None
        cached = self._files.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        compiled: sieve.CompiledScript | None = None
        try:
            compiled = sieve.compile_script(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, sieve.SieveSyntaxError) as error:
            log.error("sieve: the site script %s does not compile: %s", path, error)
        self._files[path] = (mtime, compiled)
        return compiled

    def global_script(self, name: str) -> sieve.CompiledScript | None:
        directory = self.settings.global_dir
        if directory is None or "/" in name or name.startswith("."):
            return None
        path = directory / f"{name}.sieve"
        return self.site_script(path) if path.exists() else None


@dataclass(frozen=True, slots=True)
class Decision:
    """What the scripts decided, to be carried out by ``deliver``."""

    actions: list[sieve.Action]
    data: bytes  # the message after the header edits
    errors: list[str]


async def compiled_form(account: Account, script: SieveScript) -> sieve.CompiledScript:
    """The stored compiled form; compiled again (and stored) when its version is another.
    Raises ``SieveSyntaxError`` when the source no longer compiles."""
    try:
        if script.compiled_version == sieve.FORMAT_VERSION:
            return sieve.CompiledScript.from_json(script.compiled)
    except sieve.CompiledVersionError:
        pass
    compiled = sieve.compile_script(script.source)
    await account.update_compiled(
        script.name, script.source, compiled.to_json(), sieve.FORMAT_VERSION
    )
    return compiled


def own_addresses(account_name: str, recipient: str, domains: Sequence[str] = ()) -> list[str]:
    """The user's addresses for vacation (RFC 5230 §4.5): the envelope recipient, the
    account name when it is an address, else the name at each of the site's domains."""
    addresses = [recipient] if recipient else []
    if "@" in account_name:
        addresses.append(account_name)
    else:
        addresses += [f"{account_name}@{domain}" for domain in domains]
    return addresses


class _StoreHost:
    """``sieve.Host`` for one recipient, called from the interpreter's thread."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        context: SieveContext,
        account: Account,
        mailboxes: set[str],
        addresses: Sequence[str],
        loops: frozenset[str],
    ) -> None:
        self.loop = loop
        self.context = context
        self.account = account
        self.mailboxes = mailboxes
        self.addresses = addresses
        self.loops = loops
        self.started = datetime.now().astimezone()

    def _await(self, coroutine: Coroutine[object, object, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def mailbox_exists(self, mailbox: str) -> bool:
        return ("INBOX" if mailbox.upper() == "INBOX" else mailbox) in self.mailboxes

    def duplicate_seen(self, duplicate_id: str) -> bool:
        now = self.started.timestamp()
        return self._await(self.account.sieve_tracked(DUPLICATE, duplicate_id, now))

    def vacation_responded(self, sender: str, handle: str) -> bool:
        key = vacation_key(sender, handle)
        return self._await(self.account.sieve_tracked(VACATION, key, self.started.timestamp()))

    def now(self) -> datetime:
        return self.started

    def own_addresses(self) -> Sequence[str]:
        return self.addresses

    def score_source(self, test: Literal["spamtest", "virustest"]) -> sieve.ScoreSource | None:
        s = self.context.settings
        if test == "spamtest":
            return sieve.ScoreSource(s.spam_header, s.spam_max_score) if s.spam_header else None
        return sieve.ScoreSource(s.virus_header, s.virus_max_score) if s.virus_header else None

    def redirect_loops(self, address: str) -> bool:
        return address.strip("<>").lower() in self.loops

    def load_script(
        self, name: str, location: Literal["personal", "global"]
    ) -> sieve.CompiledScript | None:
        if location == "global":
            return self.context.global_script(name)
        return self._await(self._personal(name))

    async def _personal(self, name: str) -> sieve.CompiledScript | None:
        try:
            return await compiled_form(self.account, await self.account.get_script(name))
        except (NoSuchScript, sieve.SieveSyntaxError):
            return None


def vacation_key(sender: str, handle: str) -> str:
    return f"{sender.strip('<>').lower()}\0{handle}"


async def decide(
    context: SieveContext,
    account: Account,
    data: bytes,
    *,
    sender: str,
    recipient: str,
) -> Decision:
    """Run the before, personal and after scripts for one recipient of ``data``."""
    scripts: list[tuple[str, sieve.CompiledScript]] = []
    for path in context.settings.before:
        if (compiled := context.site_script(path)) is not None:
            scripts.append((str(path), compiled))
    personal = await account.active_script()
    user_errors: list[str] = []
    if personal is not None:
        try:
            scripts.append(
                (f"{account.name}:{personal.name}", await compiled_form(account, personal))
            )
        except sieve.SieveSyntaxError as error:
            user_errors.append(f"{personal.name}: {error}")
    for path in context.settings.after:
        if (compiled := context.site_script(path)) is not None:
            scripts.append((str(path), compiled))
    if not scripts:
        return Decision([sieve.Keep((), True)], data, user_errors)
    mailboxes = {box.name for box in await account.list_mailboxes()}
    envelope = sieve.Envelope(sender, recipient)
    addresses = own_addresses(account.name, recipient, context.domains)
    loop = asyncio.get_running_loop()
    gathered: list[sieve.Action] = []
    keep: sieve.Keep | None = sieve.Keep((), True)
    errors = user_errors
    for name, compiled in scripts:
        message = sieve.ParsedMessage(data)
        host = _StoreHost(loop, context, account, mailboxes, addresses, passed_through(message))
        result = await asyncio.to_thread(
            sieve.run, compiled, message, envelope, host, context.limits
        )
        if result.status == "error":
            errors.append(f"{name}: {result.error}")
            log.warning(
                "sieve: script %s failed for %s, keeping the message: %s",
                name,
                recipient or account.name,
                result.error,
            )
            continue  # as if the script had only kept the message
        data = sieve.apply_header_edits(data, result.header_edits)
        keep = None
        for action in result.actions:
            if isinstance(action, sieve.Keep):
                keep = action
            else:
                gathered.append(action)
        if keep is None:
            break  # the message is no longer kept: later scripts do not run
    return Decision(gathered + ([keep] if keep is not None else []), data, errors)


def sieve_context(
    settings: SieveSettings, hostname: str, domains: Sequence[str] = ()
) -> SieveContext:
    """The filtering context of a server or of ``roost deliver``."""
    relay = None
    if settings.relay is not None:
        relay = Relay(
            settings.relay.host,
            settings.relay.port,
            settings.helo_name or hostname,
            settings.relay_timeout,
            ssl.create_default_context() if settings.relay_starttls else None,
        )
    return SieveContext(settings, relay, tuple(domains))


async def store_script(account: Account, name: str, source: str) -> sieve.CompiledScript:
    """Compile ``source`` and keep it with its compiled form (ManageSieve PUTSCRIPT,
    ``roost sieve put``); raises ``SieveSyntaxError`` with nothing stored."""
    compiled = sieve.compile_script(source)
    await account.put_script(name, source, compiled.to_json(), sieve.FORMAT_VERSION)
    return compiled


async def test_script(
    context: SieveContext,
    account: Account,
    compiled: sieve.CompiledScript,
    data: bytes,
    *,
    sender: str,
    recipient: str,
) -> sieve.Result:
    """What ``compiled`` would do with ``data`` for this account; nothing is carried out
    and nothing is remembered (``roost sieve test``)."""
    mailboxes = {box.name for box in await account.list_mailboxes()}
    message = sieve.ParsedMessage(data)
    host = _StoreHost(
        asyncio.get_running_loop(),
        context,
        account,
        mailboxes,
        own_addresses(account.name, recipient, context.domains),
        passed_through(message),
    )
    envelope = sieve.Envelope(sender, recipient)
    return await asyncio.to_thread(sieve.run, compiled, message, envelope, host, context.limits)
