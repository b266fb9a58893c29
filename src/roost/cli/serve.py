"""``roost serve`` (one process, or a supervisor of ``--workers N``), the hidden
``roost worker`` each of those runs, and ``roost check-config``."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import ssl
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from roost.auth import manage
from roost.auth.passwords import generate_password
from roost.cli.common import (
    EXIT_CONFIG,
    EXIT_RUNTIME,
    config_option,
    data_dir_option,
    default_config,
    fail,
    main,
    no_config,
    store_option,
)
from roost.config import (
    DEV_DATA_DIR,
    DEV_IMAP_LISTEN,
    DEV_IMAPS_LISTEN,
    DEV_LMTP_LISTEN,
    DEV_MANAGESIEVE_LISTEN,
    DEV_POP3_LISTEN,
    DEV_POP3S_LISTEN,
    LOG_LEVELS,
    MAX_WORKERS,
    ConfigError,
    ListenAddress,
    LogSettings,
    Settings,
    parse_lmtp_option,
    read_config_text,
)
from roost.config.submission import DEV_SUBMISSION_LISTEN, DEV_SUBMISSIONS_LISTEN
from roost.observability import sd_notify
from roost.observability.logs import setup_logging
from roost.runtime.app import run, run_server
from roost.runtime.listeners import (
    HTTP,
    LMTP,
    MANAGESIEVE,
    POP3,
    SUBMISSION,
    BoundAddress,
    ListenSocket,
    ServerError,
    bind_listeners,
    bind_unix_listeners,
)
from roost.runtime.opening import STORE_ENV, build_tls_context, open_store
from roost.runtime.privileges import PrivilegeError, drop_configured
from roost.store.base import Store

DEMO_ACCOUNT = "demo"

# The value of --pop3-listen / --pop3s-listen that turns those listeners off.
NO_LISTENER = "none"


# ---- serve ---------------------------------------------------------------------------


@main.command()
@config_option
@store_option
@click.option(
    "--dev",
    is_flag=True,
    help="Local development server: data in ./roost-data, IMAP+STARTTLS on "
    f"{DEV_IMAP_LISTEN}, IMAP over TLS on {DEV_IMAPS_LISTEN}, POP3+STLS on "
    f"{DEV_POP3_LISTEN}, POP3 over TLS on {DEV_POP3S_LISTEN}, LMTP on {DEV_LMTP_LISTEN}, "
    f"ManageSieve on {DEV_MANAGESIEVE_LISTEN}, submission on {DEV_SUBMISSION_LISTEN} and "
    f"{DEV_SUBMISSIONS_LISTEN}, a self-signed "
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
@click.option(
    "--lmtp-listen",
    multiple=True,
    metavar="ADDR",
    help=f"LMTP listener, unix:PATH or HOST:PORT (repeatable); '{NO_LISTENER}' for none.",
)
@click.option(
    "--managesieve-listen",
    multiple=True,
    metavar="HOST:PORT",
    help=f"ManageSieve listener (repeatable); '{NO_LISTENER}' for none.",
)
@click.option(
    "--submission-listen",
    multiple=True,
    metavar="HOST:PORT",
    help=f"Submission (STARTTLS) listener with --dev; '{NO_LISTENER}' for none.",
)
@click.option(
    "--submissions-listen",
    multiple=True,
    metavar="HOST:PORT",
    help=f"Submission implicit TLS listener with --dev; '{NO_LISTENER}' for none.",
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
    lmtp_listen: tuple[str, ...],
    managesieve_listen: tuple[str, ...],
    submission_listen: tuple[str, ...],
    submissions_listen: tuple[str, ...],
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
            lmtp_listen=lmtp_listen,
            managesieve_listen=managesieve_listen,
            submission_listen=submission_listen,
            submissions_listen=submissions_listen,
            log_level=log_level,
            workers=workers,
        ).read_config()
        settings = options.settings()
        setup_logging(settings.log.level, settings.log.format)
        tls_context = build_tls_context(settings)
        if settings.server.workers == 1:
            run(_serve(settings, tls_context, options))
        else:
            asyncio.run(_supervise(settings, options, starttls=tls_context is not None))
    except ConfigError as error:
        fail(str(error), EXIT_CONFIG)
    except ServerError as error:
        fail(str(error), EXIT_RUNTIME)
    except KeyboardInterrupt:  # before the signal handlers were in place
        fail("interrupted", EXIT_RUNTIME)


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
    lmtp_listen: tuple[str, ...] = ()
    managesieve_listen: tuple[str, ...] = ()
    submission_listen: tuple[str, ...] = ()
    submissions_listen: tuple[str, ...] = ()
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
            self.lmtp_listen,
            self.managesieve_listen,
            config_text=self.config_text,
            submission_listen=self.submission_listen,
            submissions_listen=self.submissions_listen,
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
        for name in (
            *("imap_listen", "imaps_listen", "pop3_listen", "pop3s_listen"),
            *("lmtp_listen", "managesieve_listen", "submission_listen", "submissions_listen"),
        ):
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
    lmtp_listen: Sequence[str] = (),
    managesieve_listen: Sequence[str] = (),
    *,
    config_text: str | None = None,
    submission_listen: Sequence[str] = (),
    submissions_listen: Sequence[str] = (),
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
            _without_none(lmtp_listen) if lmtp_listen else (DEV_LMTP_LISTEN,),
            managesieve_listen=_without_none(managesieve_listen)
            if managesieve_listen
            else (DEV_MANAGESIEVE_LISTEN,),
            submission_listen=(
                _without_none(submission_listen) if submission_listen else (DEV_SUBMISSION_LISTEN,)
            ),
            submissions_listen=(
                _without_none(submissions_listen)
                if submissions_listen
                else (DEV_SUBMISSIONS_LISTEN,)
            ),
        )
    config_path = default_config(config_path)
    if config_path is None:
        raise click.UsageError(f"{no_config()}, or --dev")
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
    if lmtp_listen:
        addresses = tuple(parse_lmtp_option(value) for value in _without_none(lmtp_listen))
        settings = settings.replace(lmtp=dataclasses.replace(settings.lmtp, listen=addresses))
    if managesieve_listen:
        sieve_listen = _listen_option(managesieve_listen, "--managesieve-listen")
        managesieve = dataclasses.replace(settings.managesieve, listen=sieve_listen)
        settings = settings.replace(managesieve=managesieve)
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


def _bind_and_drop(settings: Settings) -> list[ListenSocket] | None:
    """``[server] user``: bind every listener now, as root, then become that user —
    before the store is opened, so that everything the server writes is the user's.
    None (nothing bound) without it."""
    server = settings.server
    if server.user is None:
        return None
    sockets = bind_listeners(settings, unix=False)  # ports below 1024 need root
    try:
        drop_configured(server.user, server.group, server.data_dir)
        # Unix sockets (LMTP, roost deliver's in run/) are files: made as the user.
        sockets += bind_unix_listeners(settings)
    except (PrivilegeError, OSError, ServerError) as error:
        for listen in sockets:
            listen.sock.close()
        raise ServerError(str(error)) from None
    return sockets


def _reader(options: ServeOptions) -> Callable[[], Settings]:
    """Reads the configuration file again, with the same command-line overrides."""
    return lambda: dataclasses.replace(options, config_text=None).read_config().settings()


async def _serve(
    settings: Settings, tls_context: ssl.SSLContext | None, options: ServeOptions
) -> None:
    listen_sockets = _bind_and_drop(settings)
    store = await open_store(
        settings.server.data_dir,
        quota=settings.quota.limits,
        limits=settings.limits,
        special_folders=settings.imap.special_use_names,
        url=settings.store.postgresql_url,
        fsync=settings.store.fsync,
    )
    try:
        demo = await _ensure_demo_account(store) if settings.dev else None

        def banner(addresses: list[BoundAddress]) -> None:
            _print_banner(settings, addresses, starttls=tls_context is not None, demo=demo)
            sd_notify.ready()

        try:
            await run_server(
                settings,
                store=store,
                tls_context=tls_context,
                ready=banner,
                listen_sockets=listen_sockets,
                reload_settings=_reader(options),
            )
        finally:
            sd_notify.stopping()
    finally:
        await store.close()
        for listen in listen_sockets or ():
            listen.sock.close()


async def _supervise(settings: Settings, options: ServeOptions, *, starttls: bool) -> None:
    """``serve`` with several workers: the store is opened here only to prepare it (its
    schema, the --dev demo account); the workers open their own."""
    from roost.runtime.supervisor import Supervisor

    listen_sockets = _bind_and_drop(settings)  # the workers inherit the identity
    store = await open_store(
        settings.server.data_dir,
        quota=settings.quota.limits,
        limits=settings.limits,
        url=settings.store.postgresql_url,
        special_folders=settings.imap.special_use_names,
        fsync=settings.store.fsync,
    )
    try:
        demo = await _ensure_demo_account(store) if settings.dev else None
    finally:
        await store.close()

    def banner(addresses: list[BoundAddress]) -> None:
        _print_banner(settings, addresses, starttls=starttls, demo=demo)
        sd_notify.ready()

    try:
        await Supervisor(settings, options.to_json(), listen_sockets).run(ready=banner)
    finally:
        sd_notify.stopping()


@main.command("worker", hidden=True)
@click.argument("index", type=int)
def worker_command(index: int) -> None:
    """One worker process of ``serve --workers N``: started by the supervisor, which
    writes the worker's spec (worker.WorkerSpec) on standard input."""
    from roost.runtime.worker import WorkerSpec, run_worker

    try:
        spec = WorkerSpec.from_json(sys.stdin.buffer.read())
    except (ValueError, KeyError, TypeError) as error:
        fail(f"worker {index}: no valid worker spec on standard input ({error})", EXIT_CONFIG)
    try:
        options = ServeOptions.from_json(spec.serve)
        settings = options.settings()
        setup_logging(settings.log.level, settings.log.format, worker=spec.index)
        run_worker(settings, spec, build_tls_context(settings), _reader(options))
    except ConfigError as error:
        fail(f"worker {index}: {error}", EXIT_CONFIG)
    except ServerError as error:
        fail(f"worker {index}: {error}", EXIT_RUNTIME)
    except KeyboardInterrupt:  # before the signal handlers were in place
        fail(f"worker {index}: interrupted", EXIT_RUNTIME)


