# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The check for memory held by no process (module_utils/_memory), shared by
    # memory_facts and memory_reclaim.
    DOCUMENTATION = r"""
options:
  leak_check:
    description:
      - Look for memory no process holds. C(auto) runs it when C(/proc) lists every process
        of the machine (this process is in the machine's first PID namespace,
        C(/proc/self/ns/pid) reads C(pid:[4026531836]), and C(hidepid) hides nothing from it)
        and says in C(reason) why otherwise; C(always) runs it regardless; C(never) skips it.
      - Marker files such as C(/.dockerenv) decide nothing, since a VM image can carry one and
        still see every process.
    type: str
    choices: [auto, always, never]
    default: auto
  leak_threshold_gb:
    description: Memory (GiB) in use but held by no process and not by the kernel's counters above which a reboot is required.
    type: float
    default: 8.0
  fail_on_leak:
    description: Fail when memory held by no process exceeds O(leak_threshold_gb) (C(reboot_required) is true).
    type: bool
    default: false
  settle_timeout:
    description:
      - Seconds to keep re-checking while memory is held by no process, for a node whose engine
        was just stopped and whose driver is still releasing it. The check repeats every
        5 seconds until the unaccounted memory falls below O(leak_threshold_gb) or the time is up.
      - 0 checks once.
    type: int
    default: 0
  command_timeout:
    description:
      - Seconds C(nvidia-smi) (the GPU processes' memory) may take before it is killed and the
        module fails naming it. Must be above 0.
    type: int
    default: 30
"""
