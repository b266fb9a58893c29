"""Listening Unix-domain sockets (LMTP): created with their mode and group in place.

The socket is bound under a temporary name in its directory, given its mode and group,
then renamed to its final name: no client ever sees it with the umask's permissions.
A socket file left by a server that died is replaced; one that a running server still
answers on is not (``ListenError``: another Roost serves it).
"""

from __future__ import annotations

import contextlib
import grp
import os
import socket
import stat
from pathlib import Path

from roost.config import ConfigError

# sun_path holds 108 bytes on Linux, 104 on the BSDs, with the terminating NUL.
MAX_PATH = 103


class UnixSocketError(Exception):
    """The socket cannot be created; the message names the path and the reason."""


def bind_unix_socket(path: Path, mode: int, group: str | None, backlog: int) -> socket.socket:
    """A listening, non-blocking socket at ``path``."""
    if len(os.fsencode(path)) > MAX_PATH:
        raise UnixSocketError(f"cannot listen on unix:{path}: the path is too long for a socket")
    gid = -1
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ConfigError(
                f"invalid value for 'lmtp.socket_group': no group {group!r}"
            ) from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        _remove_stale(path)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(temporary))
            os.chmod(temporary, mode)
            if gid != -1:
                os.chown(temporary, -1, gid)
            os.rename(temporary, path)
            sock.listen(backlog)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
    except OSError as error:
        raise UnixSocketError(f"cannot listen on unix:{path}: {error.strerror or error}") from None
    return sock


def _remove_stale(path: Path) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise UnixSocketError(f"cannot listen on unix:{path}: a file that is not a socket is there")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # nobody answers: left by a server that is gone
        return
    finally:
        probe.close()
    raise UnixSocketError(f"cannot listen on unix:{path}: another server is listening there")
