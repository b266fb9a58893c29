"""A private Postfix for end-to-end tests: its own configuration, queue and data
directories under a temporary directory, smtpd on a loopback port, no chroot, virtual
domain example.org delivered over LMTP to Roost. Started and stopped with
``postfix -c DIR``; the system's Postfix (if any) is never touched.

Postfix needs root (its master runs daemons as ``mail_owner``) and the users
``postfix`` and group ``postdrop`` that Debian's package creates."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from pathlib import Path

MASTER_CF = """\
{smtpd_address} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
smtp      unix  -       -       n       -       -       smtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def missing() -> str | None:
    """Why a private Postfix cannot run here, or None."""
    if shutil.which("postfix") is None or shutil.which("postconf") is None:
        return "Postfix is not installed (apt-get install postfix)"
    if shutil.which("swaks") is None:
        return "swaks is not installed (apt-get install swaks)"
    if os.geteuid() != 0:
        return "a private Postfix must be started as root"
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "the postfix user or postdrop group is missing"
    return None


class PrivatePostfix:
    def __init__(self, root: Path, smtp_port: int, lmtp_port: int) -> None:
        self.root = root
        self.config_dir = root / "etc"
        self.queue_dir = root / "queue"
        self.data_dir = root / "data"
        self.log_file = root / "maillog"
        self.smtp_port = smtp_port
        self.lmtp_port = lmtp_port

    def configure(self) -> None:
        # Postfix's daemons (user postfix) must reach the queue: no 0700 parent.
        os.chmod(self.root, 0o755)
        self.config_dir.mkdir()
        self.data_dir.mkdir()
        self.queue_dir.mkdir()
        owner = pwd.getpwnam("postfix")
        os.chown(self.data_dir, owner.pw_uid, owner.pw_gid)
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "mx.test",
            "mydomain": "test",
            "myorigin": "mx.test",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "virtual_mailbox_domains": "example.org",
            "virtual_transport": f"lmtp:inet:127.0.0.1:{self.lmtp_port}",
            # No virtual_mailbox_maps: Roost says who exists, with 550 5.1.1 at RCPT.
            "smtpd_reject_unlisted_recipient": "no",
            "default_transport": "error:no mail leaves this test",
            "relayhost": "",
            "smtputf8_enable": "yes",
            "message_size_limit": "60000000",
            "maillog_file": str(self.log_file),
            "maillog_file_prefixes": str(self.root),
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "queue_run_delay": "1s",
            "lmtp_connection_cache_on_demand": "no",
        }
        (self.config_dir / "main.cf").write_text(
            "".join(f"{key} = {value}\n" for key, value in settings.items())
        )
        (self.config_dir / "master.cf").write_text(
            MASTER_CF.format(smtpd_address=f"127.0.0.1:{self.smtp_port}")
        )
        self.run("postfix", "-c", str(self.config_dir), "set-permissions")
        self.run("postfix", "-c", str(self.config_dir), "check")

    def run(self, *command: str) -> str:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} failed: {result.stdout}{result.stderr}\n{self.log()[-3000:]}"
            )
        return result.stdout + result.stderr

    def start(self) -> None:
        self.run("postfix", "-c", str(self.config_dir), "start")

    def stop(self) -> None:
        subprocess.run(
            ["postfix", "-c", str(self.config_dir), "stop"], capture_output=True, timeout=60
        )

    def flush(self) -> None:
        self.run("postqueue", "-c", str(self.config_dir), "-f")

    def queue(self) -> str:
        return self.run("postqueue", "-c", str(self.config_dir), "-p")

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
