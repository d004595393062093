import pytest

from halo_stripe_pipeline.config import ConfigError, stripe_config


@pytest.mark.parametrize("base", ["http://127.0.0.1:8420 x", "127.0.0.1:8420", "ftp://host", "http://h:99999"])
def test_malformed_api_base_rejected(monkeypatch, base):
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_x")
    monkeypatch.setenv("STRIPE_API_BASE", base)
    with pytest.raises(ConfigError, match="STRIPE_API_BASE"):
        stripe_config()


def test_missing_key_names_variable(monkeypatch):
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="STRIPE_API_KEY is not set"):
        stripe_config()


def test_key_hidden_from_repr(monkeypatch):
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_secret123")
    monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:8420/")
    config = stripe_config()
    assert config.api_base == "http://127.0.0.1:8420"
    assert "secret123" not in repr(config)
