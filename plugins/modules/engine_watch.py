#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: engine_watch
short_description: Watch a vLLM engine load, report progress, fail fast on a stall or a known fatal line
description:
  - Watches a C(vllm serve) started in an engine container until the API answers
    O(health_url), at most O(timeout) seconds, and returns where the load is (weight
    shards, model loaded, KV cache, graph capture, API server) from vLLM's own log lines.
    Every O(wait) seconds a progress line is printed on the controller (the action
    plugin calls the module once per O(wait)).
  - Fails at once, with the explanation and the fix, when the log shows a line of
    O(known_failures) (the C(patterns) of C(data/known_failures.yml)), when the engine
    process has exited, or when the log has shown no progress for O(stall_timeout) seconds
    (field reports of a load stopped at layer 57 for 30 minutes, KF-3, and of a graph capture
    spinning for 34 minutes). The failure names the process state (a stopped process
    shows C(T)) and quotes the last log lines.
  - vLLM's notice "No available shared memory broadcast block found in 60 seconds", which it
    logs at INFO every minute while a process waits (a hang, or slow work such as the
    first request's kernel compilation), is neither a failure nor progress. An engine that
    logs only that notice stalls at O(stall_timeout) as a silent one does.
  - Only the load is judged. Log lines after the API server's start line belong to the
    serving, so they fail no watch. The readiness check and C(playbooks/status.yml) judge
    the serving.
  - With the Ray executor every rank's lines reach the head's log through Ray, each
    prefixed with the address of the node it came from; given O(nodes), the watch reports
    the stage each node's ranks reached and names the node of a known fatal line.
  - With the mp executor every node runs C(vllm serve) and watches its own log in the same
    task. The watches meet on the controller. The head's ends ready when the API answers,
    the followers' then end too, and a follower's failure (a known fatal line, an exit, a
    stall) fails the head's watch within O(wait) seconds, naming the follower.
  - Reads the container through C(docker exec), each look bounded by O(command_timeout)
    (a hung Docker daemon fails the watch instead of hanging it); changes nothing.
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.attributes.READ_ONLY
  - sparkops.cluster.attributes.COMMAND_TIMEOUT
  - sparkops.cluster.docker
options:
  container:
    description: Name of the engine container.
    type: str
    required: true
  log_path:
    description: Path of the C(vllm serve) log inside the container.
    type: str
    required: true
  pid_path:
    description: File inside the container holding the PID of C(vllm serve).
    type: str
    required: true
  health_url:
    description:
      - URL that answers 200 once the API server is up, seen from the node.
      - Omitted on a node that serves no API (a follower of the mp executor, C(--headless)).
        Its watch fails on its own log as above, and ends when the watch of the node with the
        API, in the same task, finds it ready.
    type: str
  timeout:
    description: Seconds to wait for the API in all; then it fails with the progress so far.
    type: int
    default: 3600
  wait:
    description: Seconds between two progress lines (one module call each).
    type: int
    default: 30
  stall_timeout:
    description: Fail when the log has shown no progress (lines other than vLLM's waiting notice) for this many seconds.
    type: int
    default: 600
  progress_mark:
    description:
      - The RV(progress_mark) of the previous call, so that a wait on vLLM's notice counts across calls.
      - The action plugin passes it on. Give it yourself only when you call the module directly.
    type: str
  progress_at:
    description: The RV(progress_at) of the previous call, with O(progress_mark).
    type: int
  poll:
    description: Seconds between two looks.
    type: float
    default: 3
  known_failures:
    description: Rows with log patterns (id, title, patterns, fix, source), as the plan carries them (C(plan.log_patterns)).
    type: list
    elements: dict
    default: []
  nodes:
    description:
      - The plan's nodes (C(name), C(address)), to name the node of a rank's line; the node whose log this is first
        (the head with the Ray executor, whose log holds every rank's lines behind Ray's prefix; each node its own
        with mp). A line without Ray's prefix is the first node's; one from an address not listed is named by its
        address.
    type: list
    elements: dict
    default: []
  tail_lines:
    description: Log lines quoted in a failure.
    type: int
    default: 40
"""

EXAMPLES = r"""
- name: Wait for the model to load, with progress, failing fast on a stall
  sparkops.cluster.engine_watch:
    container: sparkops-engine
    log_path: /var/log/sparkops/vllm.log
    pid_path: /var/log/sparkops/vllm.pid
    health_url: http://127.0.0.1:8000/health
    stall_timeout: 600
    known_failures: "{{ sparkops_plan.log_patterns }}"
    nodes: "{{ sparkops_plan.nodes }}"
    timeout: 3600
"""

RETURN = r"""
ready:
  description: The API answered O(health_url) with 200.
  returned: success
  type: bool
stage:
  description: The last load stage seen in the log.
  returned: always
  type: str
  sample: weights
summary:
  description: One line on where the load is.
  returned: always
  type: str
  sample: weights 57% (57/100 shards)
progress:
  description: Every stage passed, with the last log line of each.
  returned: always
  type: list
  elements: dict
state:
  description: State of the engine process (C(R), C(S), C(D) running or waiting, C(T) stopped, C(exited)).
  returned: always
  type: str
log_age:
  description: Seconds since the log last showed progress (a line other than vLLM's waiting notice).
  returned: always
  type: int
waiting:
  description: vLLM's waiting notice, when the log ends with it (no other line came since).
  returned: always
  type: str
progress_mark:
  description: A key of the log's content without vLLM's waiting notices (for the next call).
  returned: always
  type: str
progress_at:
  description: When the log last showed progress, in the node's clock (seconds since the epoch).
  returned: always
  type: int
nodes:
  description: The last load stage of each node's ranks, by node name (empty without O(nodes) and Ray's prefixes).
  returned: always
  type: dict
  sample: {spark-alpha: kv cache, spark-beta: model loaded}
failure:
  description: The known failure row matched by a log line (id, title, fix, source, line, node).
  returned: when a known fatal line was seen
  type: dict
tail:
  description: The last O(tail_lines) log lines.
  returned: on failure
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.sparkops.cluster.plugins.module_utils import _docker, _enginelog
from ansible_collections.sparkops.cluster.plugins.module_utils._command import require_positive, run_module_tool

# One `docker exec` per look: process state, container clock, log mtime, then the log.
PROBE = ('pid=$(cat "$1" 2>/dev/null); s=exited; '
         'if [ -n "$pid" ] && [ -r /proc/$pid/stat ]; then s=$(sed "s/.*) //" /proc/$pid/stat | cut -d" " -f1); fi; '
         'echo "$s $(date +%s) $(stat -c %Y "$2" 2>/dev/null || echo 0)"; tail -c 2000000 "$2" 2>/dev/null || true')


def look(module, docker, p):
    rc, out, err = run_module_tool(module, _docker.cli(module, docker) + ["exec", p["container"], "sh", "-c", PROBE,
                                                                          "probe", p["pid_path"], p["log_path"]],
                                   p["command_timeout"], ok=None)
    if rc != 0:
        module.fail_json(msg="cannot read the engine container %s (docker exec rc=%d): %s"
                             % (p["container"], rc, (err or out).strip()), state="unknown", stage="unknown",
                         summary="unknown", progress=[], log_age=0)
    head, log = (out.split("\n", 1) + [""])[:2]
    try:
        state, now, mtime = head.split()
        now, mtime = int(now), int(mtime)
    except ValueError:
        module.fail_json(msg="unexpected probe output from %s: %r" % (p["container"], head))
    if state in ("Z", "X"):
        state = "exited"
    return state, now, mtime, log


def healthy(url):
    try:
        return open_url(url, timeout=3, validate_certs=False).getcode() == 200
    except Exception:  # refused, reset, 503 while loading: not up yet
        return False


def main():
    module = AnsibleModule(
        argument_spec=dict(
            container=dict(type="str", required=True),
            log_path=dict(type="str", required=True),
            pid_path=dict(type="str", required=True),
            health_url=dict(type="str"),
            timeout=dict(type="int", default=3600),
            wait=dict(type="int", default=30),
            stall_timeout=dict(type="int", default=600),
            poll=dict(type="float", default=3),
            known_failures=dict(type="list", elements="dict", default=[]),
            nodes=dict(type="list", elements="dict", default=[]),
            progress_mark=dict(type="str"),
            progress_at=dict(type="int"),
            tail_lines=dict(type="int", default=40),
            command_timeout=dict(type="int", default=30),
            **_docker.OPTIONS
        ),
        supports_check_mode=True,
    )
    p = module.params
    require_positive(module, "timeout", "wait", "stall_timeout", "poll", "tail_lines", "command_timeout")
    try:
        failures = _enginelog.compile_failures(p["known_failures"])
    except _enginelog.FailurePatternError as exc:
        module.fail_json(msg=str(exc))
    docker = module.get_bin_path("docker", required=True)

    deadline = time.monotonic() + p["wait"]
    mark, at = p["progress_mark"], p["progress_at"]
    while True:
        state, now, mtime, log = look(module, docker, p)
        seen = _enginelog.scan(log, failures, p["nodes"])
        at = _enginelog.progress_at(seen, now, mtime, mark, at)
        mark = seen["mark"]
        age = max(0, now - at)
        summary = _enginelog.describe(seen["progress"][-1] if seen["progress"] else None)
        if seen["waiting"]:
            summary += "; vLLM waits on its shared-memory broadcast (a hang or slow work)"
        result = dict(changed=False, stage=seen["stage"], summary=summary, progress=seen["progress"],
                      state=state, log_age=age, nodes=seen["nodes"], waiting=seen["waiting"],
                      progress_mark=mark, progress_at=at)
        tail = _enginelog.lines_of(log)[-p["tail_lines"]:]
        f = seen["failure"]
        if f:
            module.fail_json(msg="known failure #%s during the load%s (%s): %s. Fix: %s (source: %s). Log line: %s"
                                 % (f["id"], " on %s" % f["node"] if f["node"] else "", summary, f["title"], f["fix"],
                                    f["source"], f["line"]),
                             failure=f, tail=tail, **result)
        if state == "exited":
            module.fail_json(msg="the engine process in %s exited during the load (last progress: %s); see tail"
                                 % (p["container"], summary), tail=tail, **result)
        if p["health_url"] and healthy(p["health_url"]):
            module.exit_json(ready=True, **result)
        if age >= p["stall_timeout"]:
            module.fail_json(msg="the load stalled: no log progress for %ds (stall_timeout %ds), engine process "
                                 "state %s%s; last progress: %s%s" % (
                                     age, p["stall_timeout"], state, " (stopped)" if state == "T" else "", summary,
                                     "; the log ends with vLLM's notice: %s" % seen["waiting"] if seen["waiting"]
                                     else ""),
                             tail=tail, **result)
        if time.monotonic() >= deadline:
            module.exit_json(ready=False, **result)
        time.sleep(p["poll"])


if __name__ == "__main__":
    main()
