"""systemd's readiness protocol (sd_notify(3)), for ``Type=notify`` units.

systemd passes ``NOTIFY_SOCKET``, the path of a Unix datagram socket (or, starting with
"@", an abstract one); a service sends newline-separated ``KEY=value`` states to it:
``READY=1`` once it is listening, ``STOPPING=1`` when it begins to shut down. Without
the variable (not under systemd) every call does nothing. A failure to send is logged,
never raised: the server must not fail because its supervisor cannot be told.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

ENVIRONMENT = "NOTIFY_SOCKET"


def notify(*states: str) -> bool:
    """Send ``states`` (e.g. "READY=1") to systemd; True when sent."""
    address = os.environ.get(ENVIRONMENT)
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(states).encode())
    except OSError as error:
        log.warning("could not notify systemd (%s): %s", address.lstrip("\0"), error)
        return False
    return True


def ready() -> bool:
    return notify("READY=1", f"MAINPID={os.getpid()}")


def stopping() -> bool:
    return notify("STOPPING=1")
