# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets in environment mappings: which keys look like one, and a copy that never shows
their values (a keyed hash instead, so a change is still seen). Pure Python."""

from __future__ import annotations

import hashlib
import hmac
import re

SECRET_NAME = re.compile(r"(TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)


def is_secret(name):
    return bool(SECRET_NAME.search(str(name)))


def has_secrets(env):
    return isinstance(env, dict) and any(is_secret(k) for k in env)


def keyed_hash(value, key):
    """HMAC-SHA-256 of value under key, in hex: a fingerprint that tells a change of a secret
    without letting anyone who reads it test guesses (an unsalted hash of a weak secret can be
    searched; this one only with the key, which stays with the cluster's token)."""
    return hmac.new(str(key).encode("utf-8"), str(value).encode("utf-8"), hashlib.sha256).hexdigest()


def mask(env, key=""):
    """A copy of env with the value of every secret-looking key replaced by 'hmac:<16 hex
    digits>' under key (the same value masks the same, a changed one differently), or by 'set'
    without a key (no fingerprint at all, then)."""
    if not isinstance(env, dict):
        return env
    return {k: ("hmac:" + keyed_hash(v, key)[:16] if key else "set") if is_secret(k) else v for k, v in env.items()}
