"""Encryption at rest for connection secrets: Fernet under CONNECTIONS_ENCRYPTION_KEY, with one previous key.

Fernet (AES-128-CBC + HMAC-SHA256, https://cryptography.io/en/latest/fernet/) authenticates every token, so a
wrong key is an error, never garbage. Each key has a public check value (an HMAC of a fixed label), stored with
the data, so a wrong or missing key is found at start-up rather than on the first call.
"""

from __future__ import annotations

import hashlib
import hmac

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

CHECK_LABEL = b"connectors-service/connections/key-check/v1"
FINGERPRINT_LABEL = b"connectors-service/connections/fingerprint/v1"


class KeyProblem(ValueError):
    """A key that is not a Fernet key, or data that none of the configured keys opens."""


def generate_key() -> str:
    """A new random key, in the form CONNECTIONS_ENCRYPTION_KEY takes (url-safe base64 of 32 bytes)."""
    return Fernet.generate_key().decode()


def _fernet(key: str, name: str) -> Fernet:
    try:
        return Fernet(key.strip().encode())
    except (ValueError, TypeError):
        raise KeyProblem(f"{name} is not a Fernet key (32 url-safe base64-encoded bytes; see docs/connections.md)") from None


def key_check(key: str) -> str:
    """The key's public check value: 16 hex of HMAC(key, label); says which key encrypted a row."""
    return hmac.new(key.strip().encode(), CHECK_LABEL, hashlib.sha256).hexdigest()[:16]


class Keyring:
    """The current key (encrypts) and the previous one (only decrypts, during a rotation)."""

    def __init__(self, current: str, previous: str | None = None, *, ephemeral: bool = False) -> None:
        self.ephemeral = ephemeral
        keys = [_fernet(current, "CONNECTIONS_ENCRYPTION_KEY")]
        if previous:
            keys.append(_fernet(previous, "CONNECTIONS_ENCRYPTION_KEY_PREVIOUS"))
        self._fernet = MultiFernet(keys)
        self.current_id = key_check(current)
        self.previous_id = key_check(previous) if previous else None
        # A fingerprint key derived from, never equal to, the encryption key: a fingerprint reveals nothing of it.
        self._fingerprint_key = hmac.new(current.strip().encode(), FINGERPRINT_LABEL, hashlib.sha256).digest()

    def derived_key(self, label: bytes) -> bytes:
        """A key for another purpose (the OAuth state's HMAC), derived from the current key, never equal to it."""
        return hmac.new(self._fingerprint_key, label, hashlib.sha256).digest()

    def known(self, key_id: str) -> bool:
        """Whether data encrypted under this key id can be opened."""
        return key_id in (self.current_id, self.previous_id)

    def encrypt(self, values: dict[str, str]) -> str:
        """A dict of secrets as one Fernet token, under the current key."""
        return self._fernet.encrypt(orjson.dumps(values)).decode()

    def decrypt(self, token: str) -> dict[str, str]:
        """The secrets back, under whichever configured key encrypted them."""
        try:
            return orjson.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise KeyProblem("stored credentials do not open with the configured keys") from None

    def fingerprint(self, value: str) -> str:
        """First 8 hex of an HMAC of a secret: shows which value is set without revealing it."""
        return hmac.new(self._fingerprint_key, value.encode(), hashlib.sha256).hexdigest()[:8]
