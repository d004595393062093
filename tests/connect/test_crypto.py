"""Encryption of stored tokens under HALO_ENCRYPTION_KEY."""

from __future__ import annotations

import base64
import logging

import pytest

from halo_stripe_pipeline.connect.crypto import (
    DecryptionError,
    EncryptionKeyError,
    TokenCipher,
    generate_key,
)
from halo_stripe_pipeline.connect.redaction import install_stripe_log_filter

TOKEN = "sk_test_connected0123456789abcdef"


def cipher_for(monkeypatch: pytest.MonkeyPatch, value: str) -> TokenCipher:
    monkeypatch.setenv("HALO_ENCRYPTION_KEY", value)
    return TokenCipher.from_env()


def test_round_trip_hides_plaintext(monkeypatch: pytest.MonkeyPatch):
    cipher = cipher_for(monkeypatch, generate_key())

    sealed = cipher.encrypt(TOKEN, account_id="acct_1", purpose="access_token")

    assert TOKEN not in sealed
    assert sealed.startswith("v1.")
    assert cipher.decrypt(sealed, account_id="acct_1", purpose="access_token") == TOKEN


def test_same_token_encrypts_differently(monkeypatch: pytest.MonkeyPatch):
    cipher = cipher_for(monkeypatch, generate_key())

    first = cipher.encrypt(TOKEN, account_id="acct_1", purpose="access_token")
    second = cipher.encrypt(TOKEN, account_id="acct_1", purpose="access_token")

    assert first != second


def test_ciphertext_bound_to_account(monkeypatch: pytest.MonkeyPatch):
    cipher = cipher_for(monkeypatch, generate_key())
    sealed = cipher.encrypt(TOKEN, account_id="acct_1", purpose="access_token")

    with pytest.raises(DecryptionError, match="acct_2"):
        cipher.decrypt(sealed, account_id="acct_2", purpose="access_token")
    with pytest.raises(DecryptionError, match="webhook_secret"):
        cipher.decrypt(sealed, account_id="acct_1", purpose="webhook_secret")


def test_wrong_key_rejected(monkeypatch: pytest.MonkeyPatch):
    sealed = cipher_for(monkeypatch, generate_key()).encrypt(
        TOKEN, account_id="acct_1", purpose="access_token"
    )
    other = cipher_for(monkeypatch, generate_key())

    with pytest.raises(DecryptionError) as error:
        other.decrypt(sealed, account_id="acct_1", purpose="access_token")

    assert "cannot be decrypted with any key in HALO_ENCRYPTION_KEY" in str(error.value)


def test_rotation_keeps_old_values_readable(monkeypatch: pytest.MonkeyPatch):
    old_key, new_key = generate_key(), generate_key()
    sealed = cipher_for(monkeypatch, old_key).encrypt(
        TOKEN, account_id="acct_1", purpose="access_token"
    )
    rotated = cipher_for(monkeypatch, f"{new_key}, {old_key}")

    assert rotated.decrypt(sealed, account_id="acct_1", purpose="access_token") == TOKEN
    resealed = rotated.encrypt(TOKEN, account_id="acct_1", purpose="access_token")
    only_new = cipher_for(monkeypatch, new_key)
    assert only_new.decrypt(resealed, account_id="acct_1", purpose="access_token") == TOKEN


def test_missing_key_explains_fix(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HALO_ENCRYPTION_KEY", raising=False)

    with pytest.raises(EncryptionKeyError) as error:
        TokenCipher.from_env()

    assert "HALO_ENCRYPTION_KEY is not set" in str(error.value)
    assert "halo-stripe accounts generate-key" in str(error.value)


@pytest.mark.parametrize(
    "value",
    [
        "not-base64!",
        base64.urlsafe_b64encode(b"short").decode(),
        base64.urlsafe_b64encode(b"x" * 33).decode(),
    ],
)
def test_invalid_key_rejected(monkeypatch: pytest.MonkeyPatch, value: str):
    monkeypatch.setenv("HALO_ENCRYPTION_KEY", value)

    with pytest.raises(EncryptionKeyError) as error:
        TokenCipher.from_env()

    assert "HALO_ENCRYPTION_KEY key 1 is invalid" in str(error.value)
    assert value not in str(error.value)


def test_generated_key_is_32_bytes():
    assert len(base64.urlsafe_b64decode(generate_key())) == 32


def test_stripe_log_filter_redacts_secrets(caplog: pytest.LogCaptureFixture):
    install_stripe_log_filter()
    caplog.set_level(logging.DEBUG, logger="stripe")

    logging.getLogger("stripe").debug(
        "body=%s", '{"secret": "whsec_abcdef0123456789", "key": "sk_live_abcdef012345"}'
    )

    assert "whsec_abcdef0123456789" not in caplog.text
    assert "sk_live_abcdef012345" not in caplog.text
    assert "whsec_[redacted]" in caplog.text


def test_reprs_hide_secrets(monkeypatch: pytest.MonkeyPatch):
    from halo_stripe_pipeline.connect.accounts import AccountGrant
    from halo_stripe_pipeline.connect.oauth import OAuthTokens
    from halo_stripe_pipeline.connect.settings import connect_settings
    from halo_stripe_pipeline.connect.webhook_endpoint import RegisteredEndpoint

    key = generate_key()
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_platform_secret")
    values = [
        cipher_for(monkeypatch, key),
        connect_settings(require_oauth=False),
        AccountGrant("acct_1", "ws_1", "oauth", access_token=TOKEN, refresh_token="rt_secret1"),
        OAuthTokens("acct_1", TOKEN, "rt_secret1", None, "read_write", False),
        RegisteredEndpoint("we_1", "whsec_secret1", "2026-10-28.endive"),
    ]

    text = " ".join(repr(value) for value in values)

    for secret in (key, "sk_test_platform_secret", TOKEN, "rt_secret1", "whsec_secret1"):
        assert secret not in text
