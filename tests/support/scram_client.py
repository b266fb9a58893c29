"""A tiny client side of SCRAM-SHA-256 (RFC 5802 §3), written from the RFC and
independent of the server's code, for the tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


class ScramClient:
    def __init__(self, user: str, password: str, *, gs2_header: bytes = b"n,,") -> None:
        self.user = user.replace("=", "=3D").replace(",", "=2C").encode()
        # Enough of SASLprep for the passwords the tests use.
        self.password = unicodedata.normalize("NFKC", password).encode()
        self.gs2_header = gs2_header
        self.nonce = secrets.token_urlsafe(18).encode()
        self.server_signature = b""

    @property
    def first_bare(self) -> bytes:
        return b"n=" + self.user + b",r=" + self.nonce

    def first(self) -> bytes:
        return self.gs2_header + self.first_bare

    def final(self, server_first: bytes) -> bytes:
        attributes = dict(item.split(b"=", 1) for item in server_first.split(b","))
        nonce, salt, iterations = attributes[b"r"], attributes[b"s"], int(attributes[b"i"])
        assert nonce.startswith(self.nonce)
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(salt), iterations)
        client_key = _hmac(salted, b"Client Key")
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = b"c=" + base64.b64encode(self.gs2_header) + b",r=" + nonce
        auth_message = b",".join((self.first_bare, server_first, without_proof))
        signature = _hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self.server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        return without_proof + b",p=" + base64.b64encode(proof)

    def verify(self, server_final: bytes) -> bool:
        return server_final == b"v=" + base64.b64encode(self.server_signature)
