"""A client's picture of a selected mailbox, built only from what the server told it.

Tests use it the way a real client works: sequence numbers and UIDs kept from EXISTS,
EXPUNGE, VANISHED and FETCH responses. If the server ever renumbers without telling,
or tells twice, the picture drifts from the store and the test sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_EXISTS = re.compile(rb"\* (\d+) EXISTS")
_EXPUNGE = re.compile(rb"\* (\d+) EXPUNGE")
_VANISHED = re.compile(rb"\* VANISHED (\(EARLIER\) )?([\d:,]+)")
_FETCH = re.compile(rb"\* (\d+) FETCH \((.*)\)")
_UID = re.compile(rb"UID (\d+)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_MODSEQ = re.compile(rb"MODSEQ \((\d+)\)")


def parse_uid_set(text: bytes) -> list[int]:
    uids: list[int] = []
    for part in text.split(b","):
        low, _, high = part.partition(b":")
        first, last = int(low), int(high or low)
        uids.extend(range(min(first, last), max(first, last) + 1))
    return uids


@dataclass
class MailboxModel:
    uids: list[int | None] = field(default_factory=list)  # None: exists, UID not known yet
    flags: dict[int, frozenset[str]] = field(default_factory=dict)
    highest_modseq: int = 0

    def apply(self, lines: list[bytes]) -> None:
        for line in lines:
            self.apply_line(line)

    def apply_line(self, line: bytes) -> None:
        if match := _EXISTS.fullmatch(line):
            count = int(match.group(1))
            assert count >= len(self.uids), f"EXISTS went down: {line!r}"
            self.uids.extend([None] * (count - len(self.uids)))
        elif match := _EXPUNGE.fullmatch(line):
            index = int(match.group(1)) - 1
            assert 0 <= index < len(self.uids), f"EXPUNGE out of range: {line!r}"
            uid = self.uids.pop(index)
            if uid is not None:
                self.flags.pop(uid, None)
        elif match := _VANISHED.fullmatch(line):
            gone = set(parse_uid_set(match.group(2)))
            earlier = match.group(1) is not None
            known = {u for u in self.uids if u is not None}
            if not earlier:
                # Each UID is a message this session was told of: known, or one of the
                # new ones (at the end, UIDs above all known) whose UID it has not
                # fetched yet; which one is not knowable, so a client refetches them.
                for uid in sorted(u for u in gone if u not in known):
                    self._drop_unknown(uid, line)
            self.uids = [u for u in self.uids if u not in gone]
            for uid in gone:
                self.flags.pop(uid, None)
        elif match := _FETCH.fullmatch(line):
            msn = int(match.group(1))
            body = match.group(2)
            assert 1 <= msn <= len(self.uids), f"FETCH out of range: {line!r}"
            uid_match = _UID.search(body)
            if uid_match:
                uid = int(uid_match.group(1))
                assert self.uids[msn - 1] in (None, uid), f"UID changed under {line!r}"
                self.uids[msn - 1] = uid
            uid_here = self.uids[msn - 1]
            flags_match = _FLAGS.search(body)
            if flags_match and uid_here is not None:
                words = flags_match.group(1).decode().split()
                self.flags[uid_here] = frozenset(w for w in words if w != "\\Recent")
            modseq_match = _MODSEQ.search(body)
            if modseq_match:
                self.highest_modseq = max(self.highest_modseq, int(modseq_match.group(1)))

    def _drop_unknown(self, uid: int, line: bytes) -> None:
        """Remove the not-yet-identified message that must have had ``uid``: one placed
        after every known smaller UID and before every known larger one."""
        after = 0
        for index, known in enumerate(self.uids):
            if known is not None and known < uid:
                after = index + 1
        for index in range(after, len(self.uids)):
            current = self.uids[index]
            if current is None:
                del self.uids[index]
                return
            assert current < uid, f"VANISHED of a UID that cannot be here: {line!r}"
        raise AssertionError(f"VANISHED of a message never announced: {line!r}")

    def stored_silently(self, msn: int, mode: str, flags: set[str]) -> None:
        """After STORE .SILENT the server says nothing: the client applies it itself."""
        uid = self.uids[msn - 1]
        if uid is None:
            return
        current = set(self.flags.get(uid, frozenset()))
        if mode == "+":
            current |= flags
        elif mode == "-":
            current -= flags
        else:
            current = set(flags)
        self.flags[uid] = frozenset(current)

    def state(self) -> list[tuple[int, frozenset[str]]]:
        assert None not in self.uids, "messages whose UID the client never learnt"
        return [(u, self.flags.get(u, frozenset())) for u in self.uids if u is not None]
