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
    reported on two Sparks; vllm PR#45179). When MemTotal - MemAvailable minus what processes (RssAnon), GPU processes
    (C(nvidia-smi)) and the kernel's counters account for exceeds
    O(leak_threshold_gb), RV(reboot_required) is true with the figure and the reason,
    and the module fails when O(fail_on_leak) is set.
  - The leak check needs C(/proc) to list every process of the machine, because
    C(/proc/meminfo) always counts the whole machine. With O(leak_check=auto) it runs
    only when this process is in the machine's first PID namespace (C(/proc/self/ns/pid)
    is C(pid:[4026531836])) and C(/proc) hides no process from it (C(hidepid) without
    root); otherwise RV(reason) says why it was skipped. Marker files such as
    C(/.dockerenv) decide nothing, since a VM image can carry one and still see every process.
  - A read-only C(/proc/sys) (containers) skips the drop with a warning.
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.attributes.COMMAND_TIMEOUT
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
  leak_check:
    description:
      - Look for memory no process holds. C(auto) runs it when C(/proc) lists every process
        of the machine (see above) and says why otherwise; C(always) runs it regardless.
    type: str
    choices: [auto, always, never]
    default: auto
  leak_threshold_gb:
    description: Unaccounted memory (GiB) above which a reboot is required.
    type: float
    default: 8.0
  fail_on_leak:
    description: Fail when RV(reboot_required) is true.
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
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sparkops.cluster.plugins.module_utils import _meminfo, _nvsmi
from ansible_collections.sparkops.cluster.plugins.module_utils._command import require_positive, run_module_tool
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError

GIB = 1024 ** 3
SETTLE_INTERVAL = 5


def read(path):
    """A /proc file as text; a stray byte is replaced, never an error."""
    with open(path, "rb") as fh:
        return fh.read().decode("utf-8", "replace")


def meminfo(module):
    try:
        return _meminfo.parse_meminfo(read("/proc/meminfo"))
    except (OSError, ToolOutputError) as exc:
        module.fail_json(msg="cannot read /proc/meminfo: %s" % exc)


def leak_check_scope():
    """(can run, why not): does /proc list every process of the machine?"""
    try:
        pid_ns = os.readlink("/proc/self/ns/pid")
    except OSError as exc:
        return False, "leak check skipped: cannot read /proc/self/ns/pid (%s)" % exc
    options = []
    try:
        for line in read("/proc/mounts").splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[1] == "/proc":
                options = fields[3].split(",")
    except OSError:
        pass
    return _meminfo.leak_check_scope(pid_ns, options, os.geteuid())


def process_rss():
    total = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                total += _meminfo.parse_status_rss(read("/proc/%s/status" % pid))
            except OSError:
                continue  # process ended meanwhile
    return total


def gpu_process_bytes(module):
    smi = module.get_bin_path("nvidia-smi")
    if not smi:
        return 0
    rc, out, err = run_module_tool(module, [smi, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                                   module.params["command_timeout"], ok=None)
    if rc != 0:
        module.warn("nvidia-smi --query-compute-apps failed (rc=%d): %s; GPU processes not counted" % (rc, err.strip()))
        return 0
    try:
        rows = _nvsmi.parse_query_csv(out, fields=["pid", "used_memory"])
    except ToolOutputError as exc:
        module.fail_json(msg=str(exc), stdout=out)
    return sum(r["used_memory"] or 0 for r in rows)


def write(path, value):
    with open(path, "w") as fh:
        fh.write(value)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            drop_caches=dict(type="int", choices=[0, 1, 2, 3], default=3),
            min_cached_gb=dict(type="float", default=1.0),
            compact=dict(type="bool", default=False),
            leak_check=dict(type="str", choices=["auto", "always", "never"], default="auto"),
            leak_threshold_gb=dict(type="float", default=8.0),
            fail_on_leak=dict(type="bool", default=False),
            settle_timeout=dict(type="int", default=0),
            command_timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    p = module.params
    require_positive(module, "leak_threshold_gb", "command_timeout")
    for name in ("min_cached_gb", "settle_timeout"):
        if p[name] < 0:
            module.fail_json(msg="%s must be 0 or more, got %s" % (name, p[name]))
    if p["compact"] and p["drop_caches"] == 0:
        module.fail_json(msg="compact: true runs right after the cache drop, and drop_caches is 0 (no drop): "
                             "set drop_caches to 1, 2 or 3, or compact to false")

    before_raw = meminfo(module)
    before = _meminfo.summary(before_raw)
    result = dict(changed=False, before=before, after=before, freed=0, dropped=False,
                  leak=None, reboot_required=False, settled_after=0)

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
        after = _meminfo.summary(meminfo(module))
        result.update(changed=True, dropped=True, after=after, freed=max(0, after["mem_free"] - before["mem_free"]))

    check = p["leak_check"]
    can_check, why_not = (True, None) if check == "always" else leak_check_scope()
    if check == "never":
        result["reason"] = "leak check disabled (leak_check=never)"
    elif not can_check:
        result["reason"] = why_not + " (leak_check=always forces it)"
    else:
        started = time.monotonic()
        while True:
            figures = _meminfo.unaccounted(meminfo(module), process_rss(), gpu_process_bytes(module))
            leak, reason = _meminfo.leak_verdict(figures, p["leak_threshold_gb"] * GIB)
            waited = time.monotonic() - started
            if not leak or waited + SETTLE_INTERVAL > p["settle_timeout"]:
                break
            time.sleep(SETTLE_INTERVAL)
        result.update(leak=figures, reboot_required=leak, settled_after=0 if leak else int(round(waited)))
        if leak:
            result["reason"] = reason
            if p["fail_on_leak"]:
                module.fail_json(msg="reboot required: " + reason, **result)
            module.warn(reason)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
