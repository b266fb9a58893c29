"""One ManageSieve session (RFC 5804): a state machine fed commands, returning replies.

No sockets: ``handle(command)`` returns a ``Reply`` — the bytes to send and what the
connection must do next (start TLS, close). Two states, as the RFC has them: before and
after AUTHENTICATE; UNAUTHENTICATE (RFC 5804 §2.14) goes back.

Invariants:

* A script is compiled before it is stored (PUTSCRIPT) and is stored with its compiled
  form; a script that does not compile is refused with the line and column of the error
  and nothing is changed (RFC 5804 §2.6).
* Size and count limits are checked before the script is read: the receiver refuses an
  oversized literal before reading it, HAVESPACE and PUTSCRIPT answer
  ``NO (QUOTA/MAXSIZE)`` or ``NO (QUOTA/MAXSCRIPTS)`` (RFC 5804 §1.3).
* Sign-in goes through the one ``Authenticator`` (throttling, app passwords, two-factor)
  by the SASL mechanisms every protocol offers (``auth.sasl``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from roost import sieve
from roost.auth import sasl
from roost.auth.base import AuthResult
from roost.auth.scram import ScramSha256Mechanism
from roost.delivery.filtering import store_script
from roost.managesieve.context import ManageSieveContext
from roost.managesieve.wire import Atom, Command, Number, String, Token, quoted, response
from roost.sieve.compiled import Node
from roost.store.base import Account, NoSuchScript, ScriptActive, ScriptExists, StoreError

log = logging.getLogger("roost.managesieve")

# RFC 5804 §1.6: a script name is UTF-8 without control characters.
_BAD_NAME_CHARS = {chr(c) for c in range(0x20)} | {"\x7f", "\u2028", "\u2029"}


@dataclass(frozen=True, slots=True)
class Reply:
    data: bytes
    start_tls: bool = False
    close: bool = False


class CommandFailed(Exception):
    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


def _ok(text: str = "", code: str | None = None) -> Reply:
    return Reply(response("OK", code, text or None))


class Session:
    def __init__(self, context: ManageSieveContext, *, tls_active: bool, remote_ip: str) -> None:
        self.context = context
        self.tls_active = tls_active
        self.remote_ip = remote_ip
        self.account: Account | None = None
        self.account_name: str | None = None
        self.sasl: sasl.SaslSignIn | None = None
        self.bad_commands = 0

    # ---- capabilities --------------------------------------------------------------

    @property
    def plaintext_auth_allowed(self) -> bool:
        return self.tls_active or self.context.allow_plaintext_auth

    @property
    def starttls_offered(self) -> bool:
        return self.context.tls_context is not None and not self.tls_active

    def capabilities(self) -> bytes:
        """RFC 5804 §1.7. SIEVE lists exactly the engine's extensions; no NOTIFY (the
        engine has no enotify). SASL is empty until sign-in is possible."""
        mechanisms = ""
        if self.plaintext_auth_allowed and self.account is None:
            mechanisms = " ".join(sasl.available_mechanisms(self.context.authenticator))
        lines: list[tuple[bytes, bytes | None]] = [
            (b"IMPLEMENTATION", b"Roost"),
            (b"SIEVE", " ".join(sorted(sieve.EXTENSIONS)).encode()),
            (b"SASL", mechanisms.encode()),
            (b"MAXREDIRECTS", str(self.context.limits.max_redirects).encode()),
            (b"VERSION", b"1.0"),
        ]
        if self.starttls_offered and self.account is None:
            lines.append((b"STARTTLS", None))
        if self.account is not None:
            lines.append((b"UNAUTHENTICATE", None))
        out = b""
        for name, value in lines:
            out += quoted(name) + (b" " + quoted(value) if value is not None else b"") + b"\r\n"
        return out

    def greeting(self) -> bytes:
        return self.capabilities() + response("OK", None, "Roost ManageSieve ready")

    # ---- dispatch ------------------------------------------------------------------

    async def handle(self, command: Command) -> Reply:
        try:
            if self.sasl is not None:
                return await self._sasl_step(command)
            handler = _COMMANDS.get(command.name)
            if handler is None:
                raise CommandFailed(f"Unknown command {command.name[:32] or '(none)'}")
            needs_account, run = handler
            if needs_account and self.account is None:
                raise CommandFailed("Authenticate first")
            if not needs_account and self.account is not None and command.name in _PREAUTH:
                raise CommandFailed("Already authenticated")
            reply = await run(self, command.args)
            self.bad_commands = 0
            return reply
        except CommandFailed as failure:
            return self._refuse(failure.text, failure.code)
        except StoreError as error:
            log.warning("managesieve store error user=%s: %s", self.account_name, error)
            return Reply(response("NO", "TRYLATER", "Storage trouble, try again later"))

    def bad(self, reason: str) -> Reply:
        self.sasl = None  # a malformed answer ends an exchange in progress
        return self._refuse(f"Syntax error: {reason}", None)

    def _refuse(self, text: str, code: str | None) -> Reply:
        """NO; after ``max_bad_commands`` in a row, BYE too and the connection closes."""
        self.bad_commands += 1
        close = self.bad_commands >= self.context.limits.max_bad_commands
        data = response("NO", code, text)
        if close:
            data += response("BYE", None, "Too many errors")
        return Reply(data, close=close)

    async def close(self) -> None:
        await self._sign_out()

    async def _sign_out(self) -> None:
        if self.account is not None:
            account, self.account = self.account, None
            await account.close()
        if self.account_name is not None:
            self.context.account_connections.release(self.account_name, self.remote_ip)
            self.account_name = None

    # ---- not authenticated ---------------------------------------------------------

    async def authenticate(self, args: tuple[Token, ...]) -> Reply:
        """RFC 5804 §2.1: AUTHENTICATE mechanism [initial-response]."""
        if not self.plaintext_auth_allowed:
            raise CommandFailed("Sign-in needs TLS: use STARTTLS first", "ENCRYPT-NEEDED")
        mechanism = _string(args, 0, "a mechanism name")
        initial: bytes | None = None
        if len(args) > 1:
            decoded = sasl.decode_line(_bytes(args, 1))
            if not isinstance(decoded, bytes):
                raise CommandFailed("Invalid initial response")
            initial = decoded
        exchange = sasl.SaslSignIn.for_mechanism(
            mechanism,
            self.context.authenticator,
            remote_ip=self.remote_ip,
            protocol="managesieve",
        )
        if exchange is None:
            raise CommandFailed(f"Unsupported mechanism {mechanism[:32]}")
        return await self._advance(exchange, await exchange.start(initial))

    async def _sasl_step(self, command: Command) -> Reply:
        exchange = self.sasl
        assert exchange is not None
        self.sasl = None
        if command.name or len(command.args) != 1 or not isinstance(command.args[0], String):
            raise CommandFailed("Authentication cancelled: expected a string")
        return await self._advance(exchange, await exchange.step(command.args[0].value))

    async def _advance(self, exchange: sasl.SaslSignIn, outcome: sasl.SignInOutcome) -> Reply:
        match outcome:
            case sasl.Challenge() as challenge if _is_scram_final(exchange, challenge):
                # RFC 5804 §2.1: additional data with success goes in OK (SASL "...");
                # the empty answer IMAP's client would send is given here instead.
                final = await exchange.step(b"")
                if isinstance(final, sasl.SaslVerdict) and final.result.ok:
                    return await self._signed_in(final.result, challenge.encoded())
                return await self._advance(exchange, final)
            case sasl.Challenge() as challenge:
                self.sasl = exchange
                return Reply(quoted(challenge.encoded()) + b"\r\n")
            case sasl.SaslVerdict(result=result):
                return await self._signed_in(result)
            case sasl.SaslCancelled():
                raise CommandFailed("Authentication cancelled")
            case sasl.SaslFailure(reason=reason):
                log.info("managesieve sasl failure ip=%s: %s", self.remote_ip, reason)
                raise CommandFailed("Authentication failed")
        raise AssertionError(outcome)

    async def _signed_in(self, result: AuthResult, final_data: bytes = b"") -> Reply:
        if result.throttled:
            raise CommandFailed("Too many failed sign-ins; try again later", "TRYLATER")
        if result.account is None:
            raise CommandFailed("Authentication failed")
        refused_by = await self.context.account_connections.admit(result.account, self.remote_ip)
        if refused_by is not None:
            raise CommandFailed(f"Too many connections for this account ({refused_by})", "TRYLATER")
        self.account_name = result.account
        self.account = await self.context.store.open_account(result.account)
        log.info("managesieve sign-in ip=%s user=%s", self.remote_ip, result.account)
        if final_data:
            return _ok("Authenticated", "SASL " + quoted(final_data).decode("ascii"))
        return _ok("Authenticated")

    async def starttls(self, args: tuple[Token, ...]) -> Reply:
        if not self.starttls_offered:
            raise CommandFailed("STARTTLS is not available")
        return Reply(response("OK", None, "Begin TLS negotiation now"), start_tls=True)

    def tls_started(self) -> bytes:
        """RFC 5804 §2.2: after the handshake, the capabilities again and OK."""
        self.tls_active = True
        return self.capabilities() + response("OK", None, "TLS active")

    # ---- any state -----------------------------------------------------------------

    async def capability(self, args: tuple[Token, ...]) -> Reply:
        return Reply(self.capabilities() + response("OK"))

    async def logout(self, args: tuple[Token, ...]) -> Reply:
        return Reply(response("OK", None, "Bye"), close=True)

    async def noop(self, args: tuple[Token, ...]) -> Reply:
        """RFC 5804 §2.13: the optional string comes back in a TAG response code."""
        if args:
            return _ok("Done", "TAG " + quoted(_bytes(args, 0)).decode("utf-8", "replace"))
        return _ok("Done")

    # ---- authenticated -------------------------------------------------------------

    def _account(self) -> Account:
        assert self.account is not None
        return self.account

    async def unauthenticate(self, args: tuple[Token, ...]) -> Reply:
        await self._sign_out()
        return _ok("Signed out")

    async def havespace(self, args: tuple[Token, ...]) -> Reply:
        name = _name(args, 0, self.context.limits.max_name_length)
        size = args[1].value if len(args) > 1 and isinstance(args[1], Number) else None
        if size is None:
            raise CommandFailed("HAVESPACE needs a name and a size")
        await self._check_space(name, size)
        return _ok("Putscript would succeed")

    async def _check_space(self, name: str, size: int) -> None:
        limits = self.context.limits
        if size > limits.max_script_size:
            raise CommandFailed(
                f"Scripts may be at most {limits.max_script_size} octets", "QUOTA/MAXSIZE"
            )
        names = {script.name for script in await self._account().list_scripts()}
        if name not in names and len(names) >= limits.max_scripts:
            raise CommandFailed(f"At most {limits.max_scripts} scripts", "QUOTA/MAXSCRIPTS")

    async def putscript(self, args: tuple[Token, ...]) -> Reply:
        name = _name(args, 0, self.context.limits.max_name_length)
        content = _bytes(args, 1)
        await self._check_space(name, len(content))
        source = _source(content)
        try:
            compiled = await store_script(self._account(), name, source)
        except sieve.SieveSyntaxError as error:
            raise CommandFailed(str(error)) from None
        return _with_warnings(_warnings(compiled, name))

    async def checkscript(self, args: tuple[Token, ...]) -> Reply:
        content = _bytes(args, 0)
        if len(content) > self.context.limits.max_script_size:
            raise CommandFailed("Script too large", "QUOTA/MAXSIZE")
        try:
            compiled = sieve.compile_script(_source(content))
        except sieve.SieveSyntaxError as error:
            raise CommandFailed(str(error)) from None
        return _with_warnings(_warnings(compiled, None))

    async def listscripts(self, args: tuple[Token, ...]) -> Reply:
        out = b""
        for script in await self._account().list_scripts():
            out += quoted(script.name) + (b" ACTIVE" if script.active else b"") + b"\r\n"
        return Reply(out + response("OK", None, "Listscripts completed"))

    async def setactive(self, args: tuple[Token, ...]) -> Reply:
        name = _string(args, 0, "a script name")
        try:
            await self._account().set_active_script(name or None)
        except NoSuchScript:
            raise CommandFailed("There is no script of that name", "NONEXISTENT") from None
        return _ok("Active script set" if name else "No script active")

    async def getscript(self, args: tuple[Token, ...]) -> Reply:
        name = _string(args, 0, "a script name")
        try:
            script = await self._account().get_script(name)
        except NoSuchScript:
            raise CommandFailed("There is no script of that name", "NONEXISTENT") from None
        data = script.source.encode()
        return Reply(b"{%d}\r\n" % len(data) + data + b"\r\n" + response("OK"))

    async def deletescript(self, args: tuple[Token, ...]) -> Reply:
        name = _string(args, 0, "a script name")
        try:
            await self._account().delete_script(name)
        except NoSuchScript:
            raise CommandFailed("There is no script of that name", "NONEXISTENT") from None
        except ScriptActive:
            raise CommandFailed("The active script cannot be deleted", "ACTIVE") from None
        return _ok("Deleted")

    async def renamescript(self, args: tuple[Token, ...]) -> Reply:
        old = _string(args, 0, "the old name")
        new = _name(args, 1, self.context.limits.max_name_length)
        try:
            await self._account().rename_script(old, new)
        except NoSuchScript:
            raise CommandFailed("There is no script of that name", "NONEXISTENT") from None
        except ScriptExists:
            raise CommandFailed("A script of that name exists", "ALREADYEXISTS") from None
        return _ok("Renamed")


def _is_scram_final(exchange: sasl.SaslSignIn, challenge: sasl.Challenge) -> bool:
    """SCRAM's server-final message (RFC 5802 §7: "v=" signature, after which the
    exchange ends); every other challenge needs the client's answer."""
    return isinstance(exchange.mechanism, ScramSha256Mechanism) and challenge.data.startswith(b"v=")


