"""SCRAM-SHA-256 (RFC 5802, RFC 7677): the stored keys and the sans-IO server mechanism.

The server never learns the password during a SCRAM exchange, so it cannot check it
against the argon2id hash: it keeps, per account, what RFC 5802 §3 calls the
authentication information — salt, iteration count, StoredKey = H(ClientKey) and
ServerKey — computed when the password is set (``roost user add`` / ``passwd``) from the
password prepared with SASLprep (RFC 4013). They are stored as one string in the form
PostgreSQL uses::

    SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>

Accounts whose password was set before Roost kept these keys have none: SCRAM fails for
them (and says why in the log) until the password is set again.

The exchange (RFC 5802 §5, §7)::

    C: n,,n=user,r=<client nonce>                      client-first
    S: r=<client nonce + server nonce>,s=<salt>,i=<n>  server-first
    C: c=biws,r=<nonce>,p=<ClientProof>                client-final
    S: v=<ServerSignature>                             server-final
    C: (empty)

Channel binding: the GS2 flags "n" (client does not support it) and "y" (client does,
but thinks the server does not) are accepted; "p=..." is refused, since Roost offers no
SCRAM-SHA-256-PLUS. An authorization identity ("a=") must equal the user name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from roost.auth.base import ScramParameters
from roost.auth.sasl_types import (
    MAX_FIELD_OCTETS,
    Challenge,
    MechanismDone,
    MechanismOutcome,
    NeedScramParameters,
    NeedScramProofCheck,
    SaslFailure,
)
from roost.auth.saslprep import saslprep

MECHANISM = "SCRAM-SHA-256"
# RFC 7677 §4: at least 4096. The client pays this on every sign-in it does not cache;
# an attacker holding users.db pays it per guess.
DEFAULT_ITERATIONS = 8192
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 1_000_000  # refuse stored keys that would ask clients for absurd work
SALT_BYTES = 16
_KEY_BYTES = 32
MAX_MESSAGE_OCTETS = 4096
_PREFIX = MECHANISM + "$"
_PRINTABLE_NONCE = re.compile(rb"[\x21-\x2b\x2d-\x7e]+")  # RFC 5802 §7: printable but ","


@dataclass(frozen=True, slots=True)
class ScramKeys:
    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    def encode(self) -> str:
        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode("ascii")

        return (
            f"{_PREFIX}{self.iterations}:{b64(self.salt)}"
            f"${b64(self.stored_key)}:{b64(self.server_key)}"
        )

    @classmethod
    def decode(cls, text: str) -> ScramKeys:
        """The keys from their stored form; ValueError when malformed."""
        if not text.startswith(_PREFIX):
            raise ValueError("not SCRAM-SHA-256 keys")
        try:
            parameters, keys = text[len(_PREFIX) :].split("$")
            iterations_text, salt_text = parameters.split(":")
            stored_text, server_text = keys.split(":")
            iterations = int(iterations_text)
            salt = base64.b64decode(salt_text, validate=True)
            stored_key = base64.b64decode(stored_text, validate=True)
            server_key = base64.b64decode(server_text, validate=True)
        except (ValueError, binascii.Error) as error:
            raise ValueError(f"malformed SCRAM keys: {error}") from None
        if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS or not salt:
            raise ValueError("SCRAM keys with unusable parameters")
        if len(stored_key) != _KEY_BYTES or len(server_key) != _KEY_BYTES:
            raise ValueError("SCRAM keys of the wrong length")
        return cls(iterations, salt, stored_key, server_key)

    @property
    def parameters(self) -> ScramParameters:
        return ScramParameters(salt=self.salt, iterations=self.iterations)


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def salted_password(password: str, salt: bytes, iterations: int) -> bytes:
    """Hi(Normalize(password), salt, i) of RFC 5802 §2.2; ValueError if SASLprep fails."""
    return hashlib.pbkdf2_hmac("sha256", saslprep(password).encode("utf-8"), salt, iterations)


def derive_keys(
    password: str, *, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS
) -> ScramKeys:
    """The keys to store for ``password``; ValueError where SASLprep refuses it (a
    prohibited character): such a password works with every mechanism but SCRAM."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    salted = salted_password(password, salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return ScramKeys(
        iterations=iterations,
        salt=salt,
        stored_key=hashlib.sha256(client_key).digest(),
        server_key=_hmac(salted, b"Server Key"),
    )


def mock_keys(secret: bytes, username: str) -> ScramKeys:
    """Keys for a user who has none, the same each time for one name (RFC 5802 §5.1:
    the salt must not show that the account does not exist); no proof matches them."""
    seed = _hmac(secret, b"roost scram mock\x00" + username.casefold().encode("utf-8"))
    return ScramKeys(
        iterations=DEFAULT_ITERATIONS,
        salt=seed[:SALT_BYTES],
        stored_key=_hmac(seed, b"stored"),
        server_key=_hmac(seed, b"server"),
    )


def check_proof(keys: ScramKeys, auth_message: bytes, client_proof: bytes) -> bytes | None:
    """The ServerSignature when ``client_proof`` is right (RFC 5802 §3), else None. The
    work is the same either way."""
    client_signature = _hmac(keys.stored_key, auth_message)
    if len(client_proof) != len(client_signature):
        client_proof = bytes(len(client_signature))
    client_key = _xor(client_proof, client_signature)
    server_signature = _hmac(keys.server_key, auth_message)
    if hmac.compare_digest(hashlib.sha256(client_key).digest(), keys.stored_key):
        return server_signature
    return None


