"""The per-protocol contexts a server hands its connections: what each protocol's
sessions share in one process (the store, the authenticator and its throttle, the
per-account session count, TLS, limits). Made at start, and again on SIGHUP for those
whose settings can change (runtime/reload.py)."""

from __future__ import annotations

import ssl

from roost.auth.authenticator import StoreAuthenticator
from roost.auth.base import Authenticator
from roost.auth.known_addresses import StoreKnownAddresses
from roost.auth.throttle import LoginThrottle
from roost.config import Settings
from roost.delivery.filtering import sieve_context
from roost.imap.context import ImapContext
from roost.lmtp.context import LmtpContext
from roost.managesieve.context import ManageSieveContext, ManageSieveLimits
from roost.observability.sessions import SessionRegistry
from roost.pop3.context import Pop3Context
from roost.runtime.coordination import Coordination
from roost.runtime.data_dir import sweep_spool
from roost.store.base import Store
from roost.submission.context import SubmissionContext


def pop3_context(
    settings: Settings,
    imap: ImapContext,
    tls_context: ssl.SSLContext | None,
    coordination: Coordination,
    sessions: SessionRegistry,
) -> Pop3Context:
    """Shares the store, the authenticator (so its throttle) and the per-account
    session count with IMAP."""
    pop3 = settings.pop3
    return Pop3Context(
        store=imap.store,
        authenticator=imap.authenticator,
        limits=settings.limits.pop3,
        policy=pop3.policy(),
        tls_context=tls_context if pop3.starttls else None,
        allow_plaintext_auth=pop3.allow_plaintext_auth,
        account_connections=imap.account_connections,
        locks=coordination.maildrop_locks,
        sign_in_times=coordination.sign_in_times,
        worker=coordination.worker,
        sessions=sessions,
    )


def lmtp_context(settings: Settings, imap: ImapContext) -> LmtpContext:
    return LmtpContext(
        store=imap.store,
        lmtp=settings.lmtp,
        delivery=settings.delivery,
        server_name=settings.server.hostname,
        spool_dir=settings.server.data_dir / "spool",
        over_quota_tempfail=settings.quota.over_quota_tempfail,
        sieve=sieve_context(settings.sieve, settings.server.hostname, settings.delivery.domains),
    )


def managesieve_context(
    settings: Settings, imap: ImapContext, tls_context: ssl.SSLContext | None
) -> ManageSieveContext:
    """Shares the store, the authenticator (so its throttle) and the per-account
    session count with IMAP; STARTTLS with IMAP's certificate."""
    section = settings.managesieve
    return ManageSieveContext(
        store=imap.store,
        authenticator=imap.authenticator,
        limits=ManageSieveLimits(
            max_script_size=section.max_script_size,
            max_scripts=section.max_scripts,
            timeout=section.timeout,
            max_redirects=settings.sieve.max_redirects,
        ),
        tls_context=tls_context if section.starttls else None,
        allow_plaintext_auth=section.allow_plaintext_auth,
        account_connections=imap.account_connections,
    )


def submission_context(
    settings: Settings, imap: ImapContext, tls_context: ssl.SSLContext | None
) -> SubmissionContext:
    return SubmissionContext(
        store=imap.store,
        authenticator=imap.authenticator,
        submission=settings.submission,
        delivery=settings.delivery,
        server_name=settings.server.hostname,
        spool_dir=settings.server.data_dir / "spool",
        tls_context=tls_context,
    )


def imap_context(
    settings: Settings,
    store: Store,
    authenticator: Authenticator | None,
    tls_context: ssl.SSLContext | None,
    coordination: Coordination,
    sessions: SessionRegistry,
) -> ImapContext:
    authenticator = authenticator or StoreAuthenticator(
        store,
        LoginThrottle(
            settings.auth.throttle_policy(),
            known=StoreKnownAddresses(store),
            # A store shared by several nodes counts failures for all of them.
            shared=getattr(store, "shared_sign_in_failures", None) or coordination.sign_in_failures,
        ),
        tokens=settings.auth.token_validator(),
        scram=settings.auth.scram,
        cache=settings.auth.sign_in_cache(),
    )
    spool_dir = settings.server.data_dir / "spool"
    spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if coordination.worker is None:
        sweep_spool(spool_dir)  # alone: nothing is using them (workers: supervisor.py)
    return ImapContext(
        store=store,
        authenticator=authenticator,
        limits=settings.imap_limits(),
        tls_context=tls_context if settings.imap.starttls else None,
        allow_plaintext_auth=settings.imap.allow_plaintext_auth,
        spool_dir=spool_dir,
        account_connections=coordination.account_connections,
        worker=coordination.worker,
        sessions=sessions,
    )
