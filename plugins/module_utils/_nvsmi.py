# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`nvidia-smi` output: the query CSV form and the default table.

GB10 (DGX Spark) has no dedicated framebuffer: memory fields read "[N/A]" in CSV and
"Not Supported" in the table. Those become None, and parsing goes on.
"""

from __future__ import annotations

import re

from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError

UNKNOWN = ("[N/A]", "N/A", "Not Supported", "[Not Supported]", "[Unknown Error]", "")
_HEAD = re.compile(r"NVIDIA-SMI (?P<smi>\S+)\s+Driver Version: (?P<driver>\S+)\s+CUDA Version: (?P<cuda>\S+)")
_GPU_ROW = re.compile(r"^\|\s+(?P<index>\d+)\s+(?P<name>.+?)\s+(?P<persistence>On|Off)\s+\|\s+(?P<bus>\S+)\s+(?P<disp>On|Off)\s+\|")
_MEM_ROW = re.compile(r"^\|.*?\|\s*(?:(?P<used>\d+)MiB\s*/\s*(?P<total>\d+)MiB|(?P<na>Not Supported|N/A))\s*\|")
_PROC_ROW = re.compile(
    r"^\|\s+(?P<gpu>\d+)\s+(?P<gi>\S+)\s+(?P<ci>\S+)\s+(?P<pid>\d+)\s+(?P<type>[CGM+]+)\s+"
    r"(?P<name>.+?)\s+(?P<mem>\d+MiB|N/A)\s*\|$")
_MIB_FIELDS = ("memory.total", "memory.used", "memory.free", "memory.reserved", "used_memory", "used_gpu_memory")


def _value(name, raw):
    raw = raw.strip()
    if raw in UNKNOWN:
        return None
    if name in _MIB_FIELDS:
        m = re.match(r"^(\d+)(?:\s*MiB)?$", raw)
        if not m:
            raise ToolOutputError("nvidia-smi", "expected MiB in field %s" % name, raw)
        return int(m.group(1)) * 1024 * 1024
    return raw


def parse_query_csv(text, fields=None):
    """CSV of --query-gpu / --query-compute-apps into a list of dicts.

    With a header line, field names are read from it (units stripped); with
    noheader, pass `fields` in the order queried.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    if fields is None:
        fields = [re.sub(r"\s*\[.*?\]$", "", f.strip()) for f in lines[0].split(",")]
        lines = lines[1:]
    rows = []
    for lineno, line in enumerate(lines, 1):
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(fields):
            raise ToolOutputError(
                "nvidia-smi", "expected %d comma-separated fields (%s)" % (len(fields), ", ".join(fields)),
                line, lineno)
        rows.append({f: _value(f, c) for f, c in zip(fields, cells)})
    return rows


def parse_table(text):
    """Default `nvidia-smi` table: versions, GPUs and processes."""
    head = _HEAD.search(text)
    if not head:
        raise ToolOutputError("nvidia-smi", "no 'NVIDIA-SMI ... Driver Version ... CUDA Version' header")
    gpus, processes = [], []
    lines = text.splitlines()
    in_procs = False
    for lineno, line in enumerate(lines, 1):
        if "Processes:" in line:
            in_procs = True
            continue
        if not in_procs:
            m = _GPU_ROW.match(line)
            if m:
                gpu = {"index": int(m.group("index")), "name": m.group("name"),
                       "pci_bus_id": m.group("bus"), "memory_total": None, "memory_used": None}
                nxt = lines[lineno] if lineno < len(lines) else ""
                mem = _MEM_ROW.match(nxt)
                if mem and mem.group("total"):
                    gpu["memory_total"] = int(mem.group("total")) * 1024 * 1024
                    gpu["memory_used"] = int(mem.group("used")) * 1024 * 1024
                gpus.append(gpu)
            continue
        p = _PROC_ROW.match(line)
        if p:
            mem = p.group("mem")
            processes.append({
                "gpu": int(p.group("gpu")), "pid": int(p.group("pid")), "type": p.group("type"),
                "name": p.group("name"),
                "used_memory": None if mem == "N/A" else int(mem[:-3]) * 1024 * 1024,
            })
        elif line.startswith("|") and re.match(r"^\|\s+\d+\s", line):
            raise ToolOutputError("nvidia-smi", "unrecognised process row", line, lineno)
    return {
        "smi_version": head.group("smi"),
        "driver_version": head.group("driver"),
        "cuda_version": head.group("cuda"),
        "gpus": gpus,
        "processes": processes,
    }


def compute_capability(value):
    """'12.1' -> (12, 1); None stays None."""
    if value is None:
        return None
    m = re.match(r"^(\d+)\.(\d+)$", value)
    if not m:
        raise ToolOutputError("nvidia-smi", "expected MAJOR.MINOR compute capability", value)
    return int(m.group(1)), int(m.group(2))


GPU_FIELDS = ["index", "name", "uuid", "driver_version", "compute_cap", "memory.total", "memory.used",
              "memory.free", "pci.bus_id"]
NO_GPU = {"count": 0, "driver_version": None, "cuda_version": None, "gpus": [], "processes": []}


def gpu_inventory(csv_text, table_text, fields=None):
    """The sparkops_gpu fact from the query CSV (GPU_FIELDS, noheader) and the default
    table, and notes worth a warning. The table wins the count when the query lists no
    GPU (an NVML query failing while the table still shows the GPU)."""
    fields = fields or GPU_FIELDS
    rows = parse_query_csv(csv_text, fields=fields)
    info = parse_table(table_text)
    notes, gpus = [], []
    for r in rows:
        compute_capability(r["compute_cap"])  # validates MAJOR.MINOR
        try:
            index = int(r["index"])
        except (TypeError, ValueError):
            raise ToolOutputError("nvidia-smi", "GPU index is not a number", r["index"])
        gpus.append({
            "index": index, "name": r["name"], "uuid": r["uuid"], "compute_capability": r["compute_cap"],
            "memory_total": r["memory.total"], "memory_used": r["memory.used"], "memory_free": r["memory.free"],
            "unified_memory": r["memory.total"] is None, "pci_bus_id": r["pci.bus_id"],
        })
    if not rows and info["gpus"]:
        notes.append("nvidia-smi --query-gpu listed no GPU while its table shows %d: GPUs taken from the table "
                     "(uuid and compute capability unknown)" % len(info["gpus"]))
        gpus = [{"index": g["index"], "name": g["name"], "uuid": None, "compute_capability": None,
                 "memory_total": g["memory_total"], "memory_used": g["memory_used"], "memory_free": None,
                 "unified_memory": g["memory_total"] is None, "pci_bus_id": g["pci_bus_id"]} for g in info["gpus"]]
    drivers = sorted({r["driver_version"] for r in rows if r["driver_version"]})
    if len(drivers) > 1:
        raise ToolOutputError("nvidia-smi", "GPUs of this node report different drivers: %s" % ", ".join(drivers))
    return {"count": len(gpus), "driver_version": drivers[0] if drivers else info["driver_version"],
            "cuda_version": info["cuda_version"], "gpus": gpus, "processes": info["processes"]}, notes
