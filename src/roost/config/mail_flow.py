"""Reading the sections of mail in and out: ``[lmtp]``, ``[delivery]``, ``[sieve]``,
``[managesieve]`` and ``[submission]``."""

from __future__ import annotations

from pathlib import Path

from roost.config.sections import (
    DeliverySettings,
    ListenAddress,
    LmtpAddress,
    LmtpSettings,
    ManageSieveSettings,
    SieveSettings,
    UnixAddress,
    parse_lmtp_address,
)
from roost.config.submission import RelayTarget, SubmissionSettings
from roost.config.tables import Reader, Table


def read_lmtp(reader: Reader, table: Table) -> LmtpSettings:
    defaults = LmtpSettings()
    value = table.get("listen", [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise reader.invalid(table.key("listen"), 'must be a list of "unix:PATH" or "HOST:PORT"')
    listen: list[LmtpAddress] = []
    for item in value:
        try:
            listen.append(parse_lmtp_address(item, reader.base_dir))
        except ValueError as error:
            raise reader.invalid(table.key("listen"), str(error)) from None
    fixed = [a for a in listen if isinstance(a, UnixAddress) or a.port != 0]
    if len(set(fixed)) != len(fixed):
        raise reader.invalid(table.key("listen"), "lists an address twice")
    mode = table.integer("socket_mode", defaults.socket_mode)
    if mode > 0o777:
        raise reader.invalid(table.key("socket_mode"), "must be a mode such as 0o660")
    group = table.string("socket_group", "")
    settings = LmtpSettings(
        listen=tuple(listen),
        socket_mode=mode,
        socket_group=group or None,
        allow_remote=table.boolean("allow_remote", defaults.allow_remote),
        private_socket=table.boolean("private_socket", defaults.private_socket),
        max_message_size=table.integer("max_message_size", defaults.max_message_size, minimum=1024),
        max_recipients=table.integer("max_recipients", defaults.max_recipients, minimum=1),
        spool_threshold=table.integer("spool_threshold", defaults.spool_threshold, minimum=1),
        timeout=table.number("timeout", defaults.timeout, positive=True),
    )
    table.finish()
    return settings


def read_delivery(reader: Reader, table: Table) -> DeliverySettings:
    defaults = DeliverySettings()
    domains = table.get("domains", [])
    if not isinstance(domains, list) or not all(isinstance(item, str) and item for item in domains):
        raise reader.invalid(table.key("domains"), 'must be a list of domains ("example.org")')
    separator = table.string("subaddress_separator", defaults.subaddress_separator)
    if len(separator) > 1 or (separator and separator in '@"\\ '):
        why = 'must be one character, as "+" (or "" for none)'
        raise reader.invalid(table.key("subaddress_separator"), why)
    settings = DeliverySettings(
        domains=tuple(domain.lower().rstrip(".") for domain in domains),
        strip_domain=table.boolean("strip_domain", defaults.strip_domain),
        detail_folders=table.boolean("detail_folders", defaults.detail_folders),
        subaddress_separator=separator,
    )
    table.finish()
    return settings


def read_sieve(reader: Reader, table: Table) -> SieveSettings:
    defaults = SieveSettings()
    scripts: dict[str, tuple[Path, ...]] = {}
    for name in ("before", "after"):
        value = table.get(name, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise reader.invalid(table.key(name), "must be a script path or a list of them")
        scripts[name] = tuple(reader.base_dir / item for item in value)
    relay_text = table.string("relay", "")
    try:
        relay = ListenAddress.parse(relay_text) if relay_text else None
    except ValueError as error:
        raise reader.invalid(table.key("relay"), str(error)) from None
    settings = SieveSettings(
        before=scripts["before"],
        after=scripts["after"],
        global_dir=table.path("global_dir", None),
        relay=relay,
        relay_timeout=table.number("relay_timeout", defaults.relay_timeout, positive=True),
        relay_starttls=table.boolean("relay_starttls", defaults.relay_starttls),
        helo_name=table.string("helo_name", defaults.helo_name),
        max_redirects=table.integer("max_redirects", defaults.max_redirects),
        max_actions=table.integer("max_actions", defaults.max_actions, minimum=1),
        max_instructions=table.integer("max_instructions", defaults.max_instructions, minimum=100),
        max_message_size=table.integer("max_message_size", defaults.max_message_size),
        spam_header=table.string("spam_header", defaults.spam_header),
        spam_max_score=table.number("spam_max_score", defaults.spam_max_score, positive=True),
        virus_header=table.string("virus_header", defaults.virus_header),
        virus_max_score=table.number("virus_max_score", defaults.virus_max_score, positive=True),
    )
    table.finish()
    return settings


def read_managesieve(reader: Reader, table: Table) -> ManageSieveSettings:
    defaults = ManageSieveSettings()
    settings = ManageSieveSettings(
        listen=table.addresses("listen", defaults.listen),
        starttls=table.boolean("starttls", defaults.starttls),
        allow_plaintext_auth=table.boolean("allow_plaintext_auth", defaults.allow_plaintext_auth),
        max_script_size=table.integer("max_script_size", defaults.max_script_size, minimum=1),
        max_scripts=table.integer("max_scripts", defaults.max_scripts, minimum=1),
        timeout=table.number("timeout", defaults.timeout, positive=True),
    )
    table.finish()
    return settings


def read_submission(reader: Reader, table: Table) -> SubmissionSettings:
    defaults = SubmissionSettings()
    relay_text = table.string("relay", "")
    relay = defaults.relay
    if relay_text:
        try:
            relay = RelayTarget.parse(relay_text)
        except ValueError as error:
            raise reader.invalid(table.key("relay"), str(error)) from None
    settings = SubmissionSettings(
        listen=table.addresses("listen", defaults.listen),
        tls_listen=table.addresses("tls_listen", defaults.tls_listen),
        allow_plaintext_auth=table.boolean("allow_plaintext_auth", defaults.allow_plaintext_auth),
        relay=relay,
        relay_timeout=table.number("relay_timeout", defaults.relay_timeout, positive=True),
        max_message_size=table.integer("max_message_size", defaults.max_message_size, minimum=1024),
        max_recipients=table.integer("max_recipients", defaults.max_recipients, minimum=1),
        max_messages_per_hour=table.integer(
            "max_messages_per_hour", defaults.max_messages_per_hour
        ),
        hide_client_ip=table.boolean("hide_client_ip", defaults.hide_client_ip),
        save_sent=table.boolean("save_sent", defaults.save_sent),
        timeout=table.number("timeout", defaults.timeout, positive=True),
        spool_threshold=table.integer("spool_threshold", defaults.spool_threshold, minimum=1),
    )
    table.finish()
    return settings
