"""``Settings``: every section together, made from a file, from TOML text or for
``--dev``, and the checks that span sections (listeners, TLS files)."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.config.loading import read_config_text, read_sections
from roost.config.sections import (
    DEV_DATA_DIR,
    DEV_IMAP_LISTEN,
    DEV_IMAPS_LISTEN,
    DEV_POP3_LISTEN,
    DEV_POP3S_LISTEN,
    AuthSettings,
    ConfigError,
    DeliverySettings,
    HttpSettings,
    ImapSettings,
    LimitSettings,
    ListenAddress,
    LmtpAddress,
    LmtpSettings,
    LogSettings,
    ManageSieveSettings,
    Pop3Settings,
    QuotaSettings,
    ServerSettings,
    SieveSettings,
    StoreSettings,
    TlsSettings,
    UnixAddress,
    parse_lmtp_address,
)
from roost.config.submission import SubmissionSettings
from roost.imap.context import ImapLimits


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    imap: ImapSettings = field(default_factory=ImapSettings)
    pop3: Pop3Settings = field(default_factory=Pop3Settings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    log: LogSettings = field(default_factory=LogSettings)
    quota: QuotaSettings = field(default_factory=QuotaSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    lmtp: LmtpSettings = field(default_factory=LmtpSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    sieve: SieveSettings = field(default_factory=SieveSettings)
    managesieve: ManageSieveSettings = field(default_factory=ManageSieveSettings)
    submission: SubmissionSettings = field(default_factory=SubmissionSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    dev: bool = False  # made by --dev: demo account, self-signed certificate
    source: str = "<defaults>"  # where the settings came from, for messages

    # ---- construction --------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> Settings:
        return cls.from_file_text(path, read_config_text(path))

    @classmethod
    def from_file_text(cls, path: Path, text: str) -> Settings:
        """The settings of configuration file ``path`` whose content is ``text`` (as read
        once by the supervisor, so that every worker gets the same settings)."""
        return cls.from_toml(text, source=str(path), base_dir=path.absolute().parent)

    @classmethod
    def from_toml(
        cls, text: str, *, source: str = "roost.toml", base_dir: Path | None = None
    ) -> Settings:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{source} is not valid TOML: {error}") from None
        return cls.from_mapping(data, source=source, base_dir=base_dir or Path.cwd())

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str, base_dir: Path) -> Settings:
        sections = read_sections(data, source=source, base_dir=base_dir)
        settings = cls(
            server=sections.server,
            imap=sections.imap,
            pop3=sections.pop3,
            tls=sections.tls,
            limits=sections.limits,
            auth=sections.auth,
            log=sections.log,
            quota=sections.quota,
            http=sections.http,
            lmtp=sections.lmtp,
            delivery=sections.delivery,
            sieve=sections.sieve,
            managesieve=sections.managesieve,
            submission=sections.submission,
            store=sections.store,
            source=source,
        )
        settings.validate()
        return settings

    @classmethod
    def for_dev(
        cls,
        data_dir: Path = DEV_DATA_DIR,
        imap_listen: Sequence[str] = (DEV_IMAP_LISTEN,),
        imaps_listen: Sequence[str] = (DEV_IMAPS_LISTEN,),
        pop3_listen: Sequence[str] = (DEV_POP3_LISTEN,),
        pop3s_listen: Sequence[str] = (DEV_POP3S_LISTEN,),
        lmtp_listen: Sequence[str] = (),  # the CLI passes DEV_LMTP_LISTEN
        managesieve_listen: Sequence[str] = (),  # the CLI passes DEV_MANAGESIEVE_LISTEN
        submission_listen: Sequence[str] = (),  # the CLI passes DEV_SUBMISSION_LISTEN
        submissions_listen: Sequence[str] = (),  # and DEV_SUBMISSIONS_LISTEN
    ) -> Settings:
        """The ``roost serve --dev`` settings: local listeners, a self-signed certificate
        in ``data_dir/tls``. Plaintext sign-in before STARTTLS (STLS) is allowed only
        when every plain listener of that protocol is a loopback address — the password
        then never leaves the host."""
        data_dir = data_dir.absolute()
        listen = tuple(_parse_listen_option(text, "--imap-listen") for text in imap_listen)
        tls_listen = tuple(_parse_listen_option(text, "--imaps-listen") for text in imaps_listen)
        pop3 = tuple(_parse_listen_option(text, "--pop3-listen") for text in pop3_listen)
        pop3s = tuple(_parse_listen_option(text, "--pop3s-listen") for text in pop3s_listen)
        lmtp = tuple(parse_lmtp_option(text) for text in lmtp_listen)
        sieve_listen = tuple(
            _parse_listen_option(text, "--managesieve-listen") for text in managesieve_listen
        )
        submission = tuple(
            _parse_listen_option(text, "--submission-listen") for text in submission_listen
        )
        submissions = tuple(
            _parse_listen_option(text, "--submissions-listen") for text in submissions_listen
        )
        settings = cls(
            server=ServerSettings(data_dir=data_dir, hostname="localhost", workers=1),
            imap=ImapSettings(
                listen=listen,
                tls_listen=tls_listen,
                starttls=True,
                allow_plaintext_auth=all(address.is_loopback for address in listen),
            ),
            pop3=Pop3Settings(
                listen=pop3,
                tls_listen=pop3s,
                starttls=True,
                allow_plaintext_auth=all(address.is_loopback for address in pop3),
            ),
            tls=TlsSettings(
                cert=data_dir / "tls" / "cert.pem",
                key=data_dir / "tls" / "key.pem",
                self_signed=True,
            ),
            lmtp=LmtpSettings(listen=lmtp),
            managesieve=ManageSieveSettings(
                listen=sieve_listen,
                allow_plaintext_auth=all(address.is_loopback for address in sieve_listen),
            ),
            # The demo account is "demo", so demo@anything reaches it.
            delivery=DeliverySettings(strip_domain=True),
            submission=SubmissionSettings(
                listen=submission,
                tls_listen=submissions,
                allow_plaintext_auth=all(address.is_loopback for address in submission),
            ),
            dev=True,
            source="--dev",
        )
        settings.validate()
        return settings

    def replace(self, **changes: Any) -> Settings:
        """A copy with whole sections replaced (``settings.replace(auth=...)``)."""
        return dataclasses.replace(self, **changes)

    # ---- derived values ------------------------------------------------------------

    @property
    def tls_needed(self) -> bool:
        """True when some listener needs the certificate: implicit TLS, STARTTLS or STLS."""
        return any(
            bool(tls_listen) or (starttls and bool(listen))
            for listen, tls_listen, starttls in (
                (self.imap.listen, self.imap.tls_listen, self.imap.starttls),
                (self.pop3.listen, self.pop3.tls_listen, self.pop3.starttls),
                (self.managesieve.listen, (), self.managesieve.starttls),
                # A loopback listener with plaintext AUTH works without a certificate.
                (
                    self.submission.listen,
                    self.submission.tls_listen,
                    not self.submission.plaintext_auth_allowed,
                ),
            )
        )

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def imap_limits(self) -> ImapLimits:
        return self.limits.imap

    def listeners(self) -> list[tuple[str, ListenAddress]]:
        """Every listen address with the key that names it, in binding order."""
        keyed = (
            ("imap.listen", self.imap.listen),
            ("imap.tls_listen", self.imap.tls_listen),
            ("pop3.listen", self.pop3.listen),
            ("pop3.tls_listen", self.pop3.tls_listen),
            ("lmtp.listen", self.tcp_lmtp_listen),
            ("managesieve.listen", self.managesieve.listen),
            ("submission.listen", self.submission.listen),
            ("submission.tls_listen", self.submission.tls_listen),
        )
        return [(key, address) for key, addresses in keyed for address in addresses]

    @property
    def tcp_lmtp_listen(self) -> tuple[ListenAddress, ...]:
        return tuple(a for a in self.lmtp.listen if isinstance(a, ListenAddress))

    def unix_listeners(self) -> list[tuple[UnixAddress, int, str | None]]:
        """The Unix sockets to create, each with its mode and group: the configured
        LMTP ones, then the private one of ``roost deliver`` (mode 0600, lmtp/local.py)."""
        lmtp = self.lmtp
        sockets = [
            (address, lmtp.socket_mode, lmtp.socket_group)
            for address in lmtp.listen
            if isinstance(address, UnixAddress)
        ]
        if lmtp.private_socket:
            sockets.append((UnixAddress(self.private_lmtp_socket), 0o600, None))
        return sockets

    @property
    def private_lmtp_socket(self) -> Path:
        return self.server.data_dir / "run" / "lmtp"

    def validate(self) -> None:
        """Checks across sections; raise ConfigError naming the key."""
        listeners = self.listeners()
        if not listeners:
            raise ConfigError(
                "no listeners: 'imap.listen', 'imap.tls_listen', 'pop3.listen' and "
                f"'pop3.tls_listen' are all empty in {self.source}"
            )
        first_key: dict[ListenAddress, str] = {}
        for key, address in listeners:
            if address.port == 0:  # any free port: never a clash
                continue
            if address in first_key and first_key[address] != key:
                raise ConfigError(
                    f"invalid value for '{key}' in {self.source}: "
                    f"{address} is also in '{first_key[address]}'"
                )
            first_key.setdefault(address, key)
        if not self.lmtp.allow_remote:
            for address in self.tcp_lmtp_listen:
                if not address.is_loopback:
                    raise ConfigError(
                        f"invalid value for 'lmtp.listen' in {self.source}: {address} is not "
                        "a loopback address; LMTP has no sign-in, so anyone who can connect "
                        "can deliver mail (set lmtp.allow_remote = true if a firewall "
                        "limits who can)"
                    )
        if self.tls_needed and not self.tls.self_signed:
            for name, value in (("cert", self.tls.cert), ("key", self.tls.key)):
                if value is None:
                    raise ConfigError(
                        f"missing key 'tls.{name}' in {self.source}: needed for TLS "
                        "listeners, STARTTLS and STLS (or set imap.tls_listen = [], "
                        "imap.starttls = false, pop3.tls_listen = [] and pop3.starttls = false"
                        ", and leave submission.listen and submission.tls_listen empty)"
                    )

    def check_files(self) -> None:
        """Check that the certificate and key files exist (skipped for --dev, where they
        are generated when missing)."""
        if not self.tls_needed or self.tls.self_signed:
            return
        files = (("certificate", "tls.cert", self.tls.cert), ("key", "tls.key", self.tls.key))
        for what, key, path in files:
            if path is not None and not path.is_file():
                problem = "is not a file" if path.exists() else "does not exist"
                raise ConfigError(f"TLS {what} file {path} {problem} ('{key}' in {self.source})")


def _parse_listen_option(text: str, option: str) -> ListenAddress:
    try:
        return ListenAddress.parse(text)
    except ValueError as error:
        raise ConfigError(f"invalid value for {option}: {error}") from None


def parse_lmtp_option(text: str) -> LmtpAddress:
    try:
        return parse_lmtp_address(text)
    except ValueError as error:
        raise ConfigError(f"invalid value for --lmtp-listen: {error}") from None
