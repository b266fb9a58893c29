"""Configuration: TOML to frozen settings; every key known, every value checked, and
every error one line naming the key or file."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from roost.config import (
    AuthSettings,
    ConfigError,
    ListenAddress,
    Settings,
)
from roost.imap.context import ImapLimits
from roost.pop3.context import DeleteMode, Pop3Limits, Pop3Policy

TLS = """
[tls]
cert = "cert.pem"
key = "key.pem"
"""
MINIMAL = '[server]\ndata_dir = "data"\n' + TLS
NO_POP3 = "[pop3]\nlisten = []\ntls_listen = []\n"


def load(text: str, base_dir: Path = Path("/etc/roost")) -> Settings:
    return Settings.from_toml(text, source="roost.toml", base_dir=base_dir)


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(text)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults() -> None:
    settings = load(MINIMAL)
    assert settings.server.data_dir == Path("/etc/roost/data")
    assert settings.server.workers == (os.cpu_count() or 1)
    assert settings.imap.listen == (ListenAddress("0.0.0.0", 143),)
    assert settings.imap.tls_listen == (ListenAddress("0.0.0.0", 993),)
    assert settings.imap.starttls and not settings.imap.allow_plaintext_auth
    assert settings.pop3.listen == (ListenAddress("0.0.0.0", 110),)
    assert settings.pop3.tls_listen == (ListenAddress("0.0.0.0", 995),)
    assert settings.pop3.starttls and not settings.pop3.allow_plaintext_auth
    assert settings.pop3.policy() == Pop3Policy()
    assert settings.pop3.policy().delete_mode is DeleteMode.EXPUNGE
    assert settings.limits.pop3 == Pop3Limits()
    assert settings.tls.cert == Path("/etc/roost/cert.pem")
    assert settings.tls.min_version == "1.2"
    assert settings.limits.max_connections_per_ip == 1000
    assert settings.limits.max_connections_per_account == 100
    assert settings.imap_limits() == ImapLimits()
    assert settings.log.level == "info" and settings.log.format == "text"
    assert not settings.dev


def test_every_key(tmp_path: Path) -> None:
    text = """
    [server]
    data_dir = "/srv/roost"
    hostname = "mail.example.org"
    workers = 3
    shutdown_timeout = 3.5

    [imap]
    listen = ["127.0.0.1:1143", "[::1]:1143"]
    tls_listen = ["[::]:993"]
    starttls = true
    allow_plaintext_auth = true

    [pop3]
    listen = ["127.0.0.1:1110"]
    tls_listen = ["[::]:995"]
    starttls = false
    allow_plaintext_auth = true
    delete_mode = "move"
    move_to = "Deleted/POP3"
    mark_seen = false
    expire = 30
    login_delay = 900

    [tls]
    cert = "/etc/ssl/roost.pem"
    key = "/etc/ssl/roost.key"
    min_version = "1.3"

    [limits]
    max_line_length = 65536
    max_literal_size = 1000000
    max_nesting_depth = 8
    spool_threshold = 4096
    preauth_timeout = 30
    auth_timeout = 1860.5
    idle_keepalive_interval = 60
    fetch_batch_size = 100
    max_bad_commands = 5
    max_connections_per_ip = 7
    max_connections_per_account = 9

    [limits.pop3]
    max_line_length = 1000
    preauth_timeout = 20
    auth_timeout = 900
    max_bad_commands = 4
    size_batch_size = 50

    [auth]
    failure_delay = 0
    max_failure_delay = 0
    max_account_delay = 0
    max_failures_per_ip = 0
    failure_window = 60

    [log]
    level = "DEBUG"
    format = "json"
    """
    settings = load(text)
    assert settings.server.data_dir == Path("/srv/roost")
    assert settings.server.hostname == "mail.example.org"
    assert settings.server.shutdown_timeout == 3.5
    assert settings.server.workers == 3
    assert settings.imap.listen == (ListenAddress("127.0.0.1", 1143), ListenAddress("::1", 1143))
    assert settings.imap.tls_listen == (ListenAddress("::", 993),)
    assert settings.imap.allow_plaintext_auth
    assert settings.tls.min_version == "1.3"
    limits = settings.imap_limits()
    assert limits == ImapLimits(
        max_line_length=65536,
        max_literal_size=1000000,
        max_nesting_depth=8,
        spool_threshold=4096,
        preauth_timeout=30.0,
        auth_timeout=1860.5,
        idle_keepalive_interval=60.0,
        fetch_batch_size=100,
        max_bad_commands=5,
    )
    assert isinstance(limits.preauth_timeout, float)
    assert settings.limits.max_connections_per_ip == 7
    assert settings.limits.max_connections_per_account == 9
    assert settings.pop3.listen == (ListenAddress("127.0.0.1", 1110),)
    assert settings.pop3.tls_listen == (ListenAddress("::", 995),)
    assert not settings.pop3.starttls and settings.pop3.allow_plaintext_auth
    assert settings.pop3.policy() == Pop3Policy(
        delete_mode=DeleteMode.MOVE,
        move_to="Deleted/POP3",
        mark_seen=False,
        expire_days=30,
        login_delay=900,
    )
    assert settings.limits.pop3 == Pop3Limits(
        max_line_length=1000,
        preauth_timeout=20.0,
        auth_timeout=900.0,
        max_bad_commands=4,
        size_batch_size=50,
    )
    policy = settings.auth.throttle_policy()
    assert (policy.base_delay, policy.max_failures_per_ip, policy.window) == (0.0, 0, 60.0)
    assert settings.log.level == "debug" and settings.log.format == "json"


def test_every_imap_limit_is_configurable() -> None:
    """A limit added to ImapLimits is a [limits] key at once."""
    for limit in dataclasses.fields(ImapLimits):
        value = getattr(ImapLimits(), limit.name)
        doubled = value * 2
        settings = load(MINIMAL + f"[limits]\n{limit.name} = {doubled!r}\n")
        assert getattr(settings.imap_limits(), limit.name) == doubled


def test_every_pop3_limit_is_configurable() -> None:
    """A limit added to Pop3Limits is a [limits.pop3] key at once."""
    for limit in dataclasses.fields(Pop3Limits):
        doubled = getattr(Pop3Limits(), limit.name) * 2
        settings = load(MINIMAL + f"[limits.pop3]\n{limit.name} = {doubled!r}\n")
        assert getattr(settings.limits.pop3, limit.name) == doubled


def test_pop3_expire_never_or_days() -> None:
    assert load(MINIMAL + '[pop3]\nexpire = "never"\n').pop3.expire_days is None
    assert load(MINIMAL + "[pop3]\nexpire = 0\n").pop3.expire_days == 0


def test_pop3_only_server_is_fine() -> None:
    settings = load(MINIMAL + "[imap]\nlisten = []\ntls_listen = []\n")
    assert not settings.imap.listen and settings.pop3.listen


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[imap]\nlisen = []\n", "imap.lisen"),
        ("[imapp]\n", "imapp"),
        ("stray = 1\n", "stray"),
        ("[limits]\nmax_conections_per_ip = 3\n", "limits.max_conections_per_ip"),
        ("[log]\n[tls]\ncert = 'a'\nkey = 'b'\nciphers = 'ALL'\n", "tls.ciphers"),
        ("[log]\ncolour = true\n", "log.colour"),
        ("[auth]\nbase_delay = 1\n", "auth.base_delay"),
        ("[server]\ndatadir = 'x'\n", "server.datadir"),
        ("[pop3]\ndelete = 'flag'\n", "pop3.delete"),
        ("[limits.pop3]\nmax_line = 1\n", "limits.pop3.max_line"),
    ],
)
def test_unknown_keys_are_named(text: str, key: str) -> None:
    assert error_of(text if "[tls]" in text else text + TLS) == (
        f"unknown key '{key}' in roost.toml"
    )


@pytest.mark.parametrize(
    ("text", "key", "why"),
    [
        ('[imap]\nlisten = "0.0.0.0:143"\n', "imap.listen", "list"),
        ('[imap]\nlisten = ["0.0.0.0"]\n', "imap.listen", "HOST:PORT"),
        ('[imap]\nlisten = ["0.0.0.0:99999"]\n', "imap.listen", "port"),
        ('[imap]\nlisten = ["::1:143"]\n', "imap.listen", "brackets"),
        ('[imap]\nlisten = ["[nonsense]:143"]\n', "imap.listen", "IPv6"),
        ('[imap]\nlisten = ["a:1", "a:1"]\n', "imap.listen", "twice"),
        ('[imap]\nlisten = ["a:1"]\ntls_listen = ["a:1"]\n', "imap.tls_listen", "a:1"),
        ('[imap]\nstarttls = "yes"\n', "imap.starttls", "true or false"),
        ("[limits]\nmax_line_length = 100\n", "limits.max_line_length", "1024"),
        ("[limits]\nmax_line_length = 1.5e6\n", "limits.max_line_length", "integer"),
        ("[limits]\nmax_nesting_depth = true\n", "limits.max_nesting_depth", "integer"),
        ("[limits]\nmax_nesting_depth = 0\n", "limits.max_nesting_depth", "at least 1"),
        ("[limits]\npreauth_timeout = 0\n", "limits.preauth_timeout", "greater than 0"),
        ("[limits]\nauth_timeout = '30m'\n", "limits.auth_timeout", "number"),
        ("[limits]\nmax_connections_per_ip = 0\n", "limits.max_connections_per_ip", "1"),
        ("[auth]\nfailure_delay = -1\n", "auth.failure_delay", "at least 0"),
        ("[auth]\nfailure_window = 0\n", "auth.failure_window", "greater than 0"),
        ("[server]\nworkers = 0\n", "server.workers", "at least 1"),
        ("[server]\nworkers = 5000\n", "server.workers", "at most 1024"),
        ("[server]\nhostname = ''\n", "server.hostname", "empty"),
        ("[log]\nlevel = 'loud'\n", "log.level", '"debug"'),
        ("[log]\nformat = 'xml'\n", "log.format", '"json"'),
        ("log = 3\n", "log", "table"),
        ('[pop3]\nlisten = ["a:1", "a:1"]\n', "pop3.listen", "twice"),
        ('[pop3]\nlisten = ["a:1"]\ntls_listen = ["a:1"]\n', "pop3.tls_listen", "a:1"),
        ('[imap]\nlisten = ["a:1"]\n[pop3]\nlisten = ["a:1"]\n', "pop3.listen", "imap.listen"),
        ("[pop3]\nstarttls = 1\n", "pop3.starttls", "true or false"),
        ("[pop3]\ndelete_mode = 'keep'\n", "pop3.delete_mode", '"expunge", "flag", "move"'),
        ("[pop3]\nmove_to = 'inbox'\n", "pop3.move_to", "INBOX"),
        ("[pop3]\nmove_to = ''\n", "pop3.move_to", "folder name"),
        ("[pop3]\nexpire = 'soon'\n", "pop3.expire", '"never"'),
        ("[pop3]\nexpire = -1\n", "pop3.expire", '"never"'),
        ("[pop3]\nexpire = true\n", "pop3.expire", '"never"'),
        ("[pop3]\nlogin_delay = -5\n", "pop3.login_delay", "at least 0"),
        ("[pop3]\nmark_seen = 'yes'\n", "pop3.mark_seen", "true or false"),
        ("[limits]\npop3 = 1\n", "limits.pop3", "table"),
        ("[limits.pop3]\nmax_line_length = 100\n", "limits.pop3.max_line_length", "512"),
        ("[limits.pop3]\nauth_timeout = 0\n", "limits.pop3.auth_timeout", "greater than 0"),
    ],
)
def test_invalid_values_are_named(text: str, key: str, why: str) -> None:
    message = error_of(text + TLS)
    assert message.startswith(f"invalid value for '{key}' in roost.toml: ")
    assert why in message


def test_tls_min_version_choice() -> None:
    message = error_of(MINIMAL + 'min_version = "1.1"\n')
    assert message == (
        'invalid value for \'tls.min_version\' in roost.toml: must be one of "1.2", "1.3"'
    )


def test_certificate_is_required_when_tls_is_used() -> None:
    message = error_of("[server]\ndata_dir = '/x'\n")
    assert message.startswith("missing key 'tls.cert' in roost.toml")
    # Without TLS listeners and without STARTTLS/STLS no certificate is needed.
    settings = load(
        "[imap]\nlisten = ['127.0.0.1:143']\ntls_listen = []\nstarttls = false\n"
        "[pop3]\nlisten = ['127.0.0.1:110']\ntls_listen = []\nstarttls = false\n"
    )
    assert not settings.tls_needed
    # POP3 alone needs it too.
    message = error_of("[imap]\nlisten = []\ntls_listen = []\n[pop3]\ntls_listen = []\n")
    assert message.startswith("missing key 'tls.cert' in roost.toml")


def test_no_listeners_is_an_error() -> None:
    message = error_of("[imap]\nlisten = []\ntls_listen = []\n" + NO_POP3)
    assert message == (
        "no listeners: 'imap.listen', 'imap.tls_listen', 'pop3.listen' and "
        "'pop3.tls_listen' are all empty in roost.toml"
    )


def test_invalid_toml_is_one_line() -> None:
    message = error_of("[imap\n")
    assert message.startswith("roost.toml is not valid TOML: ")


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^configuration file .*nope.toml does not exist$"):
        Settings.load(tmp_path / "nope.toml")


def test_relative_paths_follow_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "roost.toml"
    path.parent.mkdir()
    path.write_text(MINIMAL)
    settings = Settings.load(path)
    assert settings.server.data_dir == tmp_path / "etc" / "data"
    assert settings.tls.key == tmp_path / "etc" / "key.pem"
    assert settings.source == str(path)


def test_check_files_names_the_missing_file(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("x")
    settings = load(MINIMAL, base_dir=tmp_path)
    with pytest.raises(ConfigError) as info:
        settings.check_files()
    assert str(info.value) == (
        f"TLS key file {tmp_path / 'key.pem'} does not exist ('tls.key' in roost.toml)"
    )
    (tmp_path / "key.pem").write_text("x")
    settings.check_files()


def test_listen_address_parsing() -> None:
    assert ListenAddress.parse("0.0.0.0:143") == ListenAddress("0.0.0.0", 143)
    assert ListenAddress.parse("[::]:993") == ListenAddress("::", 993)
    assert ListenAddress.parse("localhost:0") == ListenAddress("localhost", 0)
    assert str(ListenAddress("::1", 143)) == "[::1]:143"
    assert str(ListenAddress("127.0.0.1", 143)) == "127.0.0.1:143"
    assert ListenAddress("127.0.0.2", 1).is_loopback
    assert ListenAddress("::1", 1).is_loopback
    assert ListenAddress("localhost", 1).is_loopback
    assert not ListenAddress("0.0.0.0", 1).is_loopback
    assert not ListenAddress("example.org", 1).is_loopback
    for bad in ("143", ":143", "host:", "host:x", "[::1:143", "::1:143", "h:-1"):
        with pytest.raises(ValueError):
            ListenAddress.parse(bad)


def test_for_dev(tmp_path: Path) -> None:
    settings = Settings.for_dev(tmp_path / "d")
    assert settings.dev and settings.source == "--dev"
    assert settings.server.data_dir == tmp_path / "d"
    assert settings.imap.listen == (ListenAddress("127.0.0.1", 1143),)
    assert settings.imap.tls_listen == (ListenAddress("127.0.0.1", 1993),)
    assert settings.imap.starttls
    assert settings.imap.allow_plaintext_auth  # loopback only
    assert settings.pop3.listen == (ListenAddress("127.0.0.1", 1110),)
    assert settings.pop3.tls_listen == (ListenAddress("127.0.0.1", 1995),)
    assert settings.pop3.starttls and settings.pop3.allow_plaintext_auth
    assert settings.tls.self_signed
    assert settings.tls.cert == tmp_path / "d" / "tls" / "cert.pem"
    settings.check_files()  # generated on start, so nothing to check yet


def test_for_dev_on_a_public_address_keeps_plaintext_auth_off(tmp_path: Path) -> None:
    settings = Settings.for_dev(tmp_path, ["0.0.0.0:1143"], ["127.0.0.1:0"])
    assert not settings.imap.allow_plaintext_auth
    assert settings.pop3.allow_plaintext_auth  # its own listener is still loopback
    settings = Settings.for_dev(tmp_path, pop3_listen=["0.0.0.0:1110"])
    assert settings.imap.allow_plaintext_auth and not settings.pop3.allow_plaintext_auth


def test_for_dev_bad_listen_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^invalid value for --imap-listen: "):
        Settings.for_dev(tmp_path, ["nonsense"])
    with pytest.raises(ConfigError, match=r"^invalid value for --pop3s-listen: "):
        Settings.for_dev(tmp_path, pop3s_listen=["nonsense"])


def test_settings_are_frozen_and_replaceable(tmp_path: Path) -> None:
    settings = Settings.for_dev(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.dev = False  # type: ignore[misc]
    quiet = settings.replace(auth=AuthSettings.without_delays())
    assert quiet.auth.throttle_policy().base_delay == 0
    assert quiet.auth.throttle_policy().max_failures_per_ip == 0
    assert settings.auth.failure_delay == 1.0


def test_example_configuration_is_valid_and_complete() -> None:
    """roost.example.toml shows every key with its default: uncommented, it loads and
    gives the defaults (apart from the example host name and certificate paths)."""
    example = Path(__file__).parents[2] / "roost.example.toml"
    text = example.read_text()
    uncommented = re.sub(r"^#(\w+ = )", r"\1", text, flags=re.MULTILINE)
    settings = Settings.from_toml(uncommented, source="example", base_dir=Path("/etc/roost"))
    defaults = Settings()
    # The default of workers is the number of cores; the example shows 4.
    assert settings.server == dataclasses.replace(
        defaults.server, hostname="mail.example.org", workers=4
    )
    assert settings.imap == defaults.imap
    assert settings.pop3 == defaults.pop3
    assert settings.limits == defaults.limits
    assert settings.auth == defaults.auth
    assert settings.log == defaults.log
    assert settings.quota == defaults.quota
    assert settings.sieve == defaults.sieve
    assert settings.managesieve == defaults.managesieve
    assert dataclasses.replace(settings.submission, listen=(), tls_listen=()) == (
        defaults.submission
    )
    assert settings.tls.min_version == defaults.tls.min_version
    for limit in dataclasses.fields(ImapLimits):
        assert f"#{limit.name} = " in text
    pop3_limits = text[text.index("[limits.pop3]") :]
    for limit in dataclasses.fields(Pop3Limits):
        assert f"#{limit.name} = " in pop3_limits


def test_special_use_names() -> None:
    """``[imap] special_use_names``: the names of a new account's special folders."""
    assert load(MINIMAL).imap.special_use_names == (
        ("\\Drafts", "Drafts"),
        ("\\Sent", "Sent"),
        ("\\Trash", "Trash"),
        ("\\Junk", "Junk"),
        ("\\Archive", "Archive"),
    )
    settings = load(MINIMAL + '[imap]\nspecial_use_names = { sent = "Mail/Sent Items" }\n')
    assert ("\\Sent", "Mail/Sent Items") in settings.imap.special_use_names
    assert ("\\Trash", "Trash") in settings.imap.special_use_names
    for value, why in (
        ('{ outbox = "Out" }', "unknown special use 'outbox'"),
        ('{ sent = "" }', "must be a folder name"),
        ('{ sent = "a//b" }', "must be a folder name"),
        ("{ sent = 3 }", "must be a folder name"),
        ('{ sent = "INBOX/Sent" }', "must not be INBOX"),
        ('{ sent = "Trash" }', "'Trash' is used twice"),
        ('{ archive = "Old" , sent = "Old/Sent" }', "'Old' is used twice, or holds 'Old/Sent'"),
        ('"Sent"', "must be a table"),
    ):
        message = error_of(MINIMAL + f"[imap]\nspecial_use_names = {value}\n")
        assert "imap.special_use_names" in message and why in message, message


