"""``[server] user`` and ``group``: bind the ports as root, then serve as that user.

The order is the whole point: a listener on 143 or 993 needs root (or
CAP_NET_BIND_SERVICE); nothing else does. So the server (or, with ``--workers``, the
supervisor, whose workers inherit its identity) binds every listener first, then calls
``drop``: supplementary groups first (``setgroups``: the user's own), then the group
(``setgid``), then the user (``setuid``) — after ``setuid`` none of the others is
allowed any more — and checks that root cannot be taken back.

Before dropping, the data directory and what lies directly in it must belong to that
user: everything the server writes afterwards it writes as that user, and a database or
directory left owned by root from an earlier run would fail later, obscurely.
``check_owner`` says which path is wrong and the ``chown`` that fixes it.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("roost.server")


class PrivilegeError(Exception):
    """The configured identity cannot be taken; the text says why and what to do."""


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary groups: the user's, as in /etc/group


def resolve(user: str, group: str | None = None) -> Identity:
    """The uid, gid and groups of ``user`` (``group`` instead of the user's primary
    group when given). PrivilegeError for an unknown name."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise PrivilegeError(f"[server] user = {user!r}: no such user") from None
    gid = entry.pw_gid
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise PrivilegeError(f"[server] group = {group!r}: no such group") from None
    groups = {gid, *(g.gr_gid for g in grp.getgrall() if user in g.gr_mem)}
    return Identity(user, entry.pw_uid, gid, tuple(sorted(groups)))


def check_owner(data_dir: Path, identity: Identity) -> None:
    """PrivilegeError unless ``data_dir`` and every entry directly in it belong to
    ``identity``'s uid."""
    fix = f"chown -R {identity.user}: {data_dir}"
    try:
        status = data_dir.stat()
    except FileNotFoundError:
        raise PrivilegeError(
            f"the data directory {data_dir} does not exist; create it for {identity.user}: "
            f"install -d -m 0700 -o {identity.user} {data_dir}"
        ) from None
    wrong = [data_dir] if status.st_uid != identity.uid else []
    wrong += [entry for entry in sorted(data_dir.iterdir()) if entry.lstat().st_uid != identity.uid]
    if wrong:
        listed = ", ".join(str(path) for path in wrong[:3]) + (" ..." if len(wrong) > 3 else "")
        raise PrivilegeError(
            f"[server] user = {identity.user!r}, but {listed} "
            f"{'is' if len(wrong) == 1 else 'are'} not owned by {identity.user} "
            f"(uid {identity.uid}); fix with: {fix}"
        )


def drop(identity: Identity) -> None:
    """Become ``identity`` for good. PrivilegeError when not root (and not already it)."""
    if os.geteuid() != 0:
        if os.geteuid() == identity.uid:
            return
        raise PrivilegeError(
            f"[server] user = {identity.user!r} needs the server started as root "
            f"(it runs as uid {os.geteuid()})"
        )
    os.setgroups(list(identity.groups))
    os.setgid(identity.gid)
    os.setuid(identity.uid)
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:  # pragma: no cover - the kernel would have to ignore setuid
        raise PrivilegeError("root could be taken back after dropping privileges")
    log.info("running as %s (uid %d, gid %d)", identity.user, identity.uid, identity.gid)


def drop_configured(user: str | None, group: str | None, data_dir: Path) -> None:
    """After binding: take on ``[server] user``/``group`` when configured."""
    if user is None:
        return
    identity = resolve(user, group)
    if os.geteuid() == 0:
        check_owner(data_dir, identity)
    drop(identity)
