"""The roles renamed in 0.2.0 (ray_cluster -> engine_container, vllm_container -> vllm_serve
and benchmark) keep a shim of their old name for one release: each entry point forwards to
the new role, and a variable of an old name, which the new role would ignore, is refused
naming its new name. Run by ansible-playbook as a consumer's play would call the shim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def play(tmp_path, role, tasks_from, variables):
    book = [{"hosts": "localhost", "gather_facts": False, "connection": "local",
             "vars": dict(variables, ansible_python_interpreter=sys.executable),
             "tasks": [{"name": "Call the old role", "ansible.builtin.include_role": {
                 "name": "sparkops.cluster." + role, "tasks_from": tasks_from}}]}]
    (tmp_path / "play.yml").write_text(json.dumps(book))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="default",
               PATH="%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]))
    return subprocess.run(["ansible-playbook", "-i", "localhost,", str(tmp_path / "play.yml")], capture_output=True,
                          text=True, env=env, timeout=180, check=False, cwd=str(REPO))


def test_an_old_entry_point_runs_the_new_role(tmp_path):
    """vllm_container's stop is vllm_serve's stop: it runs (and fails on a container that does
    not exist, naming it), after the shim said the role moved."""
    missing = "sparkops-shim-%s" % uuid.uuid4().hex[:8]
    done = play(tmp_path, "vllm_container", "stop.yml", {"vllm_serve_engine_container": missing})
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "sparkops.cluster.vllm_container is deprecated" in out and "use sparkops.cluster.vllm_serve" in out, out
    assert "vllm_serve : Stop vllm serve gracefully" in out and missing in out, out


def test_a_variable_of_the_old_name_is_refused_naming_the_new_one(tmp_path):
    done = play(tmp_path, "ray_cluster", "stop.yml", {"ray_cluster_stop_timeout": 300, "ray_cluster_container_name": "x"})
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "ray_cluster_container_name, ray_cluster_stop_timeout: the role ray_cluster was renamed engine_container" in out
    assert "Fix: rename them (engine_container_name, engine_container_stop_timeout)" in out, out
    assert "Stop the engine container" not in out  # nothing of the new role ran
