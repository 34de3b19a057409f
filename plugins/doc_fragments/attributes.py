# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # What each attribute means; every module extends this and states its own support.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
"""

    # Modules that run an external program: its time is bounded.
    COMMAND_TIMEOUT = r"""
options:
  command_timeout:
    description:
      - Seconds each external program the module runs may take. Past it, the program's
        whole process group is killed and the module fails naming the command, the limit
        and the last line the program printed. Must be above 0.
    type: int
    default: 30
"""

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
