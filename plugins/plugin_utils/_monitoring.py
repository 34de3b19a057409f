# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the cluster's Prometheus scrapes, from the plan: Prometheus file_sd target groups
per job. The monitoring role writes them for its own Prometheus on the head, and a
Prometheus or Grafana Alloy the user already runs can read the same files.

- node: the node exporter of every node, where it listens (its first rail's address; a
  single host without rails, loopback);
- vllm: vLLM's own /metrics on the API port of the head (with the mp executor the followers
  are headless: only the head serves the API);
- ray: the metrics export port of every node's Ray, with the Ray executor only.
"""

from __future__ import annotations

from ansible_collections.sparkops.cluster.plugins.module_utils._status import world_size

JOBS = ("node", "vllm", "ray")


class TargetsError(ValueError):
    """The plan lacks what the targets are made from; the message names it."""


def _nodes(plan):
    nodes = plan.get("nodes") if isinstance(plan, dict) else None
    if not isinstance(nodes, list) or not nodes or not all(isinstance(n, dict) and n.get("name") for n in nodes):
        raise TargetsError("the plan has no nodes: pass the preflight's plan (sparkops_plan)")
    return nodes


def _host_port(host, port):
    return "[%s]:%d" % (host, port) if ":" in str(host) else "%s:%d" % (host, port)


def api_address(api):
    """host:port where a process on the head reaches the API: its bind address, loopback when
    it is bound to every address; None when the plan has no API port."""
    api = api or {}
    if not api.get("port"):
        return None
    host = str(api.get("host") or "127.0.0.1")
    return _host_port("127.0.0.1" if host in ("0.0.0.0", "::") else host, int(api["port"]))


def scrape_targets(plan, node_exporter_port=9100, ray_metrics_port=6382, bind="rail"):
    """{job: [file_sd target group]} for the plan. bind is where the node exporters listen:
    rail (each node's first rail address, loopback for a single host without rails) or
    loopback (only a single host's own Prometheus reaches it)."""
    nodes = _nodes(plan)
    if bind not in ("rail", "loopback"):
        raise TargetsError("monitoring_node_exporter_bind must be rail or loopback, got %r" % (bind,))
    if bind == "loopback" and len(nodes) > 1:
        raise TargetsError("node exporters bound to loopback are reached by no other node: with %d nodes, bind them "
                           "to the rails (monitoring_node_exporter_bind: rail)" % len(nodes))
    out = {job: [] for job in JOBS}
    for rank, node in enumerate(nodes):
        labels = {"node": str(node["name"]), "rank": str(rank), "recipe": str(plan.get("recipe", ""))}
        address = "127.0.0.1" if bind == "loopback" else str(node.get("address") or "127.0.0.1")
        out["node"].append({"targets": [_host_port(address, int(node_exporter_port))], "labels": labels})
        if plan.get("executor") == "ray" and plan.get("ray"):
            out["ray"].append({"targets": [_host_port(address, int(ray_metrics_port))], "labels": labels})
    api = api_address(plan.get("api"))
    if api:
        head = str(plan.get("head") or nodes[0]["name"])
        out["vllm"].append({"targets": [api],
                            "labels": {"node": head, "rank": "0", "recipe": str(plan.get("recipe", ""))}})
    return out


def watchdog_config(plan, host, options):
    """The watchdog program's configuration for one node, from the plan: its engine
    container, what the plan runs there (vllm serve, a rank's worker), the known-failures
    rows it names incidents by, and on the head the completion probe through the API.
    options: the role's settings (period_s, probe_timeout, probe_prompt, probe_max_tokens,
    confirm_runs, log_lines, command_timeout, incident_dir, state_file, state_dir,
    key_file, restart_unit: the serve unit to restart on a failed probe or empty,
    restart_max)."""
    nodes = _nodes(plan)
    node = next((n for n in nodes if n["name"] == host), None)
    if node is None:
        raise TargetsError("%s is not a node of the plan (%s): run the watchdog on the plan's nodes"
                           % (host, ", ".join(n["name"] for n in nodes)))
    head = host == plan.get("head")
    probe = None
    if head:
        probe = {"url": "http://%s/v1/chat/completions" % api_address(plan.get("api")),
                 "model": plan.get("served_model_name"), "prompt": options["probe_prompt"],
                 "max_tokens": int(options["probe_max_tokens"]), "timeout": int(options["probe_timeout"]),
                 "key_file": options.get("key_file") or ""}
    return {
        "host": host,
        "container": node.get("container"),
        "state_dir": options["state_dir"],
        "serves": bool(node.get("command")),
        "executor": plan.get("executor"),
        "world": world_size(plan),
        "rows": [{k: row.get(k) for k in ("id", "title", "fix", "source", "kernel_patterns", "watch")}
                 for row in plan.get("log_patterns") or [] if row.get("kernel_patterns") or row.get("watch")],
        "probe": probe,
        "restart": ({"unit": options["restart_unit"], "max": int(options["restart_max"])}
                    if head and options.get("restart_unit") else None),
        "incident_dir": options["incident_dir"],
        "state_file": options["state_file"],
        "period_s": int(options["period_s"]),
        "confirm_runs": int(options["confirm_runs"]),
        "log_lines": int(options["log_lines"]),
        "command_timeout": int(options["command_timeout"]),
    }
