"""The watchdog's program (roles/watchdog/files/sparkops-watchdog.py, with the collection's
module_utils/_watchdog.py beside it as the role installs it), run as its unit runs it: on a
node (a container of the simulated node image, the host's Docker socket) against an engine
container that shares the node's network, through the build machine's real Docker engine.
Its configuration is the filter's (plugin_utils/_monitoring.watchdog_config) for a plan of
one node. What runs in the engine is a stand-in for vllm serve (a process whose command
line names it), since the point is the program: a stopped rank, a probe that gets no
answer, an engine container that stopped, each recorded once after two checks agree, and
a healthy engine with none, also once it is back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / ".collections"))

from ansible_collections.sparkops.cluster.plugins.plugin_utils import _monitoring  # noqa: E402
from _containers import node_and_engine, sh  # noqa: E402

LIBEXEC = "/usr/local/libexec/sparkops/watchdog"
INCIDENTS = "/var/log/sparkops/incidents"
# a stand-in for vllm serve: its command line names it, as the real one's does
STAND_IN = ["python3", "-c", "import sys, time; print('serving', flush=True); time.sleep(600)", "vllm serve", "tiny"]
ROWS = [{"id": "KF-108", "title": "A rank of the engine is stopped", "fix": "resume it", "source": "s",
         "kernel_patterns": [], "watch": "stopped_rank", "patterns": []},
        {"id": "KF-109", "title": "A rank of the engine is gone", "fix": "deploy again", "source": "s",
         "kernel_patterns": [], "watch": "missing_rank", "patterns": []},
        {"id": "KF-110", "title": "The engine container is not running", "fix": "read docker logs", "source": "s",
         "kernel_patterns": [], "watch": "engine_down", "patterns": []},
        {"id": "KF-111", "title": "The generation probe failed", "fix": "run status", "source": "s",
         "kernel_patterns": [], "watch": "probe_failed", "patterns": []}]
OPTIONS = {"period_s": 300, "probe_timeout": 5, "probe_prompt": "Say OK.", "probe_max_tokens": 4, "confirm_runs": 2,
           "log_lines": 5, "command_timeout": 60, "incident_dir": INCIDENTS,
           "state_file": "/var/lib/sparkops/watchdog.json", "state_dir": "/var/log/sparkops", "key_file": "",
           "restart_unit": "", "restart_max": 2}


def plan(engine, head):
    """A plan of one node as the preflight makes it, in the fields the watchdog reads."""
    return {"head": "spark-alpha" if head else "spark-omega", "executor": "mp", "served_model_name": "sparkops-tiny",
            "api": {"host": "127.0.0.1", "port": 18641}, "log_patterns": ROWS,
            "nodes": [{"name": "spark-alpha", "container": engine,
                       "command": ["vllm", "serve", "m", "--tensor-parallel-size", "1"]}]}


@pytest.fixture()
def cluster():
    """A node container with the program installed, and an engine container in its network
    namespace running the stand-in; removed afterwards."""
    with node_and_engine() as (node, engine):
        start_stand_in(engine)
        sh("docker", "exec", node, "mkdir", "-p", LIBEXEC, "/etc/sparkops")
        for src, dest in ((REPO / "roles" / "watchdog" / "files" / "sparkops-watchdog.py", "sparkops-watchdog.py"),
                          (REPO / "plugins" / "module_utils" / "_watchdog.py", "_watchdog.py")):
            subprocess.run(["docker", "exec", "-i", node, "sh", "-c", "cat > %s/%s" % (LIBEXEC, dest)],
                           input=src.read_text(), text=True, check=True, timeout=30)
        yield node, engine


def start_stand_in(engine):
    """The stand-in started in the engine container, as the deploy starts vllm serve; once it runs."""
    sh("docker", "exec", "-d", engine, "sh", "-c", "mkdir -p /var/log/sparkops && echo $$ > /tmp/stand-in.pid && "
       "exec \"$@\" > /var/log/sparkops/vllm.log 2>&1", "sh", *STAND_IN)
    sh("docker", "exec", engine, "timeout", "60", "sh", "-c", "until pgrep -f 'vllm serve' >/dev/null; do sleep 0.2; done",
       timeout=90)


def configure(node, engine, head=False, restart_unit=""):
    config = _monitoring.watchdog_config(plan(engine, head), "spark-alpha",
                                         dict(OPTIONS, restart_unit=restart_unit, restart_max=1))
    subprocess.run(["docker", "exec", "-i", node, "sh", "-c", "cat > /etc/sparkops/watchdog.json"],
                   input=json.dumps(config), text=True, check=True, timeout=30)


def check(node):
    """One check, as the unit runs it."""
    done = sh("docker", "exec", node, "timeout", "300", "python3", LIBEXEC + "/sparkops-watchdog.py",
              "/etc/sparkops/watchdog.json", timeout=330)
    return done.stdout


def incidents(node):
    names = sh("docker", "exec", node, "sh", "-c", "ls %s 2>/dev/null || true" % INCIDENTS).stdout.split()
    return [json.loads(sh("docker", "exec", node, "cat", "%s/%s" % (INCIDENTS, n)).stdout) for n in sorted(names)]


def stand_in_pid(engine):
    return sh("docker", "exec", engine, "cat", "/tmp/stand-in.pid").stdout.strip()


def test_a_stopped_rank_is_recorded_once_after_two_checks_and_a_healthy_engine_never(cluster):
    node, engine = cluster
    configure(node, engine)
    for _ in range(2):
        out = check(node)
        assert "watchdog spark-alpha: healthy" in out, out
    assert incidents(node) == []
    pid = stand_in_pid(engine)
    sh("docker", "exec", engine, "kill", "-STOP", pid)
    assert "seen once" in check(node) and incidents(node) == []
    out = check(node)
    assert "incident" in out and "KF-108" in out, out
    [inc] = incidents(node)
    assert [r["id"] for r in inc["rows"]] == ["KF-108"]
    assert inc["findings"] == [{"watch": "stopped_rank", "kind": "vllm serve", "pid": int(pid), "state": "T"}]
    assert inc["log_tail"] == ["serving"] and inc["memory"]["MemAvailable_kb"] > 0
    # the same incident going on is not recorded again, and each check says so
    assert "the incident of %s goes on" % sh("docker", "exec", node, "ls", INCIDENTS).stdout.strip() in check(node)
    assert len(incidents(node)) == 1
    sh("docker", "exec", engine, "kill", "-CONT", pid)
    assert "healthy" in check(node)


def test_a_probe_without_an_answer_and_a_stopped_engine_container_are_named(cluster):
    node, engine = cluster
    configure(node, engine, head=True)  # nothing answers on the API's port
    check(node)
    out = check(node)
    assert "probe failed: no answer" in out and "KF-111" in out, out
    [inc] = incidents(node)
    assert inc["probe"]["ok"] is False and [r["id"] for r in inc["rows"]] == ["KF-111"]
    assert inc["action"] is None  # no restart unless asked
    configure(node, engine)
    sh("docker", "stop", "-t", "1", engine)
    check(node)
    out = check(node)
    assert "KF-110" in out and "engine down" in out, out
    assert [r["id"] for r in incidents(node)[-1]["rows"]] == ["KF-110"]
    # the engine back as a deploy brings it (its container, then vllm serve): the checks of the
    # healed engine record nothing new
    recorded = len(incidents(node))
    sh("docker", "start", engine)
    start_stand_in(engine)
    for _ in range(2):
        out = check(node)
        assert "watchdog spark-alpha: healthy" in out, out
    assert len(incidents(node)) == recorded


def test_a_broken_configuration_is_named(cluster):
    node, _engine = cluster
    sh("docker", "exec", node, "sh", "-c", "echo '{\"host\": 1}' > /etc/sparkops/watchdog.json")
    done = sh("docker", "exec", node, "python3", LIBEXEC + "/sparkops-watchdog.py", "/etc/sparkops/watchdog.json",
              check=False)
    assert done.returncode == 2 and "is not usable: lacks container" in done.stderr, done


def test_a_restart_after_a_failed_probe_is_bounded(cluster):
    """Asked for (persistent mode), a failed probe restarts the serve unit once a day at most;
    the node container has no systemd, so the attempt fails and says so."""
    node, engine = cluster
    configure(node, engine, head=True, restart_unit="sparkops-vllm-serve.service")
    check(node)
    check(node)
    [first] = incidents(node)
    assert first["action"].startswith("restart of sparkops-vllm-serve.service failed: "), first["action"]
    # another incident the same day: no second attempt (restart_max 1)
    sh("docker", "stop", "-t", "1", engine)
    check(node)
    check(node)
    second = incidents(node)[-1]
    assert [r["id"] for r in second["rows"]] == ["KF-110"]
    assert second["action"] == ("not restarted: 1 restart(s) of sparkops-vllm-serve.service in the last day already "
                                "(restart_max)")
