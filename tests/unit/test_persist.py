"""Persistent mode's boot program (roles/engine_container/files/engine_boot.py), which runs on a
node outside Ansible: its reading of ray.nodes() agrees with the controller's
(module_utils/_ray.py) on the real captures, its waits are bounded and say what they wait
for, and every way a boot can fail ends in one line naming what is missing."""

from __future__ import annotations

import importlib.util
import re

import pytest
import yaml

from ansible_collections.sparkops.cluster.plugins.module_utils._ray import cluster_state
from conftest import REPO, fixture

SPEC = importlib.util.spec_from_file_location("engine_boot", REPO / "roles" / "engine_container" / "files" / "engine_boot.py")
boot = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(boot)

EXPECTED = {"192.168.100.10": "spark-alpha", "192.168.100.11": "spark-beta",
            "192.168.100.12": "spark-gamma", "192.168.100.13": "spark-delta"}


@pytest.mark.parametrize("name", ["ray_nodes_4_alive.json", "ray_nodes_4_one_dead.json"])
@pytest.mark.parametrize("gpus", [1, 2])
def test_reads_ray_nodes_as_the_controller_does(name, gpus):
    text = fixture(name)
    missing, have, want = boot.ray_missing(text, EXPECTED, gpus)
    state = cluster_state(text, EXPECTED, gpus)
    assert missing == state["missing"] and have == state["gpus"]
    assert (not missing and have >= want) == state["whole"]


def test_a_dead_worker_is_named():
    assert boot.ray_missing(fixture("ray_nodes_4_one_dead.json"), EXPECTED, 1) == (["spark-delta"], 3.0, 4)


class Clock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_wait_returns_once_ready_and_reports_progress(capsys):
    clock = Clock()
    answers = iter([(False, "connection refused")] * 20 + [(True, "")])
    ok, note = boot.wait("the Ray head", lambda: next(answers), 300, 30, clock, clock.sleep)
    out = capsys.readouterr().out.splitlines()
    assert ok and note == ""
    # 20 failed probes 5 s apart: progress said at 30, 60 and 90 s, then ready
    assert [line for line in out if "waiting" in line] == [
        "sparkops engine-boot: waiting for the Ray head (%d s of 300 s): connection refused" % s for s in (30, 60, 90)]
    assert out[-1] == "sparkops engine-boot: the Ray head: ready after 100 s"


def test_wait_gives_up_at_its_deadline():
    clock = Clock()
    calls = []

    def never():
        calls.append(clock.now)
        return False, "no route to host"

    ok, note = boot.wait("x", never, 20, 30, clock, clock.sleep)
    assert not ok and note == "no route to host" and clock.now == 20 and len(calls) == 5


def conf(**over):
    base = {"node": "spark-beta", "container": "sparkops-engine", "address": "192.168.100.11",
            "head": {"name": "spark-alpha", "address": "192.168.100.10", "port": 6379}, "expected": {},
            "gpus_per_node": 1, "ray_query": ["timeout", "30", "python3", "-c", "..."], "wait_timeout": 60,
            "stop_timeout": 120}
    base.update(over)
    return base


@pytest.fixture
def node(monkeypatch):
    """The boot's outside world: which waits succeed and what docker answers (recorded)."""
    world = {"ready": set(), "docker": {}, "ran": []}

    def wait(what, probe, deadline, report):
        ok = any(what.startswith(w) for w in world["ready"])
        return ok, "" if ok else "still not there"

    def run(argv, timeout):
        world["ran"].append(argv)
        return world["docker"].get(argv[1], (0, ""))

    monkeypatch.setattr(boot, "wait", wait)
    monkeypatch.setattr(boot, "run", run)
    return world


def test_a_worker_whose_head_never_answers_names_the_head(node, capsys):
    node["ready"] = {"this node's rail address"}
    assert boot.start(conf()) == 1
    out = capsys.readouterr().out
    assert "the Ray head spark-alpha does not answer at 192.168.100.10:6379 after 60 s" in out
    assert node["ran"] == []  # nothing started


