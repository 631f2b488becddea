"""Encryption at rest of the tenants' Twilio auth tokens (Fernet, with key rotation).

Keys come from ``SB_TENANT_KEYS`` (comma-separated) or ``SB_TENANT_KEYS_FILE`` (a mounted
secret, one key per line). The first key encrypts; every key decrypts, so a new key can be
put first, tokens re-encrypted with ``rotate``, and the old key dropped afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from switchboard_runtime.config import ConfigError

KEYS_ENV = "SB_TENANT_KEYS"
KEYS_FILE_ENV = "SB_TENANT_KEYS_FILE"


class TokenDecryptError(ValueError):
    """A token cannot be decrypted with any configured key (wrong keys or corrupted data)."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


def _parse_keys(raw: str, separator: str) -> list[str]:
    keys = (part.strip() for part in raw.split(separator))
    return [key for key in keys if key and not key.startswith("#")]


class TokenCipher:
    def __init__(self, keys: Sequence[str], *, source: str = "keys") -> None:
        if not keys:
            raise ConfigError(
                f"no tenant encryption key configured: set {KEYS_ENV} or {KEYS_FILE_ENV} "
                "(make one with `switchboard-tenants generate-key`)"
            )
        try:
            fernets = [Fernet(key.encode()) for key in keys]
        except ValueError:
            # Never echo the keys: name where they came from instead.
            raise ConfigError(
                f"{source} holds a value that is not a Fernet key (32 url-safe base64 bytes)"
            ) from None
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TokenCipher:
        env = os.environ if environ is None else environ
        inline, path = env.get(KEYS_ENV, "").strip(), env.get(KEYS_FILE_ENV, "").strip()
        if inline and path:
            raise ConfigError(f"set only one of {KEYS_ENV} and {KEYS_FILE_ENV}")
        if path:
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise ConfigError(f"{KEYS_FILE_ENV}: cannot read {path}: {exc.strerror}") from None
            return cls(_parse_keys(text, "\n"), source=KEYS_FILE_ENV)
        return cls(_parse_keys(inline, ","), source=KEYS_ENV)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise TokenDecryptError(
                f"token not decryptable with the keys in {KEYS_ENV}/{KEYS_FILE_ENV}"
            ) from None

    def rotate(self, token: str) -> str:
        """The same plaintext, encrypted with the primary key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise TokenDecryptError(
                f"token not decryptable with the keys in {KEYS_ENV}/{KEYS_FILE_ENV}"
            ) from None
