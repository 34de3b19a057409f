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
    env = {"HF_TOKEN": "hf_planted_secret", "OMP_NUM_THREADS": "4"}
    masked = _secrets.mask(env)
    assert "hf_planted_secret" not in str(masked) and masked["OMP_NUM_THREADS"] == "4"
    assert masked["HF_TOKEN"].startswith("sha256:") and len(masked["HF_TOKEN"]) == len("sha256:") + 12
    assert masked == _secrets.mask(dict(env)) and masked != _secrets.mask(dict(env, HF_TOKEN="hf_other"))
    assert env["HF_TOKEN"] == "hf_planted_secret"  # a copy: the engine still gets the value
    assert _secrets.has_secrets(env) and not _secrets.has_secrets({"A": "1"}) and not _secrets.has_secrets(None)
