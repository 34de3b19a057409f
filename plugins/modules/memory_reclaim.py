#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: memory_reclaim
short_description: Free page cache before a model load and detect memory held by nobody
description:
  - On unified-memory nodes (GB10) the page cache competes with the model, and vLLM counts
    reclaimable cache as used (vllm#48140, sglang#1533). This module runs C(sync),
    writes O(drop_caches) to C(/proc/sys/vm/drop_caches) and optionally compacts
    memory, and reports C(/proc/meminfo) before and after with the bytes freed.
  - It drops caches only when the page cache exceeds O(min_cached_gb), so a second run
    right after the first changes nothing.
  - It also looks for memory that no process holds. On GB10 a container killed during a
    load leaves its GPU memory allocated until a reboot (about 33 GB per failed launch
    reported on two Sparks; vllm PR#45179). When MemTotal - MemAvailable minus what processes (RssAnon), GPU processes on unified memory
    (C(nvidia-smi)) and the kernel's counters account for exceeds
    O(leak_threshold_gb), RV(reboot_required) is true with the figure and the reason,
    and the module fails when O(fail_on_leak) is set.
  - The leak check needs C(/proc) to list every process of the machine, because
    C(/proc/meminfo) always counts the whole machine (see O(leak_check)).
  - The deploy flow reads memory with M(sparkops.cluster.memory_facts), which never changes
    anything, and drops the cache with this module only right before an engine starts.
  - A read-only C(/proc/sys) (containers) skips the drop with a warning.
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.memory
attributes:
  check_mode:
    support: full
    details: Reports what it would free (the current page cache) without writing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Caches are dropped only above O(min_cached_gb).
options:
  drop_caches:
    description: Value written to C(/proc/sys/vm/drop_caches) (1 page cache, 2 slab, 3 both); 0 drops nothing.
    type: int
    choices: [0, 1, 2, 3]
    default: 3
  min_cached_gb:
    description: Drop only when C(Cached) exceeds this many GiB.
    type: float
    default: 1.0
  compact:
    description:
      - Also write 1 to C(/proc/sys/vm/compact_memory) right after the drop (large contiguous
        allocations). Refused with O(drop_caches=0), where no drop runs.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Free the page cache before the model load, refuse a leaking node
  sparkops.cluster.memory_reclaim:
    drop_caches: 3
    fail_on_leak: true
  register: reclaim

- name: Report
  ansible.builtin.debug:
    msg: "{{ (reclaim.freed / 2**30) | round(1) }} GiB freed, {{ (reclaim.after.mem_available / 2**30) | round(1) }} GiB available"
"""

RETURN = r"""
before:
  description: Memory before, in bytes.
  returned: always
  type: dict
  contains:
    mem_total: {description: "MemTotal.", type: int, returned: always}
    mem_free: {description: "MemFree.", type: int, returned: always}
    mem_available: {description: "MemAvailable.", type: int, returned: always}
    cached: {description: "Cached (page cache).", type: int, returned: always}
    buffers: {description: "Buffers.", type: int, returned: always}
    swap_used: {description: "SwapTotal - SwapFree.", type: int, returned: always}
    cma_total: {description: "CmaTotal (the contiguous memory area), null when the kernel has none.", type: int, returned: always}
    cma_free: {description: "CmaFree, null when the kernel has none.", type: int, returned: always}
after:
  description: Memory after, in bytes (same keys as RV(before); equals it in check mode or when nothing was dropped).
  returned: always
  type: dict
freed:
  description: Bytes of MemFree gained (in check mode, the page cache that would be dropped).
  returned: always
  type: int
  sample: 31138512896
dropped:
  description: Whether caches were dropped.
  returned: always
  type: bool
skipped_reason:
  description: Why caches were not dropped, when they were not.
  returned: when not dropped
  type: str
  sample: "Cached 0.4 GiB is below min_cached_gb 1.0"
leak:
  description: The leak check's figures in bytes (used, process_rss, gpu_processes, kernel, unaccounted), or null when skipped.
  returned: always
  type: dict
reboot_required:
  description: True when memory held by no process exceeds the threshold.
  returned: always
  type: bool
settled_after:
  description: Seconds spent re-checking before the memory was released (0 when it was at once, or when the check was skipped).
  returned: always
  type: int
reason:
  description: Why a reboot is required, or why the leak check was skipped.
  returned: when reboot_required or leak check skipped
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sparkops.cluster.plugins.module_utils import _memory
from ansible_collections.sparkops.cluster.plugins.module_utils._meminfo import summary
from ansible_collections.sparkops.cluster.plugins.module_utils._units import GIB


def write(path, value):
    with open(path, "w") as fh:
        fh.write(value)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            drop_caches=dict(type="int", choices=[0, 1, 2, 3], default=3),
            min_cached_gb=dict(type="float", default=1.0),
            compact=dict(type="bool", default=False),
            **_memory.LEAK_OPTIONS
        ),
        supports_check_mode=True,
    )
    p = module.params
    _memory.check_options(module)
    if p["min_cached_gb"] < 0:
        module.fail_json(msg="min_cached_gb must be 0 or more, got %s" % p["min_cached_gb"])
    if p["compact"] and p["drop_caches"] == 0:
        module.fail_json(msg="compact: true runs right after the cache drop, and drop_caches is 0 (no drop): "
                             "set drop_caches to 1, 2 or 3, or compact to false")

    before = summary(_memory.meminfo(module))
    result = dict(changed=False, before=before, after=before, freed=0, dropped=False)
    if p["drop_caches"] == 0:
        result["skipped_reason"] = "drop_caches is 0"
    elif before["cached"] <= p["min_cached_gb"] * GIB:
        result["skipped_reason"] = "Cached %.1f GiB is below min_cached_gb %.1f" % (before["cached"] / GIB, p["min_cached_gb"])
    elif not os.access("/proc/sys/vm/drop_caches", os.W_OK):
        result["skipped_reason"] = "/proc/sys/vm/drop_caches is not writable (read-only /proc/sys: a container?)"
        module.warn(result["skipped_reason"])
    elif module.check_mode:
        result.update(changed=True, freed=before["cached"])
    else:
        os.sync()
        try:
            write("/proc/sys/vm/drop_caches", "%d\n" % p["drop_caches"])
            if p["compact"] and os.path.exists("/proc/sys/vm/compact_memory"):
                write("/proc/sys/vm/compact_memory", "1\n")
        except OSError as exc:
            module.fail_json(msg="writing /proc/sys/vm/drop_caches failed: %s" % exc, **result)
        after = summary(_memory.meminfo(module))
        result.update(changed=True, dropped=True, after=after, freed=max(0, after["mem_free"] - before["mem_free"]))
    _memory.leak_check(module, result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
