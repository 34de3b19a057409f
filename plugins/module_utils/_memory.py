# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a node's memory from a module: /proc/meminfo, the processes' memory, the GPU
processes (nvidia-smi, bounded), and the check for memory held by no process, with its
settle wait. Shared by memory_facts (read only) and memory_reclaim (drops the cache)."""

from __future__ import annotations

import os
import time

from ansible_collections.sparkops.cluster.plugins.module_utils import _command, _meminfo, _nvsmi
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from ansible_collections.sparkops.cluster.plugins.module_utils._units import GIB

SETTLE_INTERVAL = 5

# the options both modules take for the leak check (argument_spec entries)
LEAK_OPTIONS = dict(
    leak_check=dict(type="str", choices=["auto", "always", "never"], default="auto"),
    leak_threshold_gb=dict(type="float", default=8.0),
    fail_on_leak=dict(type="bool", default=False),
    settle_timeout=dict(type="int", default=0),
    command_timeout=dict(type="int", default=30),
)


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
    """Memory of the GPU processes that sits in the node's RAM: on unified memory (GB10:
    nvidia-smi reports no memory.total of its own) a GPU allocation is system memory
    and counts as accounted; a discrete GPU's memory (H100, H200) is not in /proc/meminfo,
    so nothing of it is taken off the node's used memory."""
    smi = module.get_bin_path("nvidia-smi")
    if not smi:
        return 0
    limit = module.params["command_timeout"]
    rc, out, err = _command.run_module_tool(module, [smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                                            limit, ok=None)
    if rc != 0:
        module.warn("nvidia-smi --query-gpu failed (rc=%d): %s; GPU processes not counted" % (rc, err.strip()))
        return 0
    try:
        totals = [r["memory.total"] for r in _nvsmi.parse_query_csv(out, fields=["memory.total"])]
    except ToolOutputError as exc:
        module.fail_json(msg=str(exc), stdout=out)
    if not totals or any(t is not None for t in totals):
        return 0  # discrete GPU memory: not the node's RAM
    rc, out, err = _command.run_module_tool(module, [smi, "--query-compute-apps=pid,used_memory",
                                                     "--format=csv,noheader,nounits"], limit, ok=None)
    if rc != 0:
        module.warn("nvidia-smi --query-compute-apps failed (rc=%d): %s; GPU processes not counted" % (rc, err.strip()))
        return 0
    try:
        rows = _nvsmi.parse_query_csv(out, fields=["pid", "used_memory"])
    except ToolOutputError as exc:
        module.fail_json(msg=str(exc), stdout=out)
    return sum(r["used_memory"] or 0 for r in rows)


def check_options(module):
    """Fail naming an option of the leak check that is out of range."""
    p = module.params
    _command.require_positive(module, "leak_threshold_gb", "command_timeout")
    if p["settle_timeout"] < 0:
        module.fail_json(msg="settle_timeout must be 0 or more, got %s" % p["settle_timeout"])


def leak_check(module, result):
    """Look for memory held by no process (module.params: leak_check, leak_threshold_gb,
    settle_timeout, fail_on_leak) and put leak, reboot_required, settled_after and reason
    into result. Fails the module when asked to on a leak."""
    p = module.params
    check = p["leak_check"]
    can_check, why_not = (True, None) if check == "always" else leak_check_scope()
    result.update(leak=None, reboot_required=False, settled_after=0)
    if check == "never":
        result["reason"] = "leak check disabled (leak_check=never)"
        return
    if not can_check:
        result["reason"] = why_not + " (leak_check=always forces it)"
        return
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


def facts(module):
    """The sparkops_memory fact: /proc/meminfo's summary and the leak check, options checked
    first (what memory_facts returns)."""
    check_options(module)
    result = _meminfo.summary(meminfo(module))
    leak_check(module, result)
    result.setdefault("reason", None)
    return result