async def _ensure_demo_account(store: Store) -> str | None:
    """Make the demo account in an empty store. Return its name if it exists (made now
    or before), None when the store had other accounts and no demo: then the banner
    must not offer it."""
    accounts = await store.list_accounts()
    if accounts:
        return DEMO_ACCOUNT if DEMO_ACCOUNT in accounts else None
    password = generate_password()
    await manage.create_account(store, DEMO_ACCOUNT, password)
    click.echo(f"Created account {DEMO_ACCOUNT} with password {password}; it is not shown again.")
    return DEMO_ACCOUNT


def _print_banner(
    settings: Settings,
    addresses: Sequence[BoundAddress],
    *,
    starttls: bool,
    demo: str | None = None,
) -> None:
    lines = ["Roost is running."]
    for bound in addresses:
        if bound.protocol == HTTP:
            kind = "HTTP (metrics, autoconfig)"
        elif bound.protocol == LMTP:
            kind = "LMTP"
        elif bound.protocol == MANAGESIEVE:
            stls = starttls and settings.managesieve.starttls
            kind = "ManageSieve with STARTTLS" if stls else "ManageSieve (no TLS)"
        elif bound.protocol == SUBMISSION:
            kind = "submission over TLS" if bound.implicit_tls else "submission, STARTTLS"
        elif bound.protocol == POP3:
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
    if store_url := (os.environ.get(STORE_ENV) or settings.store.postgresql_url):
        from roost.store.postgres.pool import redact

        lines.append(f"  {'store':<26} {redact(store_url)}")
    else:
        lines.append(f"  {'data directory':<26} {settings.server.data_dir}")
    if settings.server.workers > 1:
        lines.append(f"  {'worker processes':<26} {settings.server.workers}")
    if settings.dev:
        lines.append(f"  {'self-signed certificate':<26} {settings.tls.cert}")
        if demo is not None:
            lines.append(
                f"Sign in as {demo!r}; your client must accept the self-signed certificate."
            )
        else:
            lines.append("Your client must accept the self-signed certificate.")
        if settings.imap.allow_plaintext_auth or settings.pop3.allow_plaintext_auth:
            lines.append("Passwords are accepted before STARTTLS/STLS on these loopback listeners.")
    lines.append("Stop with Ctrl-C.")
    click.echo("\n".join(lines))
    sys.stdout.flush()


# ---- user ----------------------------------------------------------------------------


# ---- check-config --------------------------------------------------------------------


@main.command("check-config")
@config_option
def check_config(config_path: Path | None) -> None:
    """Validate a configuration file: print OK, or the first problem."""
    config_path = default_config(config_path)
    if config_path is None:
        raise click.UsageError(no_config())
    try:
        settings = Settings.load(config_path)
        build_tls_context(settings)
    except ConfigError as error:
        fail(str(error), EXIT_CONFIG)
    click.echo(f"{config_path}: OK")
