"""UIDONLY (RFC 9586): once enabled, messages are named by UID only, both ways.

* A command that names messages by number — FETCH, STORE, SEARCH, SORT, THREAD, COPY,
  MOVE without UID, a sequence set among search keys, QRESYNC's sequence match data —
  is refused with ``BAD [UIDREQUIRED]`` (§3.1): ``requires_uid``.
* Every FETCH response becomes ``* uid UIDFETCH (...)`` (§3.3): ``uid_form`` rewrites
  one that carries its UID (in this mode every FETCH response does: only UID
  commands run, and unsolicited ones always carry it) and drops the UID item, which
  the number now says, unless it is the only item.
* Expunges are announced as VANISHED (§3.2); ``SelectedMailbox`` does that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import cast

from roost.imap.wire import commands as c
from roost.imap.wire import search_keys as k
from roost.imap.wire.responses import FetchBatch, FetchResponse, FlagFetchBatch, Response

_NUMBERED = (c.Fetch, c.Store, c.Copy, c.Move, c.Search, c.Sort, c.Thread, c.Replace)


def requires_uid(command: c.Command) -> bool:
    """Whether ``command`` names messages by number, which UIDONLY forbids."""
    if isinstance(command, _NUMBERED) and not command.uid:
        return True
    criteria = getattr(command, "criteria", None)
    if criteria is not None and requires_uid_keys(criteria):
        return True
    return (
        isinstance(command, c.Select)
        and command.qresync is not None
        and command.qresync.known_sequence is not None
    )


def requires_uid_keys(criteria: k.SearchKey) -> bool:
    """Whether a search program names messages by number (a sequence set, not UID)."""
    return any(isinstance(key, k.Messages) and not key.uid for key in k.walk(criteria))


def uid_form(response: Response) -> Response:
    """``response`` as a UIDONLY session must see it."""
    if type(response) is FetchResponse and not response.uidfetch:
        uid = next((v for key, v in response.items if key == "UID"), None)
        if not isinstance(uid, int):
            return response
        items = tuple(item for item in response.items if item[0] != "UID") or response.items
        return FetchResponse(uid, items, uidfetch=True)
    if type(response) is FlagFetchBatch and not response.uidfetch and "UID" in response.items:
        names = tuple(name for name in response.items if name != "UID") or response.items
        return dataclasses.replace(response, items=names, numbers=response.uids, uidfetch=True)
    if type(response) is FetchBatch and not response.uidfetch and "UID" in response.items:
        at = response.items.index("UID")
        uids = cast(Sequence[int], response.columns[at].values)
        if len(response.items) == 1:  # the UID stays the only item, as above
            return dataclasses.replace(response, numbers=uids, uidfetch=True)
        labels = response.items[:at] + response.items[at + 1 :]
        columns = response.columns[:at] + response.columns[at + 1 :]
        return FetchBatch(labels, uids, columns, uidfetch=True)
    return response
