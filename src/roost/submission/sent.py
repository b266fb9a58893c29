"""The Sent copy: what was relayed, filed in the account's \\Sent mailbox.

There is no SMTP extension by which a submission server tells a client that it
files sent mail itself (Dovecot and Gmail document it as server behaviour; clients
have a per-account "place a copy in Sent" switch), so README says to turn that off.
The copy is stored through ``Account.append``, the one delivery path, with \\Seen.
"""

from __future__ import annotations

import logging

from roost.store.base import Store
from roost.store.values import MessageSource, NewMessage

log = logging.getLogger("roost.submission")

SENT = "\\Sent"


async def save_sent_copy(store: Store, account_name: str, source: MessageSource) -> str | None:
    """File ``source`` in the \\Sent mailbox (or one named "Sent"); the mailbox name,
    or None when there is none or storing failed. Never raises: the message is sent
    already, and the client's reply says so."""
    try:
        account = await store.open_account(account_name)
    except Exception:
        log.exception("sent copy for %s: cannot open the account", account_name)
        return None
    try:
        mailboxes = await account.list_mailboxes()
        by_use = [m.name for m in mailboxes if m.special_use == SENT]
        by_name = [m.name for m in mailboxes if m.name.casefold() == "sent"]
        names = by_use or by_name
        if not names:
            log.warning("sent copy for %s: no \\Sent mailbox", account_name)
            return None
        await account.append(names[0], [NewMessage(source, flags=frozenset({"\\Seen"}))])
        return names[0]
    except Exception:
        log.exception("sent copy for %s failed", account_name)
        return None
    finally:
        await account.close()