def _decode_saslname(raw: bytes) -> str:
    """RFC 5802 §7 saslname: "=2C" is ",", "=3D" is "=", any other "=" is an error."""
    text = raw.decode("utf-8")
    if re.search(r"=(?!2C|3D)", text):
        raise ValueError("bad escape in a SCRAM name")
    return text.replace("=2C", ",").replace("=3D", "=")


def _server_nonce() -> str:
    return secrets.token_urlsafe(24)  # letters, digits, "-" and "_": never ","


class ScramSha256Mechanism:
    """The server side of one SCRAM-SHA-256 exchange."""

    name = MECHANISM

    def __init__(self, *, nonce: Callable[[], str] = _server_nonce) -> None:
        self._make_nonce = nonce
        self._state = "client-first"
        self._gs2_header = b""
        self._client_first_bare = b""
        self._server_first = b""
        self._nonce = b""
        self._username = ""

    def start(self, initial_response: bytes | None) -> MechanismOutcome:
        if initial_response is None:
            return Challenge(b"")
        return self.step(initial_response)

    def step(self, response: bytes) -> MechanismOutcome:
        if len(response) > MAX_MESSAGE_OCTETS:
            return self._fail("SCRAM message too long")
        match self._state:
            case "client-first":
                return self._client_first(response)
            case "client-final":
                return self._client_final(response)
            case "server-final-sent":
                self._state = "done"
                if response:  # RFC 5802 §5: the client answers the outcome with nothing
                    return self._fail("SCRAM client sent data after the server-final message")
                return MechanismDone()
        return self._fail("SCRAM exchange already over")

    def _fail(self, reason: str, *, authorization: bool = False) -> SaslFailure:
        self._state = "done"
        return SaslFailure(reason, authorization_failed=authorization)

    def _client_first(self, message: bytes) -> MechanismOutcome:
        # gs2-header = gs2-cbind-flag "," [authzid] ","
        parts = message.split(b",", 2)
        if len(parts) != 3:
            return self._fail("SCRAM client-first message without a GS2 header")
        flag, authzid_part, bare = parts
        if flag.startswith(b"p="):
            return self._fail("SCRAM channel binding requested; only SCRAM-SHA-256 is offered")
        if flag not in (b"n", b"y"):
            return self._fail("SCRAM client-first message with a bad GS2 flag")
        attributes = bare.split(b",")
        if len(attributes) < 2 or attributes[0].startswith(b"m="):
            return self._fail("SCRAM client-first message malformed or with mandatory extension")
        name_part, nonce_part = attributes[0], attributes[1]
        if not name_part.startswith(b"n=") or not nonce_part.startswith(b"r="):
            return self._fail("SCRAM client-first message without n= and r=")
        try:
            username = _decode_saslname(name_part[2:])
            authzid = _decode_saslname(authzid_part[2:]) if authzid_part else ""
        except (UnicodeDecodeError, ValueError):
            return self._fail("SCRAM user name is not a valid saslname")
        if authzid_part and not authzid_part.startswith(b"a="):
            return self._fail("SCRAM authorization identity without a=")
        if not username or len(username.encode("utf-8")) > MAX_FIELD_OCTETS:
            return self._fail("SCRAM user name empty or too long")
        if authzid and authzid != username:
            return self._fail("SCRAM authzid differs from the user name", authorization=True)
        client_nonce = nonce_part[2:]
        if not _PRINTABLE_NONCE.fullmatch(client_nonce):
            return self._fail("SCRAM client nonce is empty or not printable")
        self._gs2_header = flag + b"," + authzid_part + b","
        self._client_first_bare = bare
        self._nonce = client_nonce + self._make_nonce().encode("ascii")
        self._username = username
        self._state = "waiting-for-parameters"
        return NeedScramParameters(username=username, resume=self._send_server_first)

    def _send_server_first(self, parameters: ScramParameters) -> MechanismOutcome:
        if self._state != "waiting-for-parameters":
            return self._fail("SCRAM parameters at the wrong time")
        salt = base64.b64encode(parameters.salt)
        self._server_first = b"r=%s,s=%s,i=%d" % (self._nonce, salt, parameters.iterations)
        self._state = "client-final"
        return Challenge(self._server_first)

    def _client_final(self, message: bytes) -> MechanismOutcome:
        without_proof, separator, proof_part = message.rpartition(b",")
        if not separator or not proof_part.startswith(b"p="):
            return self._fail("SCRAM client-final message without a proof")
        attributes = without_proof.split(b",")
        if len(attributes) < 2:
            return self._fail("SCRAM client-final message malformed")
        binding, nonce = attributes[0], attributes[1]
        if binding != b"c=" + base64.b64encode(self._gs2_header):
            return self._fail("SCRAM channel binding data does not match the GS2 header")
        if nonce != b"r=" + self._nonce:
            return self._fail("SCRAM nonce does not match")
        try:
            proof = base64.b64decode(proof_part[2:], validate=True)
        except (binascii.Error, ValueError):
            return self._fail("SCRAM proof is not base64")
        auth_message = b",".join((self._client_first_bare, self._server_first, without_proof))
        self._state = "waiting-for-verdict"
        return NeedScramProofCheck(
            username=self._username,
            auth_message=auth_message,
            client_proof=proof,
            resume=self._send_server_final,
        )

    def _send_server_final(self, server_signature: bytes) -> MechanismOutcome:
        if self._state != "waiting-for-verdict":
            return self._fail("SCRAM verdict at the wrong time")
        self._state = "server-final-sent"
        return Challenge(b"v=" + base64.b64encode(server_signature))
