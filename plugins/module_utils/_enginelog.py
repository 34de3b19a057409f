# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a `vllm serve` log while the model loads. Pure Python.

Progress lines are vLLM's own log strings (vllm 0.32.0 source: model loader,
kv_cache_utils, gpu_model_runner, api entry); known fatal lines come from
data/known_failures.yml (`patterns` of each row), so one table serves the preflight
and the watch.
"""

from __future__ import annotations

import hashlib
import re

# (stage, regex), in load order; the last stage seen is where the load is.
STAGES = (
    ("engine", re.compile(r"Initializing a V1 LLM engine \(v(?P<version>[^)]+)\)")),
    ("distributed", re.compile(r"world_size=(?P<world>\d+) rank=(?P<rank>\d+)")),
    ("model", re.compile(r"Starting to load model (?P<model>\S+)")),
    ("weights", re.compile(r"Loading safetensors checkpoint shards:\s+(?P<pct>\d+)% Completed \| (?P<done>\d+)/(?P<total>\d+)")),
    ("weights loaded", re.compile(r"Loading weights took (?P<seconds>[\d.]+) seconds")),
    ("model loaded", re.compile(r"Model loading took (?P<gib>[\d.]+) GiB memory")),
    ("kv cache", re.compile(r"(?:Available KV cache memory: (?P<gib>[\d.]+) GiB|\w+ KV cache size: (?P<tokens>[\d,]+) tokens)")),
    ("graph capture", re.compile(r"Capturing CUDA graphs.*?(?P<pct>\d+)%")),
    ("graphs captured", re.compile(r"Graph capturing finished in (?P<seconds>\d+) secs")),
    ("engine ready", re.compile(r"init engine \(profile, create kv cache, warmup model\) took (?P<seconds>[\d.]+) s")),
    ("api server", re.compile(r"Starting vLLM server on (?P<url>\S+)")),
)


# vLLM's notice that a process has waited on the shared-memory broadcast queue for
# VLLM_RINGBUFFER_WARNING_INTERVAL (60) seconds, logged at INFO and again each interval
# (vllm 0.32.0, vllm/distributed/device_communicators/shm_broadcast.py, LONG_WAIT_TIME_LOG_MSG).
# vLLM's own text says it may be a hang or slow work (compilation, quantization): it is not a
# failure, and not progress either, so an engine that prints it every minute and nothing
# else is still a stall.
WAITING = re.compile(r"No available shared memory broadcast block found in \d+ seconds")

# With the Ray executor every rank's output reaches the head's `vllm serve` log through
# Ray, each line prefixed with the process it came from, in color: "(RayWorkerProc pid=114,
# ip=192.168.100.11) ..." for a worker on another node, "(RayWorkerProc pid=424) ..." for
# one on the head's own node, which Ray prints without its address (ray 2.60.0,
# python/ray/_private/worker.py, print_to_stdstream).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RAY_PREFIX = re.compile(r"^\((?:[\w.:-]+ )?pid=(?P<pid>\d+)(?:, ip=(?P<ip>[0-9A-Fa-f.:]+))?\)")


def origin(line):
    """The address of the node a log line came from, as Ray names it, or None for the
    log's own node (no prefix, or a Ray prefix without an address)."""
    m = _RAY_PREFIX.match(_ANSI.sub("", line).lstrip())
    return m.group("ip") if m else None


class FailurePatternError(ValueError):
    """A known_failures row has a pattern that is not a valid regular expression."""


def compile_failures(rows):
    """[(row, compiled pattern)] for the rows of known_failures.yml that have patterns."""
    out = []
    for row in rows or []:
        for pattern in row.get("patterns") or []:
            try:
                out.append((row, re.compile(pattern)))
            except re.error as exc:
                raise FailurePatternError("known_failures row %s: pattern %r is not a regular expression: %s"
                                          % (row.get("id"), pattern, exc))
    return out


def lines_of(text):
    """Log lines; progress bars redraw with carriage returns, each redraw is a line."""
    return [line for line in re.split(r"[\r\n]+", text) if line.strip()]


def scan(text, failures=(), nodes=None):
    """What the log says: the stages passed (the last line of each), the current stage,
    the last stage each node's ranks reached, and the first known fatal line with its row
    (id, title, fix, source) and the node it came from.

    nodes: [{name, address}] of the plan, the log's own node first (the head's with Ray, a
    follower's own with mp): a line without Ray's prefix is that node's; a line from an
    address not in it is named by that address.

    The load ends with the API server's start line: lines after it are the serving's (the
    readiness check and status judge those), not the load's, and match no failure here.
    Also returned: `active`, how many lines are not vLLM's waiting notice (WAITING),
    `waiting`, that notice when the log ends with it (nothing else came since), and `mark`,
    a key of the content without the notices (progress_at)."""
    nodes = nodes or []
    names = {str(n.get("address")): n.get("name") for n in nodes if isinstance(n, dict)}
    here = nodes[0].get("name") if nodes and isinstance(nodes[0], dict) else None
    progress, failure, ranks = [], None, {}
    active, waiting, last_active, served = 0, None, "", False
    for line in lines_of(text):
        if WAITING.search(line):
            waiting = line.strip()[-300:]
            continue
        active, waiting, last_active = active + 1, None, line
        ip = origin(line)
        node = names.get(ip, ip) if ip else here
        for stage, rx in STAGES:
            m = rx.search(line)
            if m:
                entry = {"stage": stage, "line": line.strip()[-200:],
                         "detail": {k: v for k, v in m.groupdict().items() if v is not None}}
                if progress and progress[-1]["stage"] == stage:
                    progress[-1] = entry
                else:
                    progress.append(entry)
                if node:
                    ranks[node] = stage
                break
        if failure is None and not served:
            for row, rx in failures:
                if rx.search(line):
                    failure = {"id": row.get("id"), "title": row.get("title"), "fix": row.get("fix"),
                               "source": row.get("source"), "line": line.strip()[-300:], "node": node}
                    break
        served = served or bool(progress) and progress[-1]["stage"] == "api server"
    return {"progress": progress, "stage": progress[-1]["stage"] if progress else "starting", "failure": failure,
            "nodes": ranks, "active": active, "waiting": waiting, "mark": progress_mark(active, last_active)}


def progress_mark(active, last_active):
    """A short key of the log's content without the waiting notices: it changes when a line
    other than the notice comes (the count alone would not, once the log outgrows the tail
    that is read)."""
    return "%d-%s" % (active, hashlib.sha1(last_active.encode("utf-8", "replace")).hexdigest()[:12])


def progress_at(seen, now, mtime, mark_before=None, at_before=None):
    """When the log last showed progress, in the node's clock (seconds): its mtime when its
    last line is not vLLM's waiting notice; while it ends with notices, the time the same
    content was first seen (at_before, carried from the previous look with its mark), or now
    when the content changed since (new lines, then notices: at most one look late).
    now - progress_at(...) is the stall age."""
    if not seen["waiting"]:
        return mtime or now
    if mark_before == seen["mark"] and at_before:
        return min(int(at_before), now)
    return now


def describe(entry):
    """One line for a progress entry, e.g. 'weights 57% (57/100)'."""
    if entry is None:
        return "starting (no progress line yet)"
    d = entry["detail"]
    if entry["stage"] == "weights":
        return "weights %s%% (%s/%s shards)" % (d["pct"], d["done"], d["total"])
    if entry["stage"] == "graph capture":
        return "graph capture %s%%" % d["pct"]
    if d:
        return "%s (%s)" % (entry["stage"], ", ".join("%s %s" % kv for kv in sorted(d.items())))
    return entry["stage"]
