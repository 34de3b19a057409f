"""Persistent mode's serve program (roles/vllm_serve/templates/vllm-serve.j2), rendered by
Ansible with the role's vars and installed beside the role's supervisor (files/supervisor.py,
at the path vars/main.yml names) as boot_unit installs them, then run as its unit runs it: on a
node (a container of the simulated node image) against an engine container that shares the
node's network, through the build machine's real Docker engine. What it starts is a stand-in
for vllm serve (Python's http.server answering /health), since the point is the program:
the stamp, the PID, the environment file, the second start that changes nothing, the wait
for the API and its bound, the stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _containers import node_and_engine, sh

REPO = Path(__file__).resolve().parents[2]
PORT = 18631
STATE = "/var/log/sparkops"
SUPERVISOR = REPO / "roles" / "vllm_serve" / "files" / "supervisor.py"


@pytest.fixture(scope="module")
def cluster():
    """A node container and an engine container in its network namespace (conftest)."""
    with node_and_engine() as pair:
        yield pair


def render(tmp_path, engine, rank, command, load_timeout=60):
    """vllm-serve.j2 rendered by ansible-playbook as the role renders it."""
    stamp = json.dumps({"argv": command, "env": {"SPARKOPS_PROBE": "yes"}, "api_key_sha256": ""})
    play = [{
        "hosts": "localhost", "gather_facts": False, "connection": "local",
        "vars_files": [str(REPO / "roles" / "vllm_serve" / "vars" / "main.yml")],
        "vars": {"vllm_serve_engine_container": engine, "vllm_serve_state_dir": STATE,
                 "vllm_serve_load_timeout": load_timeout, "vllm_serve_stop_timeout": 10,
                 "vllm_serve_engine_unit": "sparkops-engine.service",
                 "__vllm_serve_stamp": stamp, "__vllm_serve_command": command,
                 "__vllm_serve_rank": rank, "__vllm_serve_url": "http://127.0.0.1:%d" % PORT,
                 "ansible_python_interpreter": sys.executable},
        "tasks": [{"name": "Render", "ansible.builtin.template": {
            "src": str(REPO / "roles" / "vllm_serve" / "templates" / "vllm-serve.j2"),
            "dest": str(tmp_path / "vllm-serve"), "mode": "0700"}}],
    }]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               PATH="%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]))
    done = subprocess.run(["ansible-playbook", "-i", "localhost,", str(tmp_path / "play.yml")], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    script = (tmp_path / "vllm-serve").read_text()
    sh("sh", "-n", str(tmp_path / "vllm-serve"))
    return script, stamp


def supervisor_path():
    """Where the role installs the supervisor on a node (vars/main.yml), read, not restated."""
    for line in (REPO / "roles" / "vllm_serve" / "vars" / "main.yml").read_text().splitlines():
        if line.startswith("__vllm_serve_serve_supervisor:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("__vllm_serve_serve_supervisor not found in roles/vllm_serve/vars/main.yml")


def on_node(node, script, *args, timeout=120):
    """The program run on the node as its unit runs it, with its environment file."""
    sh("docker", "exec", node, "sh", "-c", "mkdir -p /etc/sparkops /usr/local/libexec/sparkops && "
       "printf 'SPARKOPS_PROBE=yes\\n' > /etc/sparkops/vllm-serve.env")
    subprocess.run(["docker", "exec", "-i", node, "sh", "-c", "cat > /usr/local/libexec/sparkops/vllm-serve"],
                   input=script, text=True, check=True, timeout=30)
    subprocess.run(["docker", "exec", "-i", node, "sh", "-c", "cat > %s" % supervisor_path()],
                   input=SUPERVISOR.read_text(), text=True, check=True, timeout=30)
    return sh("docker", "exec", node, "sh", "/usr/local/libexec/sparkops/vllm-serve", *args, check=False,
              timeout=timeout)


def test_a_worker_starts_once_then_finds_it_running_then_stops(tmp_path, cluster):
    node, engine = cluster
    script, stamp = render(tmp_path, engine, 1, ["sleep", "300"])
    first = on_node(node, script, "start")
    assert first.returncode == 0 and "vllm serve started in %s" % engine in first.stdout, first
    pid = sh("docker", "exec", engine, "cat", STATE + "/vllm.pid").stdout.strip()
    assert sh("docker", "exec", engine, "cat", STATE + "/vllm.stamp").stdout == stamp
    assert sh("docker", "exec", engine, "cat", "/proc/%s/cmdline" % pid).stdout.split("\0")[:2] == ["sleep", "300"]
    # the environment file reached the process
    assert "SPARKOPS_PROBE=yes" in sh("docker", "exec", engine, "cat", "/proc/%s/environ" % pid).stdout.split("\0")
    again = on_node(node, script, "start")
    assert again.returncode == 0 and "already runs as planned" in again.stdout, again
    assert sh("docker", "exec", engine, "cat", STATE + "/vllm.pid").stdout.strip() == pid
    stop = on_node(node, script, "stop")
    assert stop.returncode == 0 and "stopped in" in stop.stdout, stop
    assert sh("docker", "exec", engine, "test", "-e", "/proc/" + pid, check=False).returncode != 0


def test_a_recorded_pid_that_another_process_took_is_not_vllm_serve(tmp_path, cluster):
    """After the engine container restarts, the PID in vllm.pid can be any process's (here
    the container's PID 1): neither a start nor a stop may take it for vllm serve."""
    node, engine = cluster
    script, stamp = render(tmp_path, engine, 1, ["sleep", "301"])
    sh("docker", "exec", engine, "sh", "-c", "mkdir -p %s && echo 1 > %s/vllm.pid && echo 7 > %s/vllm.start" % (
        STATE, STATE, STATE))
    subprocess.run(["docker", "exec", "-i", engine, "sh", "-c", "cat > %s/vllm.stamp" % STATE], input=stamp,
                   text=True, check=True, timeout=30)
    stop = on_node(node, script, "stop")
    assert stop.returncode == 0 and "not running" in stop.stdout, stop
    assert sh("docker", "inspect", "-f", "{{.State.Running}}", engine).stdout.strip() == "true"
    start = on_node(node, script, "start")
    assert start.returncode == 0 and "vllm serve started" in start.stdout, start
    pid = sh("docker", "exec", engine, "cat", STATE + "/vllm.pid").stdout.strip()
    assert pid != "1" and sh("docker", "exec", engine, "cat", "/proc/%s/cmdline" % pid).stdout.startswith("sleep\x00301")
    on_node(node, script, "stop")


