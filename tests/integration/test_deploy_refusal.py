"""The deploy playbook refuses known-bad plans in seconds, with zero changed tasks.

Runs the real playbook with ansible-runner against the simulated inventory. The
static preflight needs no node, so the simulated nodes need not be up: a refusal
that touched a node would fail as unreachable instead.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import ansible_runner
import pytest

REPO = Path(__file__).resolve().parents[2]

BAD = [
    ("expert parallel on a hybrid model", {"serving": {"args": ["--enable-expert-parallel"]}}, "[KF-1]"),
    ("KV cache of 64 full-context sequences", {"serving": {"concurrency": 64}}, "[KF-100]"),
    ("TP=2 for 397 GB on 2 nodes", {"nodes": 2, "parallelism": {"tensor": 2}},
     "[PLAN-5] nodes: the recipe plans 2 node(s), the play has 4"),
    ("tensor 8 on 4 nodes", {"parallelism": {"tensor": 8}}, "[PLAN-1] parallelism"),
    ("empty GID index", {"serving": {"env": {"NCCL_IB_GID_INDEX": ""}}}, "[KF-17]"),
    ("engine too old", {"engine": {"version": "0.16.0"}}, "[KF-102]"),
    ("bad recipe field", {"parallelism": {"tensor": "four"}}, "parallelism.tensor must be"),
]


@pytest.mark.parametrize("label, overrides, needle", BAD, ids=[b[0] for b in BAD])
def test_bad_plan_refused_in_seconds(tmp_path, monkeypatch, label, overrides, needle):
    # ansible-playbook of the same virtualenv as this interpreter
    monkeypatch.setenv("PATH", "%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]))
    start = time.monotonic()
    r = ansible_runner.run(
        private_data_dir=str(tmp_path),
        project_dir=str(REPO),
        playbook=str(REPO / "playbooks" / "deploy-qwen397b.yml"),
        inventory=str(REPO / "inventory" / "simulated"),
        extravars={"sparkops_recipe_overrides": overrides},
        envvars={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        quiet=True,
    )
    elapsed = time.monotonic() - start
    assert r.status == "failed", label
    stats = r.stats
    assert sum(stats["changed"].values()) == 0 and not stats["dark"], stats
    failed = [e for e in r.events if e["event"] == "runner_on_failed"]
    assert len(failed) == 1 and failed[0]["event_data"]["task"] == "Refuse a known-bad plan before touching any node"
    res = failed[0]["event_data"]["res"]
    assert needle in res["msg"]
    # every refusal comes back structured too, for programs that drive the playbook
    assert res["refusals"] and all({"rule", "option", "reason", "fix", "sources", "severity"} <= set(x)
                                   for x in res["refusals"]), res["refusals"]
    assert any(needle.startswith("[%s]" % x["rule"]) or needle in x["reason"] for x in res["refusals"])
    assert elapsed < 30, "refusal took %.1f s" % elapsed


def test_a_target_group_without_hosts_fails_naming_the_variable(tmp_path, monkeypatch):
    """A consumer's own group name and no sparkops_target: the run fails, it does not
    skip every play and report success."""
    monkeypatch.setenv("PATH", "%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]))
    r = ansible_runner.run(
        private_data_dir=str(tmp_path), project_dir=str(REPO),
        playbook=str(REPO / "playbooks" / "teardown.yml"), inventory=str(REPO / "inventory" / "simulated"),
        extravars={"sparkops_target": "my_sparks"}, envvars={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}, quiet=True)
    assert r.status == "failed"
    failed = [e for e in r.events if e["event"] == "runner_on_failed"]
    msg = failed[0]["event_data"]["res"]["msg"]
    assert msg.startswith("no host in the inventory group 'my_sparks': set sparkops_target"), msg
    assert "sparkops_nodes" in msg and sum(r.stats["changed"].values()) == 0


def test_a_recipe_of_your_own_directory_is_planned(tmp_path, monkeypatch):
    """sparkops_recipes_dir: a consumer's recipe outside the collection (the collection's
    hardware profiles and table serve it)."""
    import yaml
    monkeypatch.setenv("PATH", "%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]))
    own = tmp_path / "my-recipes"
    own.mkdir()
    recipe = yaml.safe_load((REPO / "recipes" / "qwen397b.yml").read_text())
    recipe.update(name="my-qwen", description="a consumer's recipe")
    (own / "my-qwen.yml").write_text(yaml.safe_dump(recipe))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    r = ansible_runner.run(
        private_data_dir=str(run_dir), project_dir=str(REPO),
        playbook=str(REPO / "playbooks" / "flow" / "plan.yml"), inventory=str(REPO / "inventory" / "simulated"),
        extravars={"sparkops_recipe": "my-qwen", "sparkops_recipes_dir": str(own)},
        envvars={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}, quiet=True)
    assert r.status == "successful", [e["event_data"].get("res", {}).get("msg") for e in r.events
                                      if e["event"] == "runner_on_failed"]
    plans = [e["event_data"]["res"] for e in r.events if e["event"] == "runner_on_ok"
             and e["event_data"]["task"] == "Refuse a known-bad plan before touching any node"]
    assert plans[0]["plan"]["recipe"] == "my-qwen" and plans[0]["refusals"] == []


@pytest.mark.parametrize("name, content, words", [
    ("broken", "name: [unclosed\n", "is not YAML"),
    ("listed", "- name: x\n", "must be a mapping of fields, got list"),
    ("empty", "", "must be a mapping of fields, got an empty file"),
    ("../etc", None, "'../etc' is not a recipe name"),
    ("Qwen 397B", None, "'Qwen 397B' is not a recipe name"),
    ("missing", None, "recipe 'missing' not found in"),
])
def test_a_recipe_file_that_cannot_be_read_is_refused_not_a_traceback(tmp_path, monkeypatch, name, content, words):
    monkeypatch.setenv("PATH", "%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]))
    own = tmp_path / "recipes"
    own.mkdir()
    if content is not None:
        (own / ("%s.yml" % name)).write_text(content)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    r = ansible_runner.run(
        private_data_dir=str(run_dir), project_dir=str(REPO),
        playbook=str(REPO / "playbooks" / "flow" / "plan.yml"), inventory=str(REPO / "inventory" / "simulated"),
        extravars={"sparkops_recipe": name, "sparkops_recipes_dir": str(own)},
        envvars={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}, quiet=True)
    failed = [e["event_data"]["res"] for e in r.events if e["event"] == "runner_on_failed"]
    assert r.status == "failed" and len(failed) == 1, failed
    assert words in failed[0]["msg"] and "Traceback" not in failed[0]["msg"]
    assert [x["rule"] for x in failed[0]["refusals"]] == ["PLAN-4"]
