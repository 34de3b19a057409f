# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment:
    # Modules that only read: check mode runs them in full, there is no diff.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: The module changes nothing, so it runs in full in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
"""
