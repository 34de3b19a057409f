"""A consumer's own infra repo, as one is shaped in the field: its own ansible.cfg, its own
group (gpu_rack_a, hosts dgx1..dgx4), its own recipes directory beside the collection's, and
every variable the plan reads written as a template (of another variable, of playbook_dir,
of a vaulted value). The plan-only entry (sparkops.cluster.plan) is run: it contacts no node,
so none has to be up. Checked here:

- the templated run plans exactly what the literal-valued run plans;
- a vaulted value reaches the preflight decrypted;
- the consumer's recipe and the collection's recipes are both found, and one of theirs that
  shadows ours by name is used and noted in the plan;
- an inventory that does not parse, an empty group and a --limit that leaves too few nodes
  each fail in seconds, naming the cause and the fix (no run that matches nothing exits 0);
- accepting a hard row is itself refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
VAULT_PASSWORD = "consumer-vault-password"
RAILS = [{"name": "rail1", "netdev": "enp1s0f1np1", "rdma_device": "rocep1s0f1", "subnet": "192.168.100.0/24"},
         {"name": "rail2", "netdev": "enP2p1s0f1np1", "rdma_device": "roceP2p1s0f1", "subnet": "192.168.101.0/24"}]


def vault(value, repo):
    """An inline vaulted value (`!vault |` and the ciphertext), as `ansible-vault encrypt_string` writes it."""
    out = subprocess.run([str(BIN / "ansible-vault"), "encrypt_string", value], capture_output=True, text=True, timeout=120,
                         check=True, cwd=repo, env=dict(os.environ, ANSIBLE_CONFIG=str(repo / "ansible.cfg"))).stdout
    assert out.startswith("!vault |"), out
    return out.rstrip()


@pytest.fixture(scope="module")
def consumer(tmp_path_factory):
    """The consumer repo: ansible.cfg, inventory/ with its own group, recipes/ of its own."""
    repo = tmp_path_factory.mktemp("infra")
    (repo / ".vault-password").write_text(VAULT_PASSWORD + "\n")
    (repo / "ansible.cfg").write_text(textwrap.dedent("""\
        [defaults]
        collections_path = %s
        interpreter_python = auto_silent
        vault_password_file = .vault-password
        """ % (REPO / ".collections")))
    inv = repo / "inventory"
    (inv / "group_vars" / "gpu_rack_a").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"gpu_rack_a": {"hosts": {
        "dgx%d" % i: None for i in range(1, 5)}}}}}))
    for i in range(1, 5):
        (inv / "host_vars" / ("dgx%d.yml" % i)).write_text(yaml.safe_dump({
            "sparkops_node_index": i - 1, "ansible_host": "10.20.0.%d" % (10 + i)}))
    # the consumer's own recipes: one of its own, and one that shadows the collection's qwen397b
    recipes = repo / "recipes"
    recipes.mkdir()
    base = yaml.safe_load((REPO / "recipes" / "qwen397b.yml").read_text())
    (recipes / "rack-a-qwen.yml").write_text(yaml.safe_dump(dict(base, name="rack-a-qwen")))
    (recipes / "qwen397b.yml").write_text(yaml.safe_dump(dict(base, description="our own qwen397b")))
    return repo


def write_vars(consumer, templated):
    """group_vars of gpu_rack_a: every variable the plan reads, as literals or as templates."""
    literal = {
        "sparkops_target": "gpu_rack_a",
        "sparkops_rails": RAILS,
        "sparkops_rail_host_offset": 10,
        "sparkops_recipes_dir": str(consumer / "recipes"),
        "sparkops_model_path": "/srv/models/qwen",
        "sparkops_api_port": 8001,
        "sparkops_ray_port": 6390,
        "sparkops_engine_container": "rack-a-engine",
        "sparkops_persistent": True,
        "sparkops_reclaim_min_cached_gb": 2.5,
        "sparkops_accept": {"KF-13": "checked on our fabric"},
    }
    values = dict(literal)
    if templated:
        values.update({
            "rack": {"models": "/srv/models", "api_port": 8001, "ray_port": "6390", "name": "rack-a"},
            "sparkops_recipes_dir": "{{ inventory_dir }}/../recipes",
            "sparkops_model_path": "{{ vault_models_root }}/qwen",
            "sparkops_api_port": "{{ rack.api_port }}",
            "sparkops_ray_port": "{{ rack.ray_port | int }}",
            "sparkops_engine_container": "{{ rack.name }}-engine",
            "sparkops_persistent": "{{ 'yes' if rack.name == 'rack-a' else 'no' }}",
            "sparkops_reclaim_min_cached_gb": "{{ 5 / 2 }}",
            "sparkops_accept": {"KF-13": "{{ 'checked on our fabric' }}"},
        })
    text = yaml.safe_dump(values, sort_keys=True)
    if templated:
        text += "vault_models_root: %s\n" % vault("/srv/models", consumer)
    (consumer / "inventory" / "group_vars" / "gpu_rack_a" / "sparkops.yml").write_text(text)


def plan(consumer, *args, inventory="inventory", recipe="rack-a-qwen"):
    """ansible-playbook sparkops.cluster.plan in the consumer repo: (rc, the preflight's result or
    None, the output), with the JSON callback (one document on stdout)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(consumer / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json",
               PATH="%s:%s" % (BIN, os.environ["PATH"]))
    start = time.monotonic()
    done = subprocess.run([str(BIN / "ansible-playbook"), "-i", inventory, "sparkops.cluster.plan",
                           "-e", "sparkops_recipe=%s" % recipe] + list(args), cwd=consumer, env=env,
                          capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - start
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        return done.returncode, None, done.stdout + done.stderr, elapsed
    result = None
    for p in doc.get("plays", []):
        for t in p.get("tasks", []):
            if t["task"]["name"] == "Refuse a known-bad plan before touching any node":
                result = next(iter(t["hosts"].values()))
    return done.returncode, result, done.stdout + done.stderr, elapsed


def test_templated_variables_plan_what_literals_plan(consumer):
    write_vars(consumer, templated=False)
    rc, literal, out, _ = plan(consumer)
    assert rc == 0, out[-3000:]
    write_vars(consumer, templated=True)
    rc, templated, out, _ = plan(consumer)
    assert rc == 0, out[-3000:]
    assert templated["plan"] == literal["plan"]
    settings = templated["plan"]["settings"]
    assert settings["model_path"] == "/srv/models/qwen"  # from a vaulted variable
    assert settings["api_port"] == 8001 and settings["ray_port"] == 6390 and settings["persistent"] is True
    assert settings["reclaim_min_cached_gb"] == 2.5
    assert [n["container"] for n in templated["plan"]["nodes"]] == ["rack-a-engine"] * 4
    assert templated["plan"]["nodes"][0]["command"][-4:] == ["--host", "127.0.0.1", "--port", "8001"]


def test_a_vaulted_api_key_reaches_the_preflight_decrypted(consumer):
    write_vars(consumer, templated=True)
    extra = consumer / "short-key.yml"
    extra.write_text("vllm_serve_api_key: %s\n" % vault("hunter2", consumer))
    rc, result, out, _ = plan(consumer, "-e", "@%s" % extra)
    assert rc == 2, out[-2000:]
    assert [r["rule"] for r in result["refusals"]] == ["SEC-8"]
    assert "vllm_serve_api_key has 7 characters" in result["msg"]


def test_their_recipes_beside_ours_one_of_theirs_shadowing_ours(consumer):
    write_vars(consumer, templated=True)
    rc, result, out, _ = plan(consumer, recipe="minimax-m27")  # the collection's, found through the search path
    assert rc == 2 and result["refusals"][0]["rule"] == "PLAN-5"  # 2 nodes planned, 4 given: it was read
    rc, result, out, _ = plan(consumer, recipe="qwen397b")
    assert rc == 0, out[-2000:]
    assert result["plan"]["sources"]["recipe"] == str(consumer / "recipes" / "qwen397b.yml")
    assert result["plan"]["notes"] == ["recipe qwen397b of %s shadows %s" % (
        consumer / "recipes" / "qwen397b.yml", REPO / ".collections" / "ansible_collections" / "sparkops" / "cluster"
        / "recipes" / "qwen397b.yml")]
    rc, result, out, _ = plan(consumer, recipe="rack-a-qwn")
    assert rc == 2 and "recipe 'rack-a-qwn' not found in %s or " % (consumer / "recipes") in result["msg"]
    assert "rack-a-qwen" in result["msg"] and "minimax-m27" in result["msg"]  # both directories' recipes listed


@pytest.mark.parametrize("args, inventory, words", [
    # without an inventory there are no group_vars either: sparkops_target is the default's
    ([], "nonexistent.yml", "no host in the inventory group 'sparkops_nodes'"),
    ([], "nonexistent.yml", "did the inventory parse? see the warnings above"),
    (["-e", "sparkops_target=gpu_rack_b"], "inventory", "no host in the inventory group 'gpu_rack_b'"),
    (["--limit", "dgx2"], "inventory", "--limit dgx2 leaves 1 of the 4 node(s) of group gpu_rack_a"),
])
def test_a_run_that_would_act_on_too_few_nodes_fails_naming_why(consumer, args, inventory, words):
    write_vars(consumer, templated=True)
    rc, result, out, elapsed = plan(consumer, *args, inventory=inventory)
    assert rc == 2 and words in out, out[-2000:]
    assert elapsed < 60


def test_accepting_a_hard_row_is_refused(consumer):
    write_vars(consumer, templated=True)
    rc, result, out, _ = plan(consumer, "-e", '{"sparkops_accept": {"INV-2": "trust me"}}')
    assert rc == 2 and result["refusals"][0]["rule"] == "PLAN-6"
    assert "INV-2 (" in result["msg"] and "cannot be accepted: it is a hard limit" in result["msg"]
    assert "sparkops_accept: {" not in result["msg"]  # no hint to accept it