def test_another_command_restarts_and_the_head_waits_for_its_api(tmp_path, cluster):
    node, engine = cluster
    serve = ["sh", "-c", "cd /tmp && sleep 3 && touch health && exec python3 -m http.server %d --bind 127.0.0.1" % PORT]
    script = render(tmp_path, engine, 0, serve)[0]
    done = on_node(node, script, "start")
    assert done.returncode == 0, done
    assert "vllm serve started" in done.stdout and "the API answers at http://127.0.0.1:%d/health" % PORT in done.stdout
    on_node(node, script, "stop")


def test_an_api_that_never_answers_fails_within_its_bound(tmp_path, cluster):
    node, engine = cluster
    script = render(tmp_path, engine, 0, ["sleep", "300"], load_timeout=6)[0]
    done = on_node(node, script, "start", timeout=60)
    assert done.returncode == 1
    assert "the API does not answer at http://127.0.0.1:%d/health after 6 s" % PORT in done.stdout, done
    on_node(node, script, "stop")


def test_a_stopped_engine_is_named(tmp_path, cluster):
    node, engine = cluster
    script = render(tmp_path, engine + "-absent", 1, ["sleep", "300"])[0]
    done = on_node(node, script, "start")
    assert done.returncode == 1
    assert "cannot read the state of vllm serve in %s-absent: is the engine container running?" % engine in done.stdout


def group_left(engine, pid):
    """Processes of vllm serve's group (its PID as their group) still running, zombies aside."""
    out = sh("docker", "exec", engine, "sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null").stdout
    left = []
    for line in out.splitlines():
        own, rest = line.split(" ", 1)
        fields = rest.rsplit(") ", 1)[1].split()
        if fields[0] not in ("Z", "X") and fields[2] == pid:
            left.append(own)
    return left


def test_a_stop_waits_for_the_whole_group_and_kills_what_ignores_sigint(tmp_path, cluster):
    """vllm serve can end on SIGINT while its engine core and worker do not (a load cut by
    another node's failure, seen with the mp executor): killing vllm serve alone left them
    running, orphaned, with their memory. Here the stand-in ends on SIGINT and its child
    ignores it; the stop waits for the whole group (vllm_serve_stop_timeout, 10 s here),
    then kills it."""
    node, engine = cluster
    serve = ["sh", "-c", "(trap '' INT; exec sleep 302) & wait"]
    script = render(tmp_path, engine, 1, serve)[0]
    assert on_node(node, script, "start").returncode == 0
    pid = sh("docker", "exec", engine, "cat", STATE + "/vllm.pid").stdout.strip()
    assert len(group_left(engine, pid)) == 2  # the stand-in and its child
    stop = on_node(node, script, "stop")
    assert stop.returncode == 0 and "killed after 10s" in stop.stdout, stop
    assert group_left(engine, pid) == []


def test_a_graceful_stop_waits_for_the_children_too(tmp_path, cluster):
    """A child that ends a moment after vllm serve (as the engine core does) is waited for,
    not killed."""
    node, engine = cluster
    # the stand-in passes the stop on to its child and ends at once; the child takes 2 s
    serve = ["sh", "-c", "trap 'kill $c; exit 0' INT; python3 -c 'import signal, sys, time; signal.signal("
             "signal.SIGTERM, lambda *a: (time.sleep(2), sys.exit(0))); time.sleep(303)' & c=$!; wait"]
    script = render(tmp_path, engine, 1, serve)[0]
    assert on_node(node, script, "start").returncode == 0
    pid = sh("docker", "exec", engine, "cat", STATE + "/vllm.pid").stdout.strip()
    stop = on_node(node, script, "stop")
    assert stop.returncode == 0 and "stopped in" in stop.stdout, stop
    assert int(stop.stdout.split("stopped in ")[1].split("s")[0]) >= 2, stop  # it waited for the child
    assert group_left(engine, pid) == []
