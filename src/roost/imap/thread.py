"""THREAD algorithms of RFC 5256 §3: ORDEREDSUBJECT and REFERENCES, as pure functions.

Input: the threading fields of the messages a search found (``ThreadFields``, in UID
order, which is also message-number order). Output: the threads as response nodes,
each message named by ``number(uid)`` — its message number, or its UID for UID THREAD.

Everything here is iterative: a malicious References chain may be thousands of
messages deep, and no step recurses on it. Sent dates tie-break on the message number
(RFC 5256 §2.2); base subjects compare with i;ascii-casemap (ASCII case-insensitive).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime

from roost.imap.wire.responses import ThreadNode
from roost.store.base import ThreadFields

_SPACES = re.compile(r"[ \t\r\n]+")
_BLOB = r"\[[^\[\]]*\] *"  # subj-blob = "[" *BLOBCHAR "]" *WSP
# subj-leader = *subj-blob subj-refwd; subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
_LEADER = re.compile(rf"(?:{_BLOB})*(?:re|fwd?) *(?:{_BLOB})?:", re.IGNORECASE)
_LEADING_BLOB = re.compile(_BLOB)
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")

Number = Callable[[int], int]


def base_subject(subject: str) -> tuple[str, bool]:
    """RFC 5256 §2.1 base subject of a decoded subject, and whether the extraction
    removed a subj-refwd, a "(fwd)" trailer or a [fwd: ...] wrapper (a reply or
    forward, §3 REFERENCES step 5)."""
    text = _SPACES.sub(" ", subject)  # (1) tabs, continuations, runs of spaces
    reply = False
    while True:
        while True:  # (2) subj-trailer = "(fwd)" / WSP, repeatedly
            if text.endswith(" "):
                text = text[:-1]
            elif text[-5:].lower() == "(fwd)":
                text = text[:-5]
                reply = True
            else:
                break
        while True:  # (3)-(5)
            if text.startswith(" "):  # subj-leader = ... / WSP
                text = text[1:]
                continue
            leader = _LEADER.match(text)
            if leader is not None:
                text = text[leader.end() :]
                reply = True
                continue
            blob = _LEADING_BLOB.match(text)
            if blob is not None and text[blob.end() :].strip(" "):  # (4) keep a non-empty base
                text = text[blob.end() :]
                continue
            break
        # (6) subj-fwd-hdr "[fwd:" ... subj-fwd-trl "]": unwrap, then again from (2)
        if text[:5].lower() == "[fwd:" and text.endswith("]"):
            text = text[5:-1]
            reply = True
            continue
        return text, reply


def subject_key(base: str) -> str:
    """i;ascii-casemap: base subjects equal but for ASCII case are the same subject."""
    return base.translate(_ASCII_UPPER)


# ---- ORDEREDSUBJECT -------------------------------------------------------------------


def ordered_subject(messages: Sequence[ThreadFields], number: Number) -> tuple[ThreadNode, ...]:
    """RFC 5256 §3 ORDEREDSUBJECT: one thread per base subject; its earliest message is
    the parent of all the others, in sent-date order; threads in the order of their
    first messages."""
    groups: dict[str, list[ThreadFields]] = {}
    for message in sorted(messages, key=_date_key):
        groups.setdefault(subject_key(base_subject(message.subject)[0]), []).append(message)
    threads = sorted(groups.values(), key=lambda group: _date_key(group[0]))
    return tuple(
        ThreadNode(number(first.uid), tuple(ThreadNode(number(m.uid)) for m in rest))
        for first, *rest in threads
    )


def _date_key(message: ThreadFields) -> tuple[datetime, int]:
    return message.sent, message.uid


# ---- REFERENCES -----------------------------------------------------------------------


class _Container:
    """A message, or a placeholder ("dummy") for one only referenced, in the tree."""

    __slots__ = ("children", "message", "parent")

    def __init__(self, message: ThreadFields | None = None) -> None:
        self.message = message
        self.parent: _Container | None = None
        self.children: list[_Container] = []

    def is_descendant_of(self, other: _Container) -> bool:
        node = self.parent
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False

    def adopt(self, child: _Container) -> None:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)

    def first_message(self) -> ThreadFields:
        """The message itself, or a dummy's first child's (dummies always have one)."""
        node = self
        while node.message is None:
            node = node.children[0]
        return node.message


def references(messages: Sequence[ThreadFields], number: Number) -> tuple[ThreadNode, ...]:
    """RFC 5256 §3 REFERENCES (the "jwz" algorithm) with its base-subject merging."""
    containers = _link(messages)
    roots = [c for c in containers if c.parent is None]  # (2)
    root = _Container()
    for container in roots:
        container.parent = root
    root.children = roots
    _prune(root)  # (3)
    for container in root.children:  # (4) a dummy sorts by its earliest child
        if container.message is None:
            container.children.sort(key=_container_key)
    root.children.sort(key=_container_key)
    _merge_subjects(root)  # (5)
    _sort_siblings(root)  # (6)
    return _nodes(root, number)


def _link(messages: Sequence[ThreadFields]) -> list[_Container]:
    """Step 1: containers linked by References (or the first In-Reply-To)."""
    by_id: dict[str, _Container] = {}
    containers: list[_Container] = []
    for message in messages:
        container = by_id.get(message.message_id) if message.message_id else None
        if container is not None and container.message is None:
            container.message = message  # it was a placeholder until now
        else:
            # New, or a duplicate Message-ID: the duplicate gets a unique id of its own.
            container = _Container(message)
            containers.append(container)
            if message.message_id and message.message_id not in by_id:
                by_id[message.message_id] = container
        refs = message.references or ((message.in_reply_to,) if message.in_reply_to else ())
        previous: _Container | None = None
        for ref in refs:  # (A) each reference is the parent of the next
            linked = by_id.get(ref)
            if linked is None:
                linked = by_id[ref] = _Container()
                containers.append(linked)
            if (
                previous is not None
                and linked.parent is None
                and linked is not previous
                and not previous.is_descendant_of(linked)
            ):
                previous.adopt(linked)
            previous = linked
        # (B) the last reference is the parent; a parent from a truncated References of
        # another message gives way. No link that would make a loop.
        if container.parent is not None:
            container.parent.children.remove(container)
            container.parent = None
        if (
            previous is not None
            and previous is not container
            and not previous.is_descendant_of(container)
        ):
            previous.adopt(container)
    return containers


def _prune(root: _Container) -> None:
    """Step 3: drop childless dummies; splice a dummy's children into its place,
    except at the top level unless it has just one child."""
    pending = [root]
    while pending:
        parent = pending.pop()
        kept: list[_Container] = []
        queue = list(reversed(parent.children))
        while queue:
            child = queue.pop()
            if child.message is None and not child.children:
                continue
            if child.message is None and (parent is not root or len(child.children) == 1):
                queue.extend(reversed(child.children))  # examined next, in order
                continue
            child.parent = parent
            kept.append(child)
            pending.append(child)
        parent.children = kept


def _container_key(container: _Container) -> tuple[datetime, int]:
    return _date_key(container.first_message())


def _merge_subjects(root: _Container) -> None:
    """Step 5: top-level threads with the same base subject are gathered together."""

    def subject(container: _Container) -> str:
        return subject_key(base_subject(container.first_message().subject)[0])

    def is_reply(container: _Container) -> bool:
        return container.message is not None and base_subject(container.message.subject)[1]

    table: dict[str, _Container] = {}
    for container in root.children:  # (B)
        key = subject(container)
        if not key:
            continue
        known = table.get(key)
        if (
            known is None
            or (known.message is not None and container.message is None)
            or (is_reply(known) and not is_reply(container))
        ):
            table[key] = container
    for container in list(root.children):  # (C)
        if container.parent is not root:
            continue  # merged into another thread already
        key = subject(container)
        if not key:
            continue
        known = table[key]
        if known is container:
            continue
        if known.message is None and container.message is None:
            for child in list(container.children):
                known.adopt(child)
            root.children.remove(container)
            container.parent = None
        elif known.message is None or (is_reply(container) and not is_reply(known)):
            known.adopt(container)
        else:
            dummy = _Container()
            position = root.children.index(known)
            root.children[position] = dummy
            dummy.parent = root
            known.parent = None
            dummy.adopt(known)
            dummy.adopt(container)
            table[key] = dummy


def _sort_siblings(root: _Container) -> None:
    """Step 6: every set of siblings by sent date, the deepest first (a dummy, only
    at the top, sorts by its first child)."""
    order: list[_Container] = []
    pending = [root]
    while pending:
        node = pending.pop()
        order.append(node)
        pending.extend(node.children)
    for node in reversed(order):
        if len(node.children) > 1:
            node.children.sort(key=_container_key)


def _nodes(root: _Container, number: Number) -> tuple[ThreadNode, ...]:
    """The tree as response nodes, built bottom-up without recursion."""
    order: list[_Container] = []
    pending = [root]
    while pending:
        node = pending.pop()
        order.append(node)
        pending.extend(node.children)
    built: dict[int, ThreadNode] = {}
    for node in reversed(order):
        children = tuple(built.pop(id(child)) for child in node.children)
        label = None if node.message is None else number(node.message.uid)
        built[id(node)] = ThreadNode(label, children)
    return built[id(root)].children
