"""The timeline callback (plugins/callback/timeline.py) on a real ansible-playbook run: one JSON
line per task and host, with the play, the task, its status and when it started and ended,
in order; nothing without SPARKOPS_TIMELINE."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(tmp_path, timeline):
    play = [{"name": "Two hosts", "hosts": "all", "gather_facts": False, "connection": "local", "tasks": [
        {"name": "Wait a little", "ansible.builtin.command": "sleep 1", "changed_when": False},
        {"name": "Change one", "ansible.builtin.command": "true", "when": "inventory_hostname == 'b'"},
        {"name": "Fail, ignored", "ansible.builtin.command": "false", "ignore_errors": True}]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_CALLBACKS_ENABLED="sparkops.cluster.timeline",
               PATH="%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]))
    env.pop("SPARKOPS_TIMELINE", None)
    if timeline:
        env["SPARKOPS_TIMELINE"] = str(timeline)
    done = subprocess.run(["ansible-playbook", "-i", "a,b,", "-e", "ansible_python_interpreter=%s" % sys.executable,
                           str(tmp_path / "play.yml")], capture_output=True, text=True, env=env, timeout=120,
                          check=False, cwd=str(REPO))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_task_of_every_host_is_a_line_in_order(tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    run(tmp_path, timeline)
    lines = [json.loads(line) for line in timeline.read_text().splitlines()]
    seen = {(x["task"], x["host"]): x for x in lines}
    assert set(seen) == {(t, h) for t in ("Wait a little", "Change one", "Fail, ignored") for h in "ab"}
    assert seen[("Change one", "b")]["status"] == "changed" and seen[("Change one", "a")]["status"] == "skipped"
    assert seen[("Fail, ignored", "a")]["status"] == "ignored" and seen[("Wait a little", "a")]["status"] == "ok"
    assert all(x["play"] == "Two hosts" and x["end"] >= x["start"] for x in lines)
    waited = seen[("Wait a little", "a")]
    assert waited["end"] - waited["start"] >= 1.0 and waited["action"] == "ansible.builtin.command"
    assert seen[("Change one", "a")]["start"] >= waited["end"] - 0.5  # tasks follow each other


def test_nothing_is_written_without_the_variable(tmp_path):
    run(tmp_path, None)
    assert not list(tmp_path.glob("*.jsonl"))
