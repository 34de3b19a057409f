"""The engine_watch action plugin: the watches of one task meet on the controller (the mp
executor: the head watches the API, each follower its own log)."""

from __future__ import annotations

import os

import pytest
from ansible import constants as C
from ansible.plugins.action import ActionBase

from ansible_collections.sparkops.cluster.plugins.action import engine_watch


class Task:
    def __init__(self, args, uuid="task-1"):
        self.args = args
        self._uuid = uuid


def action(args, answers, uuid="task-1"):
    """An ActionModule whose module calls return `answers` in turn (the last one forever)."""
    plugin = engine_watch.ActionModule.__new__(engine_watch.ActionModule)
    plugin._task = Task(args, uuid)
    calls = []

    def execute(module_name, module_args, task_vars):
        calls.append(dict(module_args))
        return dict(answers[min(len(calls), len(answers)) - 1])
    plugin._execute_module = execute
    return plugin, calls


@pytest.fixture(autouse=True)
def local_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "DEFAULT_LOCAL_TMP", str(tmp_path), raising=False)
    monkeypatch.setattr(ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
    return tmp_path


LOADING = {"ready": False, "summary": "weights 50% (1/2 shards)", "log_age": 1, "state": "S", "nodes": {}}


def test_a_follower_ends_when_the_head_marks_the_api_ready(local_tmp):
    head, _calls = action({"health_url": "http://127.0.0.1:8000/health", "wait": 10}, [dict(LOADING, ready=True)])
    assert head.run(task_vars={"inventory_hostname": "spark-alpha"})["ready"] is True
    follower, calls = action({"wait": 30}, [LOADING])
    out = follower.run(task_vars={"inventory_hostname": "spark-beta"})
    assert out["ready"] is True and "spark-alpha" in out["msg"] and not out.get("failed")
    assert calls[0]["wait"] == 5  # a follower looks at the meeting every 5 s at most, not every 30


def test_a_follower_failure_fails_the_head_naming_the_follower(local_tmp):
    fatal = dict(LOADING, failed=True, msg="known failure #KF-30 during the load (model): ...")
    follower, _calls = action({"wait": 10}, [fatal])
    assert follower.run(task_vars={"inventory_hostname": "spark-delta"})["failed"] is True
    head, calls = action({"health_url": "http://127.0.0.1:8000/health", "wait": 10}, [LOADING])
    out = head.run(task_vars={"inventory_hostname": "spark-alpha"})
    assert out["failed"] is True and len(calls) == 1
    assert out["msg"] == "the load failed on another node: spark-delta: known failure #KF-30 during the load (model): ..."
    # another follower stops watching without a failure of its own (the head reports)
    other, _calls = action({"wait": 10}, [LOADING])
    out = other.run(task_vars={"inventory_hostname": "spark-gamma"})
    assert not out.get("failed") and out["ready"] is False and "spark-delta" in out["msg"]


def test_each_task_meets_in_its_own_directory_and_a_follower_times_out(local_tmp):
    head, _calls = action({"health_url": "http://h/health"}, [dict(LOADING, ready=True)], uuid="task-1")
    head.run(task_vars={"inventory_hostname": "spark-alpha"})
    follower, _calls = action({"wait": 1, "timeout": 0}, [LOADING], uuid="task-2")
    out = follower.run(task_vars={"inventory_hostname": "spark-beta"})
    assert out["failed"] is True and "did not come up within 0s" in out["msg"]
    assert sorted(os.listdir(local_tmp)) == ["sparkops-engine-watch-task-1", "sparkops-engine-watch-task-2"]
