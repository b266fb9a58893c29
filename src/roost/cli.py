"""The ``roost`` command: serve, user add|passwd|del|list, user app-password
add|list|revoke, user totp enable|disable, check-config (and ``worker``, hidden: one
worker process of ``serve --workers N``, started by the supervisor).

Errors the operator can fix (a bad configuration, a missing certificate, a port in use,
an unknown account) are one line on stderr, ``roost: ...``, never a traceback. Exit
codes: 0 success, 1 a runtime failure, 2 a configuration or usage error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import ssl
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from roost.auth import manage, totp
from roost.auth.authenticator import account_name_problem, find_account
from roost.auth.passwords import generate_password
from roost.config import (
    DEV_DATA_DIR,
    DEV_IMAP_LISTEN,
    DEV_IMAPS_LISTEN,
    DEV_POP3_LISTEN,
    DEV_POP3S_LISTEN,
    LOG_LEVELS,
    MAX_WORKERS,
    ConfigError,
    ListenAddress,
    LogSettings,
    Settings,
    read_config_text,
)
from roost.observability.logs import setup_logging
from roost.runtime.app import build_tls_context, open_store, run, run_server
from roost.runtime.listeners import POP3, BoundAddress, ServerError
from roost.store.base import AccountExists, NoSuchAccount, Store, StoreError
from roost.store.credentials import AppPasswordRecord

_T = TypeVar("_T")

EXIT_RUNTIME = 1
EXIT_CONFIG = 2

DEMO_ACCOUNT = "demo"

# The value of --pop3-listen / --pop3s-listen that turns those listeners off.
NO_LISTENER = "none"


def _fail(message: str, code: int = EXIT_RUNTIME) -> NoReturn:
    click.echo(f"roost: {message}", err=True)
    raise click.exceptions.Exit(code)


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="ROOST_CONFIG",
    metavar="FILE",
    help="Configuration file (TOML). Default: $ROOST_CONFIG.",
)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help=f"Data directory; overrides the configuration. Default: ./{DEV_DATA_DIR}.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="roost", prog_name="roost")
def main() -> None:
    """Roost: an IMAP and POP3 mail store server."""


# ---- serve ---------------------------------------------------------------------------


@main.command()
@config_option
@click.option(
    "--dev",
    is_flag=True,
    help="Local development server: data in ./roost-data, IMAP+STARTTLS on "
    f"{DEV_IMAP_LISTEN}, IMAP over TLS on {DEV_IMAPS_LISTEN}, POP3+STLS on "
    f"{DEV_POP3_LISTEN}, POP3 over TLS on {DEV_POP3S_LISTEN}, a self-signed "
    "certificate and a demo account.",
)
@data_dir_option
@click.option("--imap-listen", multiple=True, metavar="HOST:PORT", help="Plain/STARTTLS listener.")
@click.option("--imaps-listen", multiple=True, metavar="HOST:PORT", help="Implicit TLS listener.")
@click.option(
    "--pop3-listen",
    multiple=True,
    metavar="HOST:PORT",
    help=f"POP3 plain/STLS listener; '{NO_LISTENER}' for none.",
)
@click.option(
    "--pop3s-listen",
    multiple=True,
    metavar="HOST:PORT",
    help=f"POP3 implicit TLS listener; '{NO_LISTENER}' for none.",
)
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False))
@click.option(
    "--workers",
    type=click.IntRange(1, MAX_WORKERS),
    metavar="N",
    help="Worker processes; overrides [server] workers. Default: the number of CPU cores "
    "(1 with --dev). 1 runs a single process.",
)
def serve(
    config_path: Path | None,
    dev: bool,
    data_dir: Path | None,
    imap_listen: tuple[str, ...],
    imaps_listen: tuple[str, ...],
    pop3_listen: tuple[str, ...],
    pop3s_listen: tuple[str, ...],
    log_level: str | None,
    workers: int | None,
) -> None:
    """Run the server until SIGTERM or Ctrl-C."""
    try:
        options = ServeOptions(
            config_path=config_path,
            dev=dev,
            data_dir=data_dir,
            imap_listen=imap_listen,
            imaps_listen=imaps_listen,
            pop3_listen=pop3_listen,
            pop3s_listen=pop3s_listen,
            log_level=log_level,
            workers=workers,
        ).read_config()
        settings = options.settings()
        setup_logging(settings.log.level, settings.log.format)
        tls_context = build_tls_context(settings)
        if settings.server.workers == 1:
            run(_serve(settings, tls_context))
        else:
            asyncio.run(_supervise(settings, options, starttls=tls_context is not None))
    except ConfigError as error:
        _fail(str(error), EXIT_CONFIG)
    except ServerError as error:
        _fail(str(error), EXIT_RUNTIME)
    except KeyboardInterrupt:  # before the signal handlers were in place
        _fail("interrupted", EXIT_RUNTIME)


@dataclasses.dataclass(frozen=True, slots=True)
class ServeOptions:
    """What ``roost serve`` was given. The supervisor hands it to every worker, with the
    configuration file's text as read once, so each worker makes the same settings
    (also a replacement started after the file was edited)."""

    config_path: Path | None = None
    config_text: str | None = None
    dev: bool = False
    data_dir: Path | None = None
    imap_listen: tuple[str, ...] = ()
    imaps_listen: tuple[str, ...] = ()
    pop3_listen: tuple[str, ...] = ()
    pop3s_listen: tuple[str, ...] = ()
    log_level: str | None = None
    workers: int | None = None

    def read_config(self) -> ServeOptions:
        """These options with the configuration file's text read in."""
        if self.config_path is None or self.config_text is not None or self.dev:
            return self
        return dataclasses.replace(self, config_text=read_config_text(self.config_path))

    def settings(self) -> Settings:
        settings = _serve_settings(
            self.config_path,
            self.dev,
            self.data_dir,
            self.imap_listen,
            self.imaps_listen,
            self.pop3_listen,
            self.pop3s_listen,
            config_text=self.config_text,
        )
        if self.log_level is not None:
            settings = settings.replace(
                log=LogSettings(self.log_level.lower(), settings.log.format)
            )
        if self.workers is not None:
            server = dataclasses.replace(settings.server, workers=self.workers)
            settings = settings.replace(server=server)
        return settings

    def to_json(self) -> dict[str, Any]:
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        for name in ("config_path", "data_dir"):
            if data[name] is not None:
                data[name] = str(Path(data[name]).absolute())
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServeOptions:
        values = dict(data)
        for name in ("config_path", "data_dir"):
            if values.get(name) is not None:
                values[name] = Path(values[name])
        for name in ("imap_listen", "imaps_listen", "pop3_listen", "pop3s_listen"):
            values[name] = tuple(values.get(name, ()))
        return cls(**values)


