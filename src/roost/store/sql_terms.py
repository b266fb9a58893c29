"""SQL terms both backends' search and sort use alike: the flag bits of a message row,
date comparisons, INTERNALDATE's day in its own zone, the SORT keys (RFC 5256; stored in
i;unicode-casemap form, RFC 5255, so their octets are the comparator's order). The
expressions are plain SQL that SQLite and PostgreSQL read the same; the tables they
name (``m`` messages, ``a`` analyses) are the same in both schemas."""

from __future__ import annotations

from roost.store.query import DateComparison, SortField
from roost.store.sqlite.flags import ANSWERED_BIT, DELETED_BIT, DRAFT_BIT, FLAGGED_BIT, SEEN_BIT
from roost.store.values import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN

EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()
FLAG_BITS = {
    SEEN.lower(): SEEN_BIT,
    ANSWERED.lower(): ANSWERED_BIT,
    FLAGGED.lower(): FLAGGED_BIT,
    DELETED.lower(): DELETED_BIT,
    DRAFT.lower(): DRAFT_BIT,
}
COMPARE = {DateComparison.BEFORE: "<", DateComparison.ON: "=", DateComparison.SINCE: ">="}
# INTERNALDATE's calendar day in its own zone: floor((seconds + offset) / 86400).
_LOCAL = "(m.internaldate + m.tzoffset * 60)"
ARRIVAL_DAY = f"(({_LOCAL} - (({_LOCAL} % 86400) + 86400) % 86400) / 86400)"
ORDER: dict[SortField, str] = {
    SortField.ARRIVAL: "m.internaldate",
    SortField.DATE: "coalesce(a.sent_date, m.internaldate)",
    SortField.SIZE: "m.size",
    SortField.SUBJECT: "coalesce(a.sort_subject, '')",
    SortField.FROM: "coalesce(a.sort_from, '')",
    SortField.TO: "coalesce(a.sort_to, '')",
    SortField.CC: "coalesce(a.sort_cc, '')",
    SortField.DISPLAY_FROM: "coalesce(a.display_from, '')",
    SortField.DISPLAY_TO: "coalesce(a.display_to, '')",
}
MESSAGE_SORTS = frozenset({SortField.ARRIVAL, SortField.SIZE})  # need no analysis row
