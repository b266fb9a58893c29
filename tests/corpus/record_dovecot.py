"""Record Dovecot's answers for every corpus message into ``dovecot/NAME.json``.

Not run by the test suite (CI has no Dovecot); run it by hand when the corpus changes::

    apt-get install dovecot-imapd          # Debian 12: Dovecot 2.3.19
    sudo .venv/bin/python tests/corpus/record_dovecot.py [NAME ...]

It must run as root: it starts a private Dovecot (``dovecot -F`` with a throwaway
configuration in a temporary directory: one passwd-file user, sdbox mail, plain-text
login without TLS) listening only on 127.0.0.1 at a random high port, APPENDs each
message and asks, each in its own command so that one refusal does not hide the others:

- ``ENVELOPE``, ``BODYSTRUCTURE``, ``BODY``, ``RFC822.SIZE``;
- ``BODY.PEEK[]``, ``[HEADER]``, ``[TEXT]``;
- for every part path found in the BODYSTRUCTURE (RFC 9051 §6.4.5 numbering, message/rfc822
  parts included) and for one path past the end of each level: ``BODY.PEEK[p]``,
  ``[p.MIME]``, ``[p.HEADER]``, ``[p.TEXT]``, ``BINARY.PEEK[p]`` and ``BINARY.SIZE[p]``.

Each answer is stored as ``{"nil": true}``, ``{"v": latin-1 text}`` (short values),
``{"len": n, "sha256": hex}`` (long values) or ``{"no": "NO ..."}`` (a refusal); the
ENVELOPE, BODYSTRUCTURE and BODY answers are kept whole, exactly as Dovecot sent them.
Dovecot is stopped by its PID at the end, whatever happens.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.corpus.sexp import Value, parse_value

HERE = Path(__file__).parent
MESSAGES = HERE / "messages"
FIXTURES = HERE / "dovecot"
SHORT = 300  # answers up to this many bytes are kept whole
MAX_PATHS = 400  # per message

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = sdbox:{base}/home/%u/mail
default_internal_user = {user}
default_login_user = {user}
mail_uid = {user}
mail_gid = {group}
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={base}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buffer = b""
        self.counter = 0
        self.read_line()  # greeting

    def read_line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line + b"\r\n"

    def read_exact(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def read_response(self) -> bytes:
        """One response, literals included."""
        out = self.read_line()
        while True:
            match = re.search(rb"~?\{(\d+)\}\r\n$", out)
            if not match:
                return out
            out += self.read_exact(int(match.group(1)))
            out += self.read_line()

    def command(self, text: bytes, literal: bytes | None = None) -> tuple[list[bytes], bytes]:
        self.counter += 1
        tag = b"R%d" % self.counter
        if literal is None:
            self.sock.sendall(tag + b" " + text + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        untagged: list[bytes] = []
        while True:
            response = self.read_response()
            if response.startswith(tag + b" "):
                return untagged, response[len(tag) + 1 :].rstrip(b"\r\n")
            untagged.append(response)


def fetch_items(response: bytes) -> dict[str, tuple[Value, bytes]]:
    """FETCH response → {key: (value, raw bytes of the value)}."""
    match = re.match(rb"\* \d+ FETCH \(", response)
    assert match, response[:100]
    position = match.end()
    items: dict[str, tuple[Value, bytes]] = {}
    while response[position : position + 1] != b")":
        key, position = parse_value(response, position, strict=False)
        assert isinstance(key, str)
        position += 1
        start = position
        value, position = parse_value(response, position, strict=False)
        items[key.upper()] = (value, response[start:position])
        if response[position : position + 1] == b" ":
            position += 1
    return items


def is_multipart(node: Value) -> bool:
    return isinstance(node, list) and bool(node) and isinstance(node[0], list)


def is_rfc822(node: Value) -> bool:
    return (
        isinstance(node, list)
        and len(node) > 8
        and isinstance(node[0], bytes)
        and isinstance(node[1], bytes)
        and node[0].lower() == b"message"
        and node[1].lower() == b"rfc822"
    )


def part_paths(structure: Value) -> list[tuple[int, ...]]:
    """Every part path of a BODYSTRUCTURE, and one past the end of each level."""
    paths: list[tuple[int, ...]] = []

    def children(node: Value, prefix: tuple[int, ...]) -> None:
        assert isinstance(node, list)
        count = 0
        for child in node:
            if not isinstance(child, list):
                break
            count += 1
            visit(child, (*prefix, count))
        paths.append((*prefix, count + 1))

    def visit(node: Value, path: tuple[int, ...]) -> None:
        if len(paths) > MAX_PATHS:
            return
        paths.append(path)
        if is_multipart(node):
            children(node, path)
        elif is_rfc822(node):
            assert isinstance(node, list)
            inner = node[8]
            if is_multipart(inner):
                children(inner, path)
            else:
                visit(inner, (*path, 1))
        else:
            paths.append((*path, 1, 1))

    if is_multipart(structure):
        children(structure, ())
    else:
        visit(structure, (1,))
        paths.append((2,))
    return paths


def answer(value: Value) -> dict[str, Any]:
    if value is None:
        return {"nil": True}
    if isinstance(value, int):
        return {"n": value}
    assert isinstance(value, bytes), value
    if len(value) <= SHORT:
        return {"v": value.decode("latin-1")}
    return {"len": len(value), "sha256": hashlib.sha256(value).hexdigest()}


class Session:
    """A logged-in connection, opened again after Dovecot drops it (it does so when it
    finds invalid base64 in the middle of a BINARY answer)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.client = self.connect()

    def connect(self) -> Client:
        client = Client(self.port)
        for command in (b"LOGIN roost secret", b"SELECT INBOX"):
            _, status = client.command(command)
            assert status.startswith(b"OK"), status
        return client

    def command(self, text: bytes, literal: bytes | None = None) -> tuple[list[bytes], bytes]:
        try:
            return self.client.command(text, literal)
        except ConnectionError:
            self.client = self.connect()
            return [], b"BYE (connection closed)"


