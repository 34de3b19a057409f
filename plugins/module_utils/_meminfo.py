# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""/proc/meminfo and per-process memory: what reclaim frees, and memory nobody holds.

On GB10 (unified memory) a container killed during a model load can leave tens of GB
allocated by the GPU driver that no process owns and only a reboot frees (about 33 GB
per failed run reported on two Sparks; vllm PR#45179). It shows as memory in use that neither processes nor the
kernel's own counters explain.
"""

from __future__ import annotations

import re

from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from ansible_collections.sparkops.cluster.plugins.module_utils._units import GIB

_LINE = re.compile(r"^(?P<key>[A-Za-z0-9_()]+):\s+(?P<value>\d+)(?:\s+(?P<unit>kB))?$")
_REQUIRED = ("MemTotal", "MemFree", "MemAvailable")
# the only /proc/meminfo lines that are counts, not kB (fs/proc/meminfo.c, mm/hugetlb.c)
_COUNTS = ("HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp")
# The inode of the machine's first PID namespace (PROC_PID_INIT_INO in the kernel's
# include/linux/proc_ns.h, 0xEFFFFFFC): a process in it sees every process in /proc.
INIT_PID_NS = "pid:[4026531836]"


def parse_meminfo(text):
    """/proc/meminfo -> {key: bytes} (HugePages_* counts stay counts)."""
    values = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        m = _LINE.match(line)
        if not m:
            raise ToolOutputError("/proc/meminfo", "expected 'Key:   value kB'", line, lineno)
        n, key = int(m.group("value")), m.group("key")
        if not m.group("unit") and key not in _COUNTS:
            # a line cut before its unit: its number is kB, reading it as bytes would be 1024x off
            raise ToolOutputError("/proc/meminfo", "%s has no kB unit (a cut line?)" % key, line, lineno)
        values[key] = n * 1024 if m.group("unit") else n
    missing = [k for k in _REQUIRED if k not in values]
    if missing:
        raise ToolOutputError("/proc/meminfo", "missing %s" % ", ".join(missing))
    return values


def summary(mem):
    """The figures the module reports, in bytes."""
    return {
        "mem_total": mem["MemTotal"],
        "mem_free": mem["MemFree"],
        "mem_available": mem["MemAvailable"],
        "cached": mem.get("Cached", 0),
        "buffers": mem.get("Buffers", 0),
        "swap_used": mem.get("SwapTotal", 0) - mem.get("SwapFree", 0),
        # the contiguous memory area; CmaFree above CmaTotal is the tell of a kernel whose KHO
        # breaks RDMA memory registration (MiaAI-Lab/DeepSeek-v4-Flash-DSpark-2x-DGX-Spark#259)
        "cma_total": mem.get("CmaTotal"),
        "cma_free": mem.get("CmaFree"),
    }


def parse_status_rss(text):
    """RssAnon of one /proc/PID/status, in bytes (0 for kernel threads and unreadable lines)."""
    for line in text.splitlines():
        if line.startswith("RssAnon:"):
            fields = line.split()
            return int(fields[1]) * 1024 if len(fields) > 1 and fields[1].isdigit() else 0
    return 0


def leak_check_scope(pid_ns, proc_mount_options, euid):
    """Whether /proc shows every process that could hold memory: (True, None) or
    (False, why). pid_ns is readlink(/proc/self/ns/pid); proc_mount_options the options
    of the /proc mount (hidepid hides other users' processes from non-root)."""
    if pid_ns != INIT_PID_NS:
        return False, ("leak check skipped: this process runs in its own PID namespace (%s, the machine's is %s), so "
                       "/proc lists only some of the processes while /proc/meminfo counts the whole machine's memory "
                       "(a container); run it on the node itself or with the host's PID namespace" % (pid_ns, INIT_PID_NS))
    hidden = [o for o in proc_mount_options if o.startswith("hidepid=") and o not in ("hidepid=0", "hidepid=off")]
    if hidden and euid != 0:
        return False, ("leak check skipped: /proc is mounted with %s and this process is not root, so other users' "
                       "processes are hidden; run it as root (become: true)" % hidden[0])
    return True, None


def kernel_accounted(mem):
    """Memory the kernel's own counters explain (bytes)."""
    # Shmem (tmpfs, shared memory) is counted here, not in the processes' RSS.
    keys = ("Shmem", "SUnreclaim", "KernelStack", "PageTables", "SecPageTables", "Percpu")
    total = sum(mem.get(k, 0) for k in keys)
    hugepages = mem.get("HugePages_Total", 0) * mem.get("Hugepagesize", 0)
    return total + hugepages


def unaccounted(mem, process_bytes, gpu_process_bytes=0):
    """Memory in use that neither processes, GPU processes nor the kernel account for.

    used = MemTotal - MemAvailable; the page cache is not part of it (it is available).
    """
    used = mem["MemTotal"] - mem["MemAvailable"]
    accounted = process_bytes + gpu_process_bytes + kernel_accounted(mem)
    return {
        "used": used,
        "process_rss": process_bytes,
        "gpu_processes": gpu_process_bytes,
        "kernel": kernel_accounted(mem),
        "unaccounted": max(0, used - accounted),
    }


def leak_verdict(figures, threshold_bytes):
    """reboot_required and the reason when unaccounted memory exceeds the threshold."""
    held = figures["unaccounted"]
    if held > threshold_bytes:
        return True, (
            "%.1f GiB of memory is in use but held by no process and not by the kernel's "
            "counters (used %.1f GiB = processes %.1f + GPU processes %.1f + kernel %.1f + "
            "unaccounted %.1f); above the %.1f GiB threshold. On GB10 this is GPU memory "
            "left by a killed engine: only a reboot frees it (vllm PR#45179; known failure 9)."
            % (held / GIB, figures["used"] / GIB, figures["process_rss"] / GIB,
               figures["gpu_processes"] / GIB, figures["kernel"] / GIB, held / GIB,
               threshold_bytes / GIB))
    return False, None
