"""Encryption at rest for Stripe tokens and webhook signing secrets.

Values are sealed with AES-256-GCM under `HALO_ENCRYPTION_KEY`. The
associated data names the account and the purpose of the value, so a
ciphertext copied into another row or column fails to decrypt instead of
being used as that row's secret.

`HALO_ENCRYPTION_KEY` is a URL-safe base64 encoding of 32 random bytes
(`halo-stripe accounts generate-key` prints one). Several keys separated by
commas allow a rotation: the first key encrypts, every key is tried to
decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from halo_stripe_pipeline.config import ConfigError

ENV_VAR = "HALO_ENCRYPTION_KEY"
KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_VERSION = "v1"


class EncryptionKeyError(ConfigError):
    """`HALO_ENCRYPTION_KEY` is missing or not a valid key."""


class DecryptionError(RuntimeError):
    """A stored value could not be decrypted with any configured key."""


def generate_key() -> str:
    """Return a new random key in the form `HALO_ENCRYPTION_KEY` takes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _decode_key(text: str, position: int) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise EncryptionKeyError(
            f"{ENV_VAR} key {position} is invalid: expected URL-safe base64 of "
            f"{KEY_BYTES} bytes; generate one with `halo-stripe accounts generate-key`"
        )
    return raw


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


@dataclass(frozen=True)
class TokenCipher:
    """Cipher for stored secrets: `keys[0]` encrypts and every key decrypts."""

    keys: tuple[bytes, ...] = field(repr=False)

    @classmethod
    def from_env(cls) -> TokenCipher:
        """Build the cipher from `HALO_ENCRYPTION_KEY`, or raise EncryptionKeyError."""
        value = os.environ.get(ENV_VAR, "").strip()
        if not value:
            raise EncryptionKeyError(
                f"{ENV_VAR} is not set: Stripe tokens are stored encrypted; generate "
                f"a key with `halo-stripe accounts generate-key` and export it as {ENV_VAR}"
            )
        texts = [part.strip() for part in value.split(",") if part.strip()]
        keys = tuple(_decode_key(text, index + 1) for index, text in enumerate(texts))
        return cls(keys=keys)

    def encrypt(self, plaintext: str, *, account_id: str, purpose: str) -> str:
        """Return `v1.<key id>.<nonce+ciphertext, base64>` for `plaintext`."""
        key = self.keys[0]
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(
            nonce, plaintext.encode("utf-8"), _associated_data(account_id, purpose)
        )
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        return f"{FORMAT_VERSION}.{_key_id(key)}.{body}"

    def decrypt(self, token: str, *, account_id: str, purpose: str) -> str:
        """Open a value written by `encrypt` for the same account and purpose."""
        version, _, rest = token.partition(".")
        key_id, _, body = rest.partition(".")
        if version != FORMAT_VERSION or not body:
            raise DecryptionError(
                f"stored {purpose} of `{account_id}` is not in the {FORMAT_VERSION} format"
            )
        try:
            blob = base64.urlsafe_b64decode(body.encode("ascii"))
        except (binascii.Error, ValueError) as error:
            raise DecryptionError(
                f"stored {purpose} of `{account_id}` is not valid base64"
            ) from error
        nonce, sealed = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        candidates = sorted(self.keys, key=lambda key: _key_id(key) != key_id)
        for key in candidates:
            try:
                plaintext = AESGCM(key).decrypt(
                    nonce, sealed, _associated_data(account_id, purpose)
                )
            except InvalidTag:
                continue
            return plaintext.decode("utf-8")
        raise DecryptionError(
            f"stored {purpose} of `{account_id}` cannot be decrypted with any key in "
            f"{ENV_VAR}: add the key it was written with, or reconnect the account"
        )


def _associated_data(account_id: str, purpose: str) -> bytes:
    return f"halo-stripe/{purpose}/{account_id}".encode()