def _serve_settings(
    config_path: Path | None,
    dev: bool,
    data_dir: Path | None,
    imap_listen: Sequence[str],
    imaps_listen: Sequence[str],
    pop3_listen: Sequence[str] = (),
    pop3s_listen: Sequence[str] = (),
    *,
    config_text: str | None = None,
) -> Settings:
    if dev and config_path is not None:
        raise click.UsageError("--dev and --config cannot be combined")
    if dev:
        return Settings.for_dev(
            data_dir or DEV_DATA_DIR,
            imap_listen or (DEV_IMAP_LISTEN,),
            imaps_listen or (DEV_IMAPS_LISTEN,),
            _without_none(pop3_listen) if pop3_listen else (DEV_POP3_LISTEN,),
            _without_none(pop3s_listen) if pop3s_listen else (DEV_POP3S_LISTEN,),
        )
    if config_path is None:
        raise click.UsageError("give --config FILE (or set ROOST_CONFIG), or --dev")
    if config_text is not None:
        settings = Settings.from_file_text(config_path, config_text)
    else:
        settings = Settings.load(config_path)
    if data_dir is not None:
        settings = settings.replace(
            server=dataclasses.replace(settings.server, data_dir=data_dir.absolute())
        )
    if imap_listen or imaps_listen:
        imap = settings.imap
        if imap_listen:
            imap = dataclasses.replace(imap, listen=_listen_option(imap_listen, "--imap-listen"))
        if imaps_listen:
            imap = dataclasses.replace(
                imap, tls_listen=_listen_option(imaps_listen, "--imaps-listen")
            )
        settings = settings.replace(imap=imap)
    if pop3_listen or pop3s_listen:
        pop3 = settings.pop3
        if pop3_listen:
            pop3 = dataclasses.replace(pop3, listen=_listen_option(pop3_listen, "--pop3-listen"))
        if pop3s_listen:
            pop3 = dataclasses.replace(
                pop3, tls_listen=_listen_option(pop3s_listen, "--pop3s-listen")
            )
        settings = settings.replace(pop3=pop3)
    settings.validate()
    return settings