def _bytes(args: tuple[Token, ...], index: int) -> bytes:
    if index >= len(args) or not isinstance(args[index], String):
        raise CommandFailed("Missing a string argument")
    token = args[index]
    assert isinstance(token, String)
    return token.value


def _string(args: tuple[Token, ...], index: int, what: str) -> str:
    if index >= len(args):
        raise CommandFailed(f"Missing {what}")
    token = args[index]
    if isinstance(token, Atom):
        return token.value  # lenient: an unquoted mechanism name
    try:
        return _bytes(args, index).decode("utf-8")
    except UnicodeDecodeError:
        raise CommandFailed(f"{what} is not UTF-8") from None


def _name(args: tuple[Token, ...], index: int, max_length: int) -> str:
    name = _string(args, index, "a script name")
    if not name or len(name) > max_length or _BAD_NAME_CHARS & set(name):
        raise CommandFailed("Invalid script name")
    return name


def _source(content: bytes) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CommandFailed(f"The script is not UTF-8 (octet {error.start})") from None


def _warnings(compiled: sieve.CompiledScript, own_name: str | None) -> list[str]:
    """What compiles but cannot work: a script that includes itself fails when run (RFC
    6609 §3.2), and its mail is then kept in INBOX."""
    found: list[str] = []

    def walk(nodes: tuple[Node, ...]) -> None:
        for node in nodes:
            if (
                node.name == "include"
                and own_name is not None
                and node.tags.get("location") != "global"
                and node.args
                and node.args[0] == own_name
            ):
                found.append(f"line {node.line}: the script includes itself; it will fail")
            walk(node.tests)
            if node.block is not None:
                walk(node.block)

    walk(compiled.commands)
    return found


def _with_warnings(warnings: list[str]) -> Reply:
    if warnings:
        return _ok("; ".join(warnings), "WARNINGS")
    return _ok("")


_PREAUTH = frozenset({"AUTHENTICATE", "STARTTLS"})

# name -> (needs an authenticated session, handler). RFC 5804 §2.
_COMMANDS = {
    "CAPABILITY": (False, Session.capability),
    "AUTHENTICATE": (False, Session.authenticate),
    "STARTTLS": (False, Session.starttls),
    "LOGOUT": (False, Session.logout),
    "NOOP": (False, Session.noop),
    "UNAUTHENTICATE": (True, Session.unauthenticate),
    "HAVESPACE": (True, Session.havespace),
    "PUTSCRIPT": (True, Session.putscript),
    "CHECKSCRIPT": (True, Session.checkscript),
    "LISTSCRIPTS": (True, Session.listscripts),
    "SETACTIVE": (True, Session.setactive),
    "GETSCRIPT": (True, Session.getscript),
    "DELETESCRIPT": (True, Session.deletescript),
    "RENAMESCRIPT": (True, Session.renamescript),
}
