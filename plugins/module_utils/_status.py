# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster's health in one report: the pure logic behind playbooks/status.yml.

The playbook only reads (facts, docker inspect, Ray's node list, the API); this module
turns what it read into one row per node, one line for the cluster, a verdict and one
sentence per problem naming the node and the fix. Anything a real node can answer -
unreachable, a module that failed, a container that is gone, an API that times out - is
a state to report, never an exception.
"""

from __future__ import annotations

import datetime
import json
import re

from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from ansible_collections.sparkops.cluster.plugins.module_utils._fabric import rail_state
from ansible_collections.sparkops.cluster.plugins.module_utils._ray import cluster_state
from ansible_collections.sparkops.cluster.plugins.module_utils._watchdog import engine_processes, rank_findings

_TOKENS = re.compile(r"^vllm:generation_tokens_total(?:\{[^}]*\})?\s+([0-9.eE+-]+)\s*$", re.M)


def _dict(value):
    return value if isinstance(value, dict) else {}


def _failure(result):
    """The reason a registered result did not give its data, or None."""
    result = _dict(result)
    if result.get("unreachable"):
        # the first sentence: ansible's messages go on with advice that is not about this node
        return "unreachable (%s)" % str(result.get("msg") or "no answer").strip().splitlines()[0].split(". ")[0][:200]
    if result.get("failed"):
        return str(result.get("msg") or "failed").strip().splitlines()[0][:200]
    if result.get("skipped"):
        return "not read (%s)" % (result.get("skip_reason") or "skipped")
    return None


def _last_error_line(raw):
    """The last line of a command result's stderr, or its exit status when stderr is empty."""
    return (str(raw.get("stderr") or "").strip().splitlines() or ["rc %s" % raw.get("rc")])[-1][:200]


def _parse_docker_time(text):
    """Docker's RFC 3339 time with nanoseconds ('2026-11-24T08:06:38.123456789Z'), as UTC."""
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$", str(text or ""))
    if not match:
        return None
    stamp = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    offset = datetime.timedelta(0)
    if match.group(2) != "Z":
        sign = 1 if match.group(2)[0] == "+" else -1
        offset = sign * datetime.timedelta(hours=int(match.group(2)[1:3]), minutes=int(match.group(2)[4:6]))
    return (stamp - offset).replace(tzinfo=datetime.timezone.utc)


def duration(seconds):
    """'3d4h', '2h13m', '5m07s', '42s'; '-' for None."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return "%dd%dh" % (days, hours)
    if hours:
        return "%dh%02dm" % (hours, minutes)
    if minutes:
        return "%dm%02ds" % (minutes, secs)
    return "%ds" % secs


def node_status(name, rails, raw, now):
    """One node's row and problems.

    rails: the node's planned rails (plan entry 'rails'); raw: the registered results of
    the status play on the node - 'net' (setup, network subset), 'gpu' (gpu_facts),
    'memory' (memory_facts), 'engine' (docker_container_info); now: aware UTC datetime.
    """
    raw = _dict(raw)
    row = {"node": name, "reachable": True, "rails": [], "gpus": None, "gpu_name": None, "mem_available": None,
           "mem_total": None, "held_by_no_process": None, "engine": None, "engine_uptime_s": None}
    problems = []
    results = [_dict(raw.get(k)) for k in ("net", "gpu", "memory", "engine")]
    unreachable = next((r for r in results if r.get("unreachable")), None)
    if unreachable is not None or not raw:
        row["reachable"] = False
        problems.append("%s is %s: check that it is up and that ssh reaches it (ansible -m ping %s)"
                        % (name, _failure(unreachable) if unreachable else "unreachable (nothing was read)", name))
        return row, problems

    net = _dict(raw.get("net"))
    why = _failure(net)
    if why:
        problems.append("%s: its network facts could not be read: %s" % (name, why))
    else:
        state = rail_state(name, rails, _dict(net.get("ansible_facts")))
        row["rails"] = [{"name": r["name"], "netdev": r["netdev"], "up": r["up"], "mtu": r["mtu"],
                         "addresses": r["addresses"]} for r in state["rails"]]
        problems.extend(state["problems"])

    gpu = _dict(raw.get("gpu"))
    why = _failure(gpu)
    facts = _dict(_dict(gpu.get("ansible_facts")).get("sparkops_gpu"))
    if why:
        problems.append("%s: nvidia-smi gave no answer: %s; a wedged driver needs a reboot (NVIDIA DGX Spark user "
                        "guide, troubleshooting)" % (name, why))
    else:
        row["gpus"] = facts.get("count")
        names = sorted({str(g.get("name")) for g in facts.get("gpus") or [] if isinstance(g, dict)})
        row["gpu_name"] = ", ".join(names) or None

    memory = _dict(raw.get("memory"))
    why = _failure(memory)
    facts = _dict(_dict(memory.get("ansible_facts")).get("sparkops_memory"))
    if why:
        problems.append("%s: its memory could not be read: %s" % (name, why))
    else:
        row["mem_available"] = facts.get("mem_available")
        row["mem_total"] = facts.get("mem_total")
        row["held_by_no_process"] = _dict(facts.get("leak")).get("unaccounted")
        if facts.get("reboot_required"):
            problems.append("%s: %s" % (name, facts.get("reason") or "memory is held by no process: reboot the node"))

    engine = _dict(raw.get("engine"))
    why = _failure(engine)
    container = _dict(engine.get("container"))
    if why:
        problems.append("%s: its engine container could not be inspected: %s" % (name, why))
    elif not engine.get("exists"):
        row["engine"] = "absent"
        problems.append("%s: no engine container: deploy again (the deploy playbook of your recipe)" % name)
    else:
        state = _dict(container.get("State"))
        row["engine"] = str(state.get("Status") or "unknown")
        started = _parse_docker_time(state.get("StartedAt"))
        if state.get("Running") and started is not None and now is not None:
            row["engine_uptime_s"] = int((now - started).total_seconds())
        if not state.get("Running"):
            container_name = str(container.get("Name") or "").lstrip("/") or "the engine container"
            problems.append("%s: its engine container is %s (exit code %s): read `docker logs --tail 50 %s`, then "
                            "deploy again" % (name, row["engine"], state.get("ExitCode"), container_name))
    return row, problems


def world_size(plan):
    """TP x PP of the plan's `vllm serve` command (the head's), 1 when unreadable."""
    argv = next((n.get("command") for n in plan.get("nodes") or [] if isinstance(n, dict) and n.get("command")), None)
    size = 1
    for flag in ("--tensor-parallel-size", "--pipeline-parallel-size"):
        try:
            size *= int(argv[argv.index(flag) + 1])
        except (AttributeError, IndexError, TypeError, ValueError):
            pass
    return size


def process_problems(name, container, raw, executor, serves, world=2):
    """The engine's processes of one node against what the plan runs there, and problems:
    a stopped process (state T: every other rank waits for it in its next collective, so
    the engine stalls while /health may stay green) or no vLLM process where the plan
    puts one. raw: the probe's registered result (command); serves: the node runs `vllm
    serve` (the head; every node with the mp executor); world: the plan's world size (with
    one rank and no Ray, vLLM runs it inside its engine core, with no worker process)."""
    raw = _dict(raw)
    if not raw or raw.get("skipped") or raw.get("unreachable"):
        return None, []  # the container is not running, or the node is unreachable: reported already
    why = _failure(raw) or (None if raw.get("rc") == 0 else _last_error_line(raw))
    if why:
        return None, ["%s: the engine's processes could not be read in %s: %s" % (name, container, why)]
    procs = engine_processes(raw.get("stdout"))
    problems = []
    for found in rank_findings(procs, serves, executor, world):
        if found["watch"] == "stopped_rank":
            problems.append("%s: its %s process (pid %d) is stopped (state %s): every rank waits for it, so the "
                            "engine is stalled; resume it (docker exec %s kill -CONT %d) or deploy again"
                            % (name, found["kind"], found["pid"], found["state"], container, found["pid"]))
        else:
            problems.append("%s: no %s process runs in %s: the engine does not serve across this node; read the "
                            "head's engine log (/var/log/sparkops/vllm.log), then deploy again"
                            % (name, found["kind"], container))
    return procs, problems


def generation_tokens(metrics):
    """vllm:generation_tokens_total summed over its series, or None when absent."""
    if not isinstance(metrics, str):
        return None
    values = _TOKENS.findall(metrics)
    if not values:
        return None
    try:
        return sum(float(v) for v in values)
    except ValueError:
        return None


def serving_status(plan, raw):
    """The API as the head sees it: up, serving the planned model, a completion, the token rate.

    raw: 'health', 'models' (uri results), 'completion' (serving_benchmark's result: one
    streamed request), 'metrics_before', 'metrics_after' (uri results with content),
    'window_s' (seconds between the two metrics reads), 'url'.
    """
    raw = _dict(raw)
    served = plan.get("served_model_name")
    out = {"up": False, "model": None, "completion_s": None, "ttft_ms": None, "completion_tok_s": None,
           "tokens_per_s": None, "window_s": raw.get("window_s")}
    problems = []
    if not raw:
        return out, ["the API was not read: the head %s is unreachable" % plan.get("head")]
    health = _dict(raw.get("health"))
    if health.get("status") != 200:
        problems.append("vLLM does not answer on %s/health (%s): see the head's engine log "
                        "(docker exec ENGINE tail -50 /var/log/sparkops/vllm.log), then deploy again"
                        % (raw.get("url", "the API"), health.get("msg") or "status %s" % health.get("status")))
        return out, problems
    out["up"] = True
    models = _dict(raw.get("models"))
    ids = [m.get("id") for m in _dict(models.get("json")).get("data") or [] if isinstance(m, dict)]
    out["model"] = ", ".join(str(i) for i in ids) or None
    if models.get("status") == 401:
        problems.append("the API refused the status check's key (401): pass the deploy's vllm_serve_api_key")
    elif served not in ids:
        problems.append("vLLM serves %s, not %s: deploy the recipe again" % (out["model"] or "no model", served))
    completion = _dict(raw.get("completion"))
    level = _dict(completion.get("level"))
    if level.get("completed", 0) >= 1 and not level.get("errors"):
        out["completion_s"] = level.get("wall_s")
        out["ttft_ms"] = _dict(level.get("ttft_ms")).get("p50")
        out["completion_tok_s"] = level.get("output_tok_s")
    elif models.get("status") != 401:
        why = (level.get("error_samples") or [None])[0] or _failure(completion) or "no answer"
        problems.append("a completion of %s failed (%s): the engine answers /health but does not generate "
                        "(a decode deadlock keeps /health green: spark-vllm-docker#260); restart it with a deploy"
                        % (served, why))
    before = generation_tokens(_dict(raw.get("metrics_before")).get("content"))
    after = generation_tokens(_dict(raw.get("metrics_after")).get("content"))
    window = raw.get("window_s")
    if before is not None and after is not None and isinstance(window, (int, float)) and window > 0:
        out["tokens_per_s"] = round(max(0.0, after - before) / window, 2)
    return out, problems


def ray_status(plan, raw):
    """Ray's nodes and GPUs against the plan. raw: the docker exec result of ray_nodes.py on the head."""
    raw = _dict(raw)
    expected = {n["address"]: n["name"] for n in plan.get("nodes") or []}
    if not raw:
        return {"summary": "not queried", "whole": False}, [
            "Ray was not queried: the head %s is unreachable or its engine container does not exist; deploy again"
            % plan.get("head")]
    why = _failure(raw)
    if why or raw.get("rc") not in (0, None):
        reason = why or _last_error_line(raw)
        return {"summary": "not queried", "whole": False}, [
            "Ray could not be queried on the head: %s; the head's engine container must run (deploy again)" % reason]
    try:
        state = cluster_state(str(raw.get("stdout") or ""), expected, int(plan.get("gpus_per_node") or 1))
    except ToolOutputError as exc:
        return {"summary": "unreadable", "whole": False}, ["Ray's node list could not be read: %s" % exc]
    problems = []
    if not state["whole"]:
        problems.append("Ray: %s: on each missing node read `docker logs` of the engine container and check that it "
                        "reaches %s" % (state["summary"], (plan.get("ray") or {}).get("address")))
    if state.get("unexpected"):
        problems.append("Ray has nodes that are not in the plan: %s: stop them and rotate the token "
                        "(engine_container_auth_token_rotate: true)" % ", ".join(state["unexpected"]))
    return {"summary": state["summary"], "whole": state["whole"] and not state.get("unexpected")}, problems


def _gb(value):
    return "-" if not isinstance(value, (int, float)) else "%.1f GB" % (value / 1e9)


def _rails_cell(rails):
    if not rails:
        return "-"
    return ", ".join("%s %s %s" % (r["name"], "up" if r["up"] else "DOWN", r["mtu"]) for r in rails)


def table(rows):
    """Fixed-width lines, one per node, with a header."""
    head = ["node", "reachable", "rails", "GPU", "MemAvailable", "held by no process", "engine"]
    cells = [[r["node"], "yes" if r["reachable"] else "NO", _rails_cell(r["rails"]),
              "-" if r["gpus"] is None else "%d x %s" % (r["gpus"], r["gpu_name"] or "GPU") if r["gpus"] else "none",
              _gb(r["mem_available"]), _gb(r["held_by_no_process"]),
              "-" if r["engine"] is None else "%s %s" % (r["engine"], duration(r["engine_uptime_s"]))
              if r["engine_uptime_s"] is not None else r["engine"]] for r in rows]
    widths = [max(len(str(c[i])) for c in [head] + cells) for i in range(len(head))]
    return ["  ".join(str(c[i]).ljust(widths[i]) for i in range(len(head))).rstrip() for c in [head] + cells]


def benchmark_status(raw):
    """The newest benchmark result ({file, content} as read on the controller): file, verdict's summary."""
    raw = _dict(raw)
    if not raw.get("file"):
        return None
    try:
        summary = _dict(_dict(json.loads(raw.get("content") or "")).get("verdict")).get("summary")
    except ValueError:
        summary = None
    return {"file": raw["file"], "summary": summary or "unreadable: %s" % raw["file"]}


def report(plan, nodes_raw, ray_raw, serving_raw, now=None):
    """The whole report: {healthy, problems, nodes, ray, serving, benchmark, lines}.

    nodes_raw: {node name: raw results (node_status)}; serving_raw: serving_status's, with
    'benchmark' ({file, content} of the newest result on the controller); now: ISO time or
    datetime (UTC).
    """
    if isinstance(now, str):
        now = _parse_docker_time(now.replace("+00:00", "Z")) if now else None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    plan = _dict(plan)
    nodes_raw = _dict(nodes_raw)
    rows, problems = [], []
    world = world_size(plan)
    for node in plan.get("nodes") or []:
        raw = _dict(nodes_raw.get(node["name"]))
        row, found = node_status(node["name"], node.get("rails") or [], raw, now)
        row["processes"], more = process_problems(node["name"], node.get("container"), raw.get("processes"),
                                                  plan.get("executor"), bool(node.get("command")), world)
        rows.append(row)
        problems.extend(found + more)
    ray, found = ray_status(plan, ray_raw) if plan.get("ray") else ({"summary": "not used (mp executor)",
                                                                     "whole": True}, [])
    problems.extend(found)
    serving, found = serving_status(plan, serving_raw)
    problems.extend(found)
    lines = table(rows)
    lines.append("Ray: %s" % ray["summary"])
    if serving["up"]:
        lines.append("vLLM: up, serving %s; %s; %s" % (
            serving["model"] or "nothing",
            "completion: %s s, first token after %s ms, %s tok/s" % (
                serving["completion_s"], serving["ttft_ms"], serving["completion_tok_s"])
            if serving["completion_s"] is not None else "completion: failed",
            "users' generation: %s tok/s over %s s" % (serving["tokens_per_s"], serving["window_s"])
            if serving["tokens_per_s"] is not None else "generation rate: no vllm:generation_tokens_total in /metrics"))
    else:
        lines.append("vLLM: down")
    bench = benchmark_status(_dict(serving_raw).get("benchmark"))
    lines.append("last benchmark: %s" % ("%s: %s" % (bench["file"], bench["summary"]) if bench else "none"))
    healthy = not problems
    lines.append("healthy" if healthy else "UNHEALTHY: %d problem(s)" % len(problems))
    return {"healthy": healthy, "problems": problems, "nodes": rows, "ray": ray, "serving": serving,
            "benchmark": bench, "lines": lines}