def test_a_node_without_its_rail_address_starts_nothing(node, capsys):
    assert boot.start(conf()) == 1
    assert "the rail address 192.168.100.11 of spark-beta is not configured after 60 s" in capsys.readouterr().out
    assert node["ran"] == []


def test_a_worker_starts_its_container_once_the_head_answers(node, capsys):
    node["ready"] = {"this node's rail address", "the Ray head"}
    assert boot.start(conf()) == 0
    assert node["ran"] == [["docker", "start", "sparkops-engine"]]


def test_a_container_the_deploy_never_made_is_named(node, capsys):
    node["ready"] = {"this node's rail address", "the Ray head"}
    node["docker"]["start"] = (1, "Error response from daemon: No such container: sparkops-engine\n")
    assert boot.start(conf()) == 1
    assert "docker start sparkops-engine failed (rc 1): Error response from daemon: No such container" in \
        capsys.readouterr().out


def test_the_head_waits_for_every_node_and_names_the_missing_ones(node, capsys):
    node["ready"] = {"this node's rail address"}
    assert boot.start(conf(head=None, expected=EXPECTED)) == 1
    out = capsys.readouterr().out
    assert "Ray is not whole after 60 s" in out and node["ran"] == [["docker", "start", "sparkops-engine"]]


def test_the_ray_probe_says_who_is_missing(monkeypatch):
    monkeypatch.setattr(boot, "run", lambda argv, timeout: (0, fixture("ray_nodes_4_one_dead.json")))
    assert boot.ray_probe(conf(expected=EXPECTED))() == (False, "3/4 nodes, 3/4 GPU; missing: spark-delta")
    monkeypatch.setattr(boot, "run", lambda argv, timeout: (0, fixture("ray_nodes_4_alive.json")))
    assert boot.ray_probe(conf(expected=EXPECTED))() == (True, "4/4 nodes, 4/4 GPU")
    monkeypatch.setattr(boot, "run", lambda argv, timeout: (124, "timeout did not end within 60 s"))
    ok, note = boot.ray_probe(conf(expected=EXPECTED))()
    assert not ok and note.startswith("the head could not be queried (rc 124)")
    monkeypatch.setattr(boot, "run", lambda argv, timeout: (0, "Traceback (most recent call last):\n"))
    ok, note = boot.ray_probe(conf(expected=EXPECTED))()
    assert not ok and note.startswith("ray.nodes() gave no node list")


def test_run_bounds_a_hung_program():
    rc, out = boot.run(["sleep", "30"], 1)
    assert rc == 124 and out == "sleep did not end within 1 s"
    rc, out = boot.run(["/nonexistent/docker"], 1)
    assert rc == 127


def test_an_unreadable_config_is_named(tmp_path, capsys):
    bad = tmp_path / "engine-boot.json"
    bad.write_text("{not json")
    assert boot.main(["engine-boot", "start", str(bad)]) == 2
    assert "cannot read %s" % bad in capsys.readouterr().out
    assert boot.main(["engine-boot", "restart", str(bad)]) == 2


def test_the_config_the_role_writes_is_what_the_program_reads():
    """roles/engine_container/tasks/persist_on.yml writes these keys; the program reads no other."""
    tasks = yaml.safe_load((REPO / "roles" / "engine_container" / "tasks" / "persist_on.yml").read_text())
    configs = [task["vars"]["__config"] for task in tasks if "__config" in task.get("vars", {})]
    assert len(configs) == 1, configs
    written = set(configs[0])
    source = (REPO / "roles" / "engine_container" / "files" / "engine_boot.py").read_text()
    read = set(re.findall(r'conf\["(\w+)"\]', source)) | set(re.findall(r'conf\.get\("(\w+)"\)', source))
    assert read <= written, read - written
