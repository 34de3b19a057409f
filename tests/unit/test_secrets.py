"""Secrets in environment mappings (plugin_utils/_secrets): named, masked, never shown."""

from __future__ import annotations

import pytest

from ansible_collections.sparkops.cluster.plugins.plugin_utils import _secrets


@pytest.mark.parametrize("name, secret", [
    ("HF_TOKEN", True), ("hf_token", True), ("VLLM_API_KEY", True), ("AWS_SECRET_ACCESS_KEY", True),
    ("DB_PASSWORD", True), ("GOOGLE_APPLICATION_CREDENTIALS", True), ("RAY_AUTH_TOKEN_PATH", True),
    ("NCCL_IB_HCA", False), ("VLLM_USE_DEEP_GEMM", False), ("OMP_NUM_THREADS", False), ("MAX_TOKENS", True),
])
def test_secret_names(name, secret):
    assert _secrets.is_secret(name) is secret


def test_mask_hides_the_value_and_still_tells_a_change():
    import hashlib
    env = {"HF_TOKEN": "hf_planted_secret", "OMP_NUM_THREADS": "4"}
    masked = _secrets.mask(env, "the-stamp-key")
    assert "hf_planted_secret" not in str(masked) and masked["OMP_NUM_THREADS"] == "4"
    assert masked["HF_TOKEN"].startswith("hmac:") and len(masked["HF_TOKEN"]) == len("hmac:") + 16
    key = "the-stamp-key"
    assert masked == _secrets.mask(dict(env), key) and masked != _secrets.mask(dict(env, HF_TOKEN="hf_other"), key)
    # keyed: another key gives another fingerprint, and no unsalted hash of the value is in it
    assert masked != _secrets.mask(env, "another-key")
    assert hashlib.sha256(b"hf_planted_secret").hexdigest()[:16] not in str(masked)
    assert _secrets.mask(env) == {"HF_TOKEN": "set", "OMP_NUM_THREADS": "4"}  # no key: no fingerprint at all
    # RFC 4231 test case 2, HMAC-SHA-256
    assert _secrets.keyed_hash("what do ya want for nothing?", "Jefe") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    assert env["HF_TOKEN"] == "hf_planted_secret"  # a copy: the engine still gets the value
    assert _secrets.has_secrets(env) and not _secrets.has_secrets({"A": "1"}) and not _secrets.has_secrets(None)
