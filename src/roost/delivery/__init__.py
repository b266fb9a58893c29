"""The one delivery path for mail coming in (ARCHITECTURE decision 9): LMTP and
``roost deliver`` both resolve a recipient here, spool the message here with its trace
fields in front, and store it with ``deliver``, which calls the same ``Account.append``
as IMAP APPEND — so line endings, quota, durability and change events are the same.

Nothing here touches a socket: callers hand in a ``Store`` and a spooled message.
"""

from roost.delivery.deliver import DeliveryStatus, Envelope, Outcome, deliver, trace_fields
from roost.delivery.filtering import SieveContext, sieve_context
from roost.delivery.outbound import Relay
from roost.delivery.recipients import Target, resolve
from roost.delivery.spool import MessageSpool, SpoolFull

__all__ = [
    "DeliveryStatus",
    "Envelope",
    "MessageSpool",
    "Outcome",
    "Relay",
    "SieveContext",
    "SpoolFull",
    "Target",
    "deliver",
    "resolve",
    "sieve_context",
    "trace_fields",
]
