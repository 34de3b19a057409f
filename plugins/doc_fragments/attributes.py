# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Modules that only read: check mode runs them in full, there is no diff. The
    # attribute descriptions come from ansible.builtin.action_common_attributes.
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