def test_sieve_and_managesieve_sections(tmp_path: Path) -> None:
    from roost.config.sections import ListenAddress

    settings = Settings.from_toml(
        '[sieve]\nbefore = "spam.sieve"\nafter = ["a.sieve", "b.sieve"]\n'
        'relay = "127.0.0.1:25"\nspam_header = "X-Spam-Score"\nrelay_starttls = true\n'
        '[managesieve]\nlisten = ["127.0.0.1:4190"]\nmax_script_size = 1000\nmax_scripts = 3\n'
        '[tls]\ncert = "c.pem"\nkey = "k.pem"\n',
        base_dir=tmp_path,
    )
    assert settings.sieve.before == (tmp_path / "spam.sieve",)
    assert settings.sieve.after == (tmp_path / "a.sieve", tmp_path / "b.sieve")
    assert settings.sieve.relay == ListenAddress("127.0.0.1", 25)
    assert settings.sieve.relay_starttls
    assert settings.managesieve.listen == (ListenAddress("127.0.0.1", 4190),)
    assert (settings.managesieve.max_script_size, settings.managesieve.max_scripts) == (1000, 3)
    assert ("managesieve.listen", ListenAddress("127.0.0.1", 4190)) in settings.listeners()
    with pytest.raises(ConfigError, match=r"sieve\.relay"):
        Settings.from_toml('[sieve]\nrelay = "nowhere"\n')
    with pytest.raises(ConfigError, match=r"managesieve\.max_scripts"):
        Settings.from_toml("[managesieve]\nmax_scripts = 0\n")
    assert Settings().managesieve.listen == ()  # off unless configured


