"""``[server] user``/``group``: the settings, the data directory's ownership check, the
drop itself in a subprocess, and (as root) a whole server that binds and then serves
as ``nobody``."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from roost.config import ConfigError, Settings
from roost.runtime.privileges import Identity, PrivilegeError, check_owner, resolve
from tests.support.server_process import RoostProcess, write_config

pytestmark = pytest.mark.timeout(60)
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change identity")


def test_settings(tmp_path: Path) -> None:
    path = write_config(tmp_path / "roost.toml", tmp_path / "data")
    base = path.read_text()
    assert Settings.load(path).server.user is None
    path.write_text(base.replace("[server]\n", '[server]\nuser = "roost"\ngroup = "mail"\n'))
    server = Settings.load(path).server
    assert (server.user, server.group) == ("roost", "mail")
    path.write_text(base.replace("[server]\n", '[server]\ngroup = "mail"\n'))
    with pytest.raises(ConfigError, match=r"group.*needs \[server\] user"):
        Settings.load(path)


def test_resolve_names_the_unknown() -> None:
    with pytest.raises(PrivilegeError, match="no such user"):
        resolve("no-such-user-here")
    with pytest.raises(PrivilegeError, match="no such group"):
        resolve("root", "no-such-group-here")
    nobody = pwd.getpwnam("nobody")
    identity = resolve("nobody")
    assert (identity.uid, identity.gid) == (nobody.pw_uid, nobody.pw_gid)


def test_check_owner_says_what_is_wrong_and_how_to_fix_it(tmp_path: Path) -> None:
    me = Identity("me", os.getuid(), os.getgid(), ())
    other = Identity("someone", os.getuid() + 12345, os.getgid(), ())
    data = tmp_path / "data"
    with pytest.raises(PrivilegeError, match=r"does not exist.*install -d -m 0700 -o me"):
        check_owner(data, me)
    data.mkdir()
    (data / "users.db").write_text("")
    check_owner(data, me)
    with pytest.raises(PrivilegeError) as error:
        check_owner(data, other)
    assert f"{data}, {data / 'users.db'} are not owned by someone" in str(error.value)
    assert f"chown -R someone: {data}" in str(error.value)
    if os.geteuid() == 0:
        os.chown(data, other.uid, -1)
        with pytest.raises(PrivilegeError, match=f"{data / 'users.db'} is not owned by someone"):
            check_owner(data, other)


@as_root
def test_drop_in_a_subprocess() -> None:
    code = (
        "import os\n"
        "from roost.runtime.privileges import drop, resolve\n"
        "drop(resolve('nobody'))\n"
        "print(os.getuid(), os.geteuid(), os.getgid(), sorted(os.getgroups()))\n"
        "try:\n"
        "    os.setuid(0)\n"
        "except PermissionError:\n"
        "    print('root is gone')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    nobody = pwd.getpwnam("nobody")
    first, second = result.stdout.splitlines()
    uid, euid, gid, groups = first.split(" ", 3)
    assert (int(uid), int(euid), int(gid)) == (nobody.pw_uid, nobody.pw_uid, nobody.pw_gid)
    assert eval(groups) == sorted(resolve("nobody").groups)
    assert second == "root is gone"


def _runnable_by_others(program: Path) -> bool:
    """Whether a user with no group in common can execute ``program`` (and so, the
    workers' ``python -m roost worker``), and read the package beside it."""
    paths = [program, program.resolve(), *program.parents, *program.resolve().parents]
    return all(path.stat().st_mode & 0o001 for path in paths)


@as_root
@pytest.mark.parametrize("workers", [1, 2])
def test_server_binds_then_serves_as_nobody(workers: int) -> None:
    if workers > 1 and not _runnable_by_others(Path(sys.executable)):
        pytest.skip(f"nobody cannot run {sys.executable} here, as a worker must")
    # Under /tmp with mode 0755, not pytest's 0700 tmp_path: nobody must reach it.
    root = Path(tempfile.mkdtemp(prefix="roost-priv-"))
    try:
        root.chmod(0o755)
        data = root / "data"
        nobody = pwd.getpwnam("nobody")
        config = write_config(root / "roost.toml", data, workers=workers, log_level="info")
        config.write_text(config.read_text().replace("[server]\n", '[server]\nuser = "nobody"\n'))
        server = RoostProcess(config, root / "server.log")
        with pytest.raises(AssertionError, match="does not exist; create it for nobody"):
            server.start()
        data.mkdir(mode=0o700)
        (data / "stray").write_text("")  # left by root
        os.chown(data, nobody.pw_uid, nobody.pw_gid)
        server = RoostProcess(config, root / "server.log")
        with pytest.raises(AssertionError, match="stray is not owned by nobody"):
            server.start()
        os.chown(data / "stray", nobody.pw_uid, nobody.pw_gid)
        server = RoostProcess(config, root / "server.log")
        port = server.start()
        try:
            status = Path(f"/proc/{server.pid}/status").read_text()
            uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
            assert uid_line.split()[1:] == [str(nobody.pw_uid)] * 4
            with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
                assert client.recv(100).startswith(b"* OK")
            owners = {path.name: path.stat().st_uid for path in data.iterdir()}
            assert set(owners.values()) == {nobody.pw_uid}, owners
        finally:
            server.stop()
        assert server.errors_logged() == []
    finally:
        shutil.rmtree(root, ignore_errors=True)