def _without_none(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(value for value in values if value != NO_LISTENER)


def _listen_option(values: Sequence[str], option: str) -> tuple[ListenAddress, ...]:
    addresses = []
    for value in _without_none(values):
        try:
            addresses.append(ListenAddress.parse(value))
        except ValueError as error:
            raise ConfigError(f"invalid value for {option}: {error}") from None
    return tuple(addresses)


async def _serve(settings: Settings, tls_context: ssl.SSLContext | None) -> None:
    store = await open_store(settings.server.data_dir)
    try:
        if settings.dev:
            await _ensure_demo_account(store)

        def banner(addresses: list[BoundAddress]) -> None:
            _print_banner(settings, addresses, starttls=tls_context is not None)

        await run_server(settings, store=store, tls_context=tls_context, ready=banner)
    finally:
        await store.close()


async def _supervise(settings: Settings, options: ServeOptions, *, starttls: bool) -> None:
    """``serve`` with several workers: the store is opened here only to prepare it (its
    schema, the --dev demo account); the workers open their own."""
    from roost.runtime.supervisor import Supervisor

    store = await open_store(settings.server.data_dir)
    try:
        if settings.dev:
            await _ensure_demo_account(store)
    finally:
        await store.close()

    def banner(addresses: list[BoundAddress]) -> None:
        _print_banner(settings, addresses, starttls=starttls)

    await Supervisor(settings, options.to_json()).run(ready=banner)


@main.command("worker", hidden=True)
@click.argument("index", type=int)
def worker_command(index: int) -> None:
    """One worker process of ``serve --workers N``: started by the supervisor, which
    writes the worker's spec (worker.WorkerSpec) on standard input."""
    from roost.runtime.worker import WorkerSpec, run_worker

    try:
        spec = WorkerSpec.from_json(sys.stdin.buffer.read())
    except (ValueError, KeyError, TypeError) as error:
        _fail(f"worker {index}: no valid worker spec on standard input ({error})", EXIT_CONFIG)
    try:
        settings = ServeOptions.from_json(spec.serve).settings()
        setup_logging(settings.log.level, settings.log.format, worker=spec.index)
        run_worker(settings, spec, build_tls_context(settings))
    except ConfigError as error:
        _fail(f"worker {index}: {error}", EXIT_CONFIG)
    except ServerError as error:
        _fail(f"worker {index}: {error}", EXIT_RUNTIME)
    except KeyboardInterrupt:  # before the signal handlers were in place
        _fail(f"worker {index}: interrupted", EXIT_RUNTIME)


async def _ensure_demo_account(store: Store) -> None:
    if await store.list_accounts():
        return
    password = generate_password()
    await manage.create_account(store, DEMO_ACCOUNT, password)
    click.echo(f"Created account {DEMO_ACCOUNT} with password {password}; it is not shown again.")


def _print_banner(settings: Settings, addresses: Sequence[BoundAddress], *, starttls: bool) -> None:
    lines = ["Roost is running."]
    for bound in addresses:
        if bound.protocol == POP3:
            if bound.implicit_tls:
                kind = "POP3 over TLS (SSL/TLS)"
            else:
                stls = starttls and settings.pop3.starttls
                kind = "POP3 with STLS" if stls else "POP3 (no TLS)"
        elif bound.implicit_tls:
            kind = "IMAP over TLS (SSL/TLS)"
        else:
            stls = starttls and settings.imap.starttls
            kind = "IMAP with STARTTLS" if stls else "IMAP (no TLS)"
        lines.append(f"  {kind:<26} {bound}")
    lines.append(f"  {'data directory':<26} {settings.server.data_dir}")
    if settings.server.workers > 1:
        lines.append(f"  {'worker processes':<26} {settings.server.workers}")
    if settings.dev:
        lines.append(f"  {'self-signed certificate':<26} {settings.tls.cert}")
        lines.append(
            f"Sign in as {DEMO_ACCOUNT!r}; your client must accept the self-signed certificate."
        )
        if settings.imap.allow_plaintext_auth or settings.pop3.allow_plaintext_auth:
            lines.append("Passwords are accepted before STARTTLS/STLS on these loopback listeners.")
    lines.append("Stop with Ctrl-C.")
    click.echo("\n".join(lines))
    sys.stdout.flush()


# ---- user ----------------------------------------------------------------------------


@main.group()
def user() -> None:
    """Manage accounts."""


@user.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@config_option
@data_dir_option
def user_add(
    name: str, password_stdin: bool, config_path: Path | None, data_dir: Path | None
) -> None:
    """Create an account NAME with its standard folders."""
    problem = account_name_problem(name)
    if problem is not None:
        _fail(f"invalid account name {name!r}: {problem}", EXIT_CONFIG)
    directory = _data_dir(config_path, data_dir, must_exist=False)
    password = _read_password(password_stdin)

    async def add(store: Store) -> bool:
        existing = await find_account(store, name)
        if existing is not None:
            same = "" if existing == name else f" (as {existing!r}; names ignore case)"
            _fail(f"account {name!r} already exists{same}")
        try:
            return await manage.create_account(store, name, password)
        except AccountExists:
            _fail(f"account {name!r} already exists")

    scram_keys = _with_store(directory, add)
    click.echo(f"Created account {name}.")
    if not scram_keys:
        click.echo(_NO_SCRAM_NOTE)


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@config_option
@data_dir_option
def user_passwd(
    name: str, password_stdin: bool, config_path: Path | None, data_dir: Path | None
) -> None:
    """Set a new password for account NAME."""
    directory = _data_dir(config_path, data_dir, must_exist=True)

    async def lookup(store: Store) -> str:
        account = await find_account(store, name)
        if account is None:
            _fail(f"no account {name!r}")
        return account

    account = _with_store(directory, lookup)
    password = _read_password(password_stdin)

    async def change(store: Store) -> bool:
        try:
            return await manage.set_password(store, account, password)
        except NoSuchAccount:
            _fail(f"no account {name!r}")

    scram_keys = _with_store(directory, change)
    click.echo(f"Changed the password of {account}.")
    if not scram_keys:
        click.echo(_NO_SCRAM_NOTE)


@user.command("del")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@config_option
@data_dir_option
def user_del(name: str, yes: bool, config_path: Path | None, data_dir: Path | None) -> None:
    """Delete account NAME and all its mail."""
    directory = _data_dir(config_path, data_dir, must_exist=True)

    async def lookup(store: Store) -> str:
        account = await find_account(store, name)
        if account is None:
            _fail(f"no account {name!r}")
        return account

    account = _with_store(directory, lookup)
    if not yes:
        click.confirm(f"Delete account {account} and all its mail?", abort=True)

    async def delete(store: Store) -> None:
        try:
            await store.delete_account(account)
        except NoSuchAccount:
            _fail(f"no account {name!r}")

    _with_store(directory, delete)
    click.echo(f"Deleted account {account}.")


@user.command("list")
@config_option
@data_dir_option
def user_list(config_path: Path | None, data_dir: Path | None) -> None:
    """List the accounts, one per line."""
    directory = _data_dir(config_path, data_dir, must_exist=True)

    async def names(store: Store) -> list[str]:
        return await store.list_accounts()

    for account in sorted(_with_store(directory, names)):
        click.echo(account)


_NO_SCRAM_NOTE = (
    "Note: this password has characters SCRAM cannot use (SASLprep, RFC 4013); "
    "AUTHENTICATE SCRAM-SHA-256 will fail for this account, PLAIN and LOGIN work."
)


# ---- app passwords and two-factor ----------------------------------------------------


@user.group("app-password")
def app_password() -> None:
    """Passwords for mail programs, one per device, each revocable alone."""


@app_password.command("add")
@click.argument("name")
@click.argument("label")
@config_option
@data_dir_option
def app_password_add(
    name: str, label: str, config_path: Path | None, data_dir: Path | None
) -> None:
    """Make an app password labelled LABEL for account NAME and print it, once."""
    directory = _data_dir(config_path, data_dir, must_exist=True)
    account = _existing_account(directory, name)

    async def add(store: Store) -> str:
        try:
            return await manage.add_app_password(store, account, label)
        except manage.CredentialError as error:
            _fail(str(error), EXIT_CONFIG)

    password = _with_store(directory, add)
    click.echo(f"App password {label!r} of {account}: {password}")
    click.echo(
        "Use it in place of the account password in one mail program; it is not shown again."
    )


@app_password.command("list")
@click.argument("name")
@config_option
@data_dir_option
def app_password_list(name: str, config_path: Path | None, data_dir: Path | None) -> None:
    """List the app passwords of account NAME: label, created, last used."""
    directory = _data_dir(config_path, data_dir, must_exist=True)
    account = _existing_account(directory, name)

    async def listing(store: Store) -> tuple[AppPasswordRecord, ...]:
        return await manage.list_app_passwords(store, account)

    records = _with_store(directory, listing)
    if not records:
        click.echo(f"{account} has no app passwords.")
        return
    width = max(len("LABEL"), *(len(r.label) for r in records))
    click.echo(f"{'LABEL':<{width}}  {'CREATED':<20}  LAST USED")
    for record in records:
        used = _utc(record.last_used) if record.last_used is not None else "never"
        click.echo(f"{record.label:<{width}}  {_utc(record.created):<20}  {used}")


@app_password.command("revoke")
@click.argument("name")
@click.argument("label")
@config_option
@data_dir_option
def app_password_revoke(
    name: str, label: str, config_path: Path | None, data_dir: Path | None
) -> None:
    """Revoke the app password LABEL of account NAME: it stops working at once."""
    directory = _data_dir(config_path, data_dir, must_exist=True)
    account = _existing_account(directory, name)

    async def revoke(store: Store) -> bool:
        return await store.delete_app_password(account, label)

    if not _with_store(directory, revoke):
        _fail(f"{account} has no app password labelled {label!r}")
    click.echo(f"Revoked the app password {label!r} of {account}.")


@user.group("totp")
def totp_group() -> None:
    """Two-factor sign-in with a time-based code (TOTP, RFC 6238)."""


@totp_group.command("enable")
@click.argument("name")
@click.option("--issuer", default="Roost", show_default=True, help="Name shown in the app.")
@click.option("--no-qr", is_flag=True, help="Print the otpauth:// URI only, no QR code.")
@config_option
@data_dir_option
def totp_enable(
    name: str, issuer: str, no_qr: bool, config_path: Path | None, data_dir: Path | None
) -> None:
    """Turn two-factor sign-in on for account NAME; print the secret for an app."""
    directory = _data_dir(config_path, data_dir, must_exist=True)
    account = _existing_account(directory, name)

    async def enable(store: Store) -> str:
        try:
            return await manage.enable_totp(store, account)
        except manage.CredentialError as error:
            _fail(str(error))

    secret = _with_store(directory, enable)
    uri = totp.provisioning_uri(secret, account, issuer)
    click.echo(f"Two-factor sign-in is on for {account}. Scan this with an authenticator app:")
    if not no_qr:
        click.echo(totp.qr_code_text(uri), nl=False)
    click.echo(uri)
    click.echo(
        "From now on the account password alone no longer signs in. Use an app password\n"
        "(roost user app-password add), or the password followed directly by the current\n"
        "6-digit code, without a space: password hunter2 and code 123456 make hunter2123456."
    )


@totp_group.command("disable")
@click.argument("name")
@config_option
@data_dir_option
def totp_disable(name: str, config_path: Path | None, data_dir: Path | None) -> None:
    """Turn two-factor sign-in off for account NAME."""
    directory = _data_dir(config_path, data_dir, must_exist=True)
    account = _existing_account(directory, name)

    async def disable(store: Store) -> bool:
        return await manage.disable_totp(store, account)

    if _with_store(directory, disable):
        click.echo(f"Two-factor sign-in is off for {account}.")
    else:
        click.echo(f"Two-factor sign-in was not on for {account}.")


def _existing_account(directory: Path, name: str) -> str:
    """The canonical name of account ``name``; fails with a message when absent."""

    async def lookup(store: Store) -> str:
        account = await find_account(store, name)
        if account is None:
            _fail(f"no account {name!r}")
        return account

    return _with_store(directory, lookup)


def _utc(epoch_seconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(epoch_seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _data_dir(config_path: Path | None, data_dir: Path | None, *, must_exist: bool) -> Path:
    if data_dir is not None:
        directory = data_dir
    elif config_path is not None:
        try:
            directory = Settings.load(config_path).server.data_dir
        except ConfigError as error:
            _fail(str(error), EXIT_CONFIG)
    else:
        directory = DEV_DATA_DIR
    directory = directory.absolute()
    if must_exist and not directory.is_dir():
        _fail(f"data directory {directory} does not exist")
    return directory


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            _fail("no password on standard input", EXIT_CONFIG)
        return password
    entered: str = click.prompt(
        "Password", hide_input=True, confirmation_prompt="Repeat the password"
    )
    return entered


def _with_store(directory: Path, action: Callable[[Store], Awaitable[_T]]) -> _T:
    async def go() -> _T:
        store = await open_store(directory)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except ServerError as error:
        _fail(str(error))
    except StoreError as error:
        _fail(f"store error: {error}")


# ---- check-config --------------------------------------------------------------------


@main.command("check-config")
@config_option
def check_config(config_path: Path | None) -> None:
    """Validate a configuration file: print OK, or the first problem."""
    if config_path is None:
        raise click.UsageError("give --config FILE (or set ROOST_CONFIG)")
    try:
        settings = Settings.load(config_path)
        build_tls_context(settings)
    except ConfigError as error:
        _fail(str(error), EXIT_CONFIG)
    click.echo(f"{config_path}: OK")