def ask(client: Session, uid: int, item: str) -> dict[str, Any]:
    untagged, status = client.command(f"UID FETCH {uid} ({item})".encode())
    if not status.startswith(b"OK"):
        return {"no": status.decode("latin-1")}
    for response in untagged:
        if b" FETCH " not in response[:20]:
            continue
        items = fetch_items(response)
        for key, (value, _raw) in items.items():
            if key not in ("UID",):
                return answer(value)
    return {"missing": True}


def record(client: Session, path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    _untagged, status = client.command(b"APPEND INBOX", data)
    match = re.search(rb"APPENDUID \d+ (\d+)", status)
    if not match:
        return {"append": status.decode("latin-1")}
    uid = int(match.group(1))
    untagged, status = client.command(
        f"UID FETCH {uid} (RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY)".encode()
    )
    assert status.startswith(b"OK"), status
    items = fetch_items(next(r for r in untagged if b" FETCH " in r[:20]))
    result: dict[str, Any] = {
        "size": items["RFC822.SIZE"][0],
        "envelope": items["ENVELOPE"][1].decode("latin-1"),
        "bodystructure": items["BODYSTRUCTURE"][1].decode("latin-1"),
        "body": items["BODY"][1].decode("latin-1"),
    }
    sections: dict[str, Any] = {}
    for section in ("", "HEADER", "TEXT"):
        sections[f"BODY[{section}]"] = ask(client, uid, f"BODY.PEEK[{section}]")
    for part in part_paths(items["BODYSTRUCTURE"][0]):
        spec = ".".join(map(str, part))
        for suffix in ("", ".MIME", ".HEADER", ".TEXT"):
            sections[f"BODY[{spec}{suffix}]"] = ask(client, uid, f"BODY.PEEK[{spec}{suffix}]")
        sections[f"BINARY[{spec}]"] = ask(client, uid, f"BINARY.PEEK[{spec}]")
        sections[f"BINARY.SIZE[{spec}]"] = ask(client, uid, f"BINARY.SIZE[{spec}]")
    result["sections"] = sections
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main(names: list[str]) -> None:
    if os.geteuid() != 0:
        sys.exit("run as root: Dovecot switches to an unprivileged mail user")
    paths = sorted(MESSAGES.glob("*.eml"))
    if names:
        paths = [p for p in paths if p.stem in names]
    FIXTURES.mkdir(exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="roost-dovecot-"))
    base.chmod(0o755)  # the mail and auth processes run as "nobody"
    user = pwd.getpwnam("nobody")
    port = free_port()
    (base / "home").mkdir()
    (base / "passwd").write_text("roost:{PLAIN}secret\n")
    (base / "dovecot.conf").write_text(
        CONFIG.format(base=base, port=port, user=user.pw_name, group=user.pw_gid)
    )
    os.chown(base / "home", user.pw_uid, user.pw_gid)
    process = subprocess.Popen(["dovecot", "-F", "-c", str(base / "dovecot.conf")])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                Client(port).sock.close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    log = base / "dovecot.log"
                    sys.exit(log.read_text() if log.exists() else "dovecot did not start")
                time.sleep(0.2)
        try:
            client = Session(port)
        except AssertionError:
            sys.exit((base / "dovecot.log").read_text())
        for path in paths:
            result = record(client, path)
            (FIXTURES / f"{path.stem}.json").write_text(
                json.dumps(result, indent=0, sort_keys=True, ensure_ascii=True) + "\n"
            )
            print(path.stem, len(result.get("sections", {})), flush=True)
        client.command(b"LOGOUT")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
