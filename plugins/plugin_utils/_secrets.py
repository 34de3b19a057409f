# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets in environment mappings: which keys look like one, and a copy that never shows
their values (a short hash instead, so a change is still seen). Pure Python."""

from __future__ import annotations

import hashlib
import re

SECRET_NAME = re.compile(r"(TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)


def is_secret(name):
    return bool(SECRET_NAME.search(str(name)))


def has_secrets(env):
    return isinstance(env, dict) and any(is_secret(k) for k in env)


def mask(env):
    """A copy of env with the value of every secret-looking key replaced by
    'sha256:<12 hex digits>' (the same value masks the same)."""
    if not isinstance(env, dict):
        return env
    return {k: "sha256:" + hashlib.sha256(str(v).encode("utf-8")).hexdigest()[:12] if is_secret(k) else v
            for k, v in env.items()}
