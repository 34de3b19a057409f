# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a node's watchdog judges, pure: the engine's processes against what the plan runs
there, kernel log lines against the known-failures rows, a completion probe's answer, and
the incident they make, naming its row and fix.

Standard library only, and no import of the collection: the watchdog role installs this
file beside its program (roles/watchdog/files/sparkops-watchdog.py), which runs on the
nodes from a systemd timer, without Ansible. The status report (module_utils/_status)
judges the engine's processes with the same functions.
"""

from __future__ import annotations

import hashlib
import json
import re

# The engine's processes in its container, as the probe prints them from /proc: "PID STATE
# CMDLINE" per line (STATE is /proc/PID/stat's third field). playbooks/status.yml and the
# watchdog's program run this probe (status.yml inline; a unit test keeps the two one).
PROC_PROBE = (
    "for d in /proc/[0-9]*; do p=${d#/proc/}; [ \"$p\" = \"$$\" ] && continue; "
    "c=$(tr '\\0' ' ' < \"$d/cmdline\" 2>/dev/null) || continue; "
    "s=$(sed 's/.*) //' \"$d/stat\" 2>/dev/null | cut -d' ' -f1); echo \"$p ${s:-?} $c\"; done | cut -c1-200"
)
_PROC_LINE = re.compile(r"^(?P<pid>\d+) (?P<state>[A-Za-z]) (?P<cmdline>.*)$")
# (marker in the command line, kind): Ray's worker actor runs a rank with the Ray executor,
# vLLM's own worker process with the mp executor (its process title, vllm 0.32.0)
PROC_KINDS = (("RayWorkerProc", "vLLM worker (Ray)"), ("VLLM::Worker", "vLLM worker"),
              ("VLLM::EngineCore", "vLLM engine core"), ("vllm serve", "vllm serve"))
STOPPED = ("T", "t")

# the watchdog's own findings, each named by a row of the known-failures table (detect.watch)
WATCH_KINDS = ("stopped_rank", "missing_rank", "engine_down", "probe_failed")


def engine_processes(text):
    """[{pid, state, kind}] of the engine's processes in the probe's output; unreadable lines
    are skipped (the output is a tool's, and a process may vanish while it is read)."""
    out = []
    for line in str(text or "").splitlines():
        m = _PROC_LINE.match(line.strip())
        if not m:
            continue
        kind = next((k for marker, k in PROC_KINDS if marker in m.group("cmdline")), None)
        if kind:
            out.append({"pid": int(m.group("pid")), "state": m.group("state"), "kind": kind})
    return out


def expected_kinds(serves, executor, world):
    """The vLLM processes the plan runs on a node: `vllm serve` where it serves (the head;
    every node with the mp executor), a rank's worker where the world has more than one
    (with one rank and no Ray, vLLM runs it inside its engine core, with no worker)."""
    return (["vllm serve"] if serves else []) + (["vLLM worker (Ray)"] if executor == "ray" else
                                                 ["vLLM worker"] if world > 1 else [])


def rank_findings(procs, serves, executor, world):
    """[{watch, kind, pid, state}] of one node's engine: a stopped process (state T: every
    other rank waits for it in its next collective, so the engine stalls while /health may
    stay green) and each expected kind of process that does not run (watch missing_rank)."""
    found = [{"watch": "stopped_rank", "kind": p["kind"], "pid": p["pid"], "state": p["state"]}
             for p in procs if p["state"] in STOPPED]
    kinds = {p["kind"] for p in procs}
    found += [{"watch": "missing_rank", "kind": kind} for kind in expected_kinds(serves, executor, world)
              if kind not in kinds]
    return found


def compile_rows(rows):
    """[(row, [compiled kernel patterns])] of the rows given (id, title, fix, source,
    kernel_patterns, watch). Raises ValueError naming the row of a pattern that is not a
    regular expression."""
    out = []
    for row in rows or []:
        compiled = []
        for pattern in row.get("kernel_patterns") or []:
            try:
                compiled.append(re.compile(pattern))
            except re.error as exc:
                raise ValueError("known_failures row %s: kernel pattern %r is not a regular expression: %s"
                                 % (row.get("id"), pattern, exc))
        out.append((row, compiled))
    return out


def kernel_matches(lines, compiled, limit=20):
    """[{row, line}]: each kernel log line that matches a row's kernel patterns, named by the
    first such row; at most `limit` lines per row (a burst repeats one line hundreds of times)."""
    out, per_row = [], {}
    for line in lines:
        for row, patterns in compiled:
            if any(p.search(line) for p in patterns):
                if per_row.get(row["id"], 0) < limit:
                    out.append({"row": row["id"], "line": line[:500]})
                    per_row[row["id"]] = per_row.get(row["id"], 0) + 1
                break
    return out


def probe_verdict(status, body):
    """(ok, detail) of a completion probe (POST /v1/chat/completions): an HTTP status (None
    when no answer came: then body is the error) and the body's bytes. OK is a 200 with at
    least one generated token (usage.completion_tokens), not /health's green: a stalled
    engine still answers /health."""
    if status is None:
        return False, "no answer: %s" % str(body)[:300]
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    if status != 200:
        return False, "HTTP %s: %s" % (status, text.strip()[:300])
    try:
        data = json.loads(text)
        tokens = int(data["usage"]["completion_tokens"])
        choice = data["choices"][0]
        reason = choice.get("finish_reason")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return False, "HTTP 200 but not a completion: %s" % text.strip()[:300]
    if tokens < 1:
        return False, "HTTP 200 with no generated token"
    return True, "%d token(s), finish_reason %s" % (tokens, reason)


def _watch_row(rows, watch):
    return next((row for row in rows if row.get("watch") == watch), None)


def _row_entry(row):
    return {"id": row.get("id"), "title": row.get("title"), "fix": row.get("fix"), "source": row.get("source")}


def incident(host, when, findings, kernel, probe, rows):
    """The incident of one run, or None when nothing is wrong: when (ISO time), findings
    (rank_findings, or [{watch: engine_down, ...}]), kernel (kernel_matches), probe ((ok,
    detail) or None where this node sends none), rows (the known-failures rows given to the
    watchdog). It names every row that matched; a failed probe that nothing on this node
    explains names the probe's own row. The caller adds what it read at the moment (the
    rank's last log lines, memory)."""
    failed_probe = probe is not None and not probe[0]
    if not findings and not kernel and not failed_probe:
        return None
    named, seen = [], set()
    for watch in [f["watch"] for f in findings] + (["probe_failed"] if failed_probe and not findings and not kernel
                                                   else []):
        row = _watch_row(rows, watch)
        if row and row["id"] not in seen:
            named.append(_row_entry(row))
            seen.add(row["id"])
    by_id = {row.get("id"): row for row in rows}
    for match in kernel:
        if match["row"] not in seen and match["row"] in by_id:
            named.append(_row_entry(by_id[match["row"]]))
            seen.add(match["row"])
    return {
        "time": when,
        "host": host,
        "rows": named,
        "findings": findings,
        "kernel": kernel,
        "probe": None if probe is None else {"ok": probe[0], "detail": probe[1]},
    }


def incident_key(inc):
    """What stays the same while one incident goes on (its rows, findings and probe state,
    not its time or lines): the watchdog records an incident once, not every period."""
    if inc is None:
        return None
    basis = {"rows": sorted(r["id"] for r in inc["rows"]),
             "findings": sorted("%s %s" % (f["watch"], f.get("kind", "")) for f in inc["findings"]),
             "probe": inc["probe"]["ok"] if inc["probe"] else None}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


def summary(inc):
    """One line for the journal and the status report."""
    rows = ", ".join("%s (%s)" % (r["id"], r["title"]) for r in inc["rows"]) or "no known row"
    what = ["%s %s%s" % (f["watch"].replace("_", " "), f.get("kind", ""),
                         " pid %s" % f["pid"] if f.get("pid") else "") for f in inc["findings"]]
    if inc["kernel"]:
        what.append("%d kernel line(s)" % len(inc["kernel"]))
    if inc["probe"] and not inc["probe"]["ok"]:
        what.append("probe failed: %s" % inc["probe"]["detail"])
    return "%s %s: %s; %s" % (inc["time"], inc["host"], "; ".join(what), rows)


def incident_line(text):
    """The summary line of an incident file's text; a file that is not an incident (cut
    short, edited, another program's) is named as such, never raised."""
    try:
        inc = json.loads(text)
        return summary(inc)
    except (ValueError, KeyError, TypeError, AttributeError):
        return "an unreadable incident file: %s" % str(text)[:120].replace("\n", " ")


def restart_allowed(history, now, most, window=86400):
    """(allowed, the restarts kept) for one more restart at `now` (Unix seconds): at most
    `most` in the last `window` seconds; history: the times of earlier restarts (anything
    else in it is dropped)."""
    kept = [t for t in history or [] if isinstance(t, (int, float)) and not isinstance(t, bool) and now - window < t <= now]
    return len(kept) < most, kept