def test_store_shards_make_one_locator() -> None:
    shards = '["postgresql://db1/roost", "postgresql://db2/roost"]'
    settings = load(MINIMAL + f'[store]\nbackend = "postgresql"\nshards = {shards}\n')
    assert settings.store.shards == ("postgresql://db1/roost", "postgresql://db2/roost")
    assert settings.store.postgresql_url == "postgresql://db1/roost postgresql://db2/roost"
    alone = load(MINIMAL + '[store]\nbackend = "postgresql"\nurl = "postgresql://db1/r"\n')
    assert alone.store.postgresql_url == "postgresql://db1/r"


@pytest.mark.parametrize(
    ("store", "complaint"),
    [
        ('url = "postgresql://a/r"\nshards = ["postgresql://b/r"]', "not both"),
        ('shards = ["mysql://b/r"]', "each must be"),
        ('shards = ["postgresql://b/r x"]', "each must be"),
        ('shards = ["postgresql://b/r", "postgresql://b/r"]', "twice"),
        ('shards = "postgresql://b/r"', "list of strings"),
    ],
)
def test_store_shards_are_checked(store: str, complaint: str) -> None:
    message = error_of(MINIMAL + f'[store]\nbackend = "postgresql"\n{store}\n')
    assert "shards" in message and complaint in message


def test_store_fsync_setting() -> None:
    tls = '[tls]\ncert = "c.pem"\nkey = "k.pem"\n'
    assert load(tls).store.fsync == "always"  # ARCHITECTURE decision 2
    assert load(tls + '[store]\nfsync = "optimized"\n').store.fsync == "optimized"
    assert "fsync" in error_of(tls + '[store]\nfsync = "never"\n')
