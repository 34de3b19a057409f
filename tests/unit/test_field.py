"""The field suite: the preflight judged against configurations users publicly report
working (tests/field/working/, each naming its source) and against bad plans of every
class an operator can write (tests/field/bad.yml). Each is planned by the preflight's own
code (plugin_utils/_preflight.judge) on an inventory shaped like the report's."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from ansible_collections.sparkops.cluster.plugins.plugin_utils import _preflight
from conftest import REPO

FIELD = REPO / "tests" / "field"
WORKING = sorted((FIELD / "working").glob("*.yml"))
BAD = yaml.safe_load((FIELD / "bad.yml").read_text())
RAILS = [{"name": "rail1", "netdev": "enp1s0f1np1", "rdma_device": "rocep1s0f1", "subnet": "192.168.100.0/24"},
         {"name": "rail2", "netdev": "enP2p1s0f1np1", "rdma_device": "roceP2p1s0f1", "subnet": "192.168.101.0/24"}]


def inventory(hosts, rails, common=None, per_host=None):
    """hostvars of `hosts` nodes (spark-0 is the head) with `rails` RoCE rails each (0: none)."""
    out = {}
    for i in range(hosts):
        hv = {"inventory_hostname": "spark-%d" % i, "ansible_host": "10.0.0.%d" % (10 + i), "sparkops_node_index": i}
        if rails:
            hv.update(sparkops_rails=copy.deepcopy(RAILS[:rails]), sparkops_rail_host_offset=10, sparkops_rail_mtu=9000)
        hv.update(copy.deepcopy(common or {}))
        hv.update(copy.deepcopy((per_host or {}).get(i, {})))
        out["spark-%d" % i] = hv
    return out


def load(name):
    """A working configuration: {source, hosts, rails, warns, accept, recipe or recipe_file}."""
    return yaml.safe_load((FIELD / "working" / (name + ".yml")).read_text())


def plan(tmp_path, config, overrides=None, common=None, per_host=None, hosts=None, rails=None, recipe_text=None):
    """judge() of a configuration: its recipe written to a recipes directory of its own
    (the collection's hardware profiles and table serve it), or a collection recipe."""
    variables = {}
    if recipe_text is not None or "recipe" in config:  # a recipe's file is named after it
        text = recipe_text if recipe_text is not None else yaml.safe_dump(config["recipe"])
        try:
            found = yaml.safe_load(text)
        except yaml.YAMLError:
            found = None
        name = found.get("name") if isinstance(found, dict) and found.get("name") else "field"
        (tmp_path / ("%s.yml" % name)).write_text(text)
        variables.update(sparkops_recipe=name, sparkops_recipes_dir=str(tmp_path))
    else:
        variables.update(sparkops_recipe=config["recipe_file"])
    if config.get("accept"):
        variables["sparkops_accept"] = config["accept"]
    if overrides is not None:
        variables["sparkops_recipe_overrides"] = overrides
    variables.update(common or {})
    hostvars = inventory(hosts or config.get("hosts", 1), config.get("rails", 2) if rails is None else rails,
                         variables, per_host)
    hosts_ = list(hostvars)
    return _preflight.judge(hostvars[hosts_[0]], hostvars, hosts_)


def base_config(name):
    if (FIELD / "working" / (name + ".yml")).exists():
        return load(name)
    recipe = yaml.safe_load((REPO / "recipes" / (name + ".yml")).read_text())
    return {"recipe_file": name, "hosts": recipe["nodes"], "rails": 2}


@pytest.mark.parametrize("path", WORKING, ids=[p.stem for p in WORKING])
def test_a_configuration_reported_working_is_planned(tmp_path, path):
    config = yaml.safe_load(path.read_text())
    assert config.get("source", "").strip(), "%s: name the public report" % path.name
    out = plan(tmp_path, config)
    assert not out.get("failed"), out.get("msg")
    assert out["refusals"] == []
    # the warnings are the ones the file expects: a rule that starts warning on a working
    # configuration is a regression as much as one that starts refusing it
    assert sorted({w["rule"] for w in out["plan"]["warnings"]}) == sorted(config.get("warns") or []), out["warnings"]
    assert sorted({a["rule"] for a in out["accepted"]}) == sorted(config.get("accept") or {})
    for accepted in out["plan"]["accepted"]:
        assert accepted["accepted"] == config["accept"][accepted["rule"]]
    assert out["plan"]["memory_per_gpu"]["fits"]


def test_there_are_at_least_ten_working_configurations_from_distinct_reports():
    sources = {yaml.safe_load(p.read_text())["source"].split(",")[0] for p in WORKING}
    assert len(WORKING) >= 10 and len(sources) >= 6, sources


@pytest.mark.parametrize("bad", BAD, ids=[b["case"] for b in BAD])
def test_a_bad_plan_is_refused_naming_the_field_and_the_fix(tmp_path, bad):
    config = base_config(bad["base"]) if "base" in bad else {"hosts": 4, "rails": 2}
    out = plan(tmp_path, config, overrides=bad.get("overrides"), common=bad.get("vars"), per_host=bad.get("host_vars"),
               hosts=bad.get("hosts"), rails=bad.get("rails"), recipe_text=bad.get("recipe_text"))
    assert out.get("failed"), "%s was not refused: %s" % (bad["case"], out.get("warnings"))
    hit = [r for r in out["refusals"] if r["rule"] == bad["rule"]]
    assert hit, "%s: expected %s, got %s" % (bad["case"], bad["rule"], out["msg"])
    text = "%s %s" % (hit[0]["option"], hit[0]["reason"])
    assert bad["words"] in text, (bad["case"], text)
    assert hit[0]["fix"].strip() and hit[0]["sources"] and "Traceback" not in out["msg"]


def test_every_class_of_bad_plan_is_covered():
    classes = {"KF-1", "PLAN-2", "KF-106", "KF-22", "KF-12", "KF-20", "PLAN-11", "KF-18", "INV-2", "INV-3", "INV-4",
               "KF-13", "KF-100", "PLAN-9", "PLAN-10", "KF-2", "PLAN-6", "PLAN-7", "PLAN-4", "SEC-1", "SEC-2", "SEC-3", "SEC-4", "SEC-7", "SEC-8"}
    assert classes <= {b["rule"] for b in BAD}


def test_an_accepted_refusal_is_recorded_in_the_plan_and_no_longer_stops_it(tmp_path):
    config = base_config("qwen397b")
    refused = plan(tmp_path, config, rails=1)
    assert refused["failed"] and "sparkops_accept: {KF-13: 'your reason'}" in refused["msg"]
    config["accept"] = {"KF-13": "one rail is enough for this model's traffic"}
    out = plan(tmp_path, config, rails=1)
    assert not out.get("failed") and {a["rule"] for a in out["plan"]["accepted"]} == {"KF-13"}
    assert any(w.startswith("accepted (sparkops_accept: one rail is enough") for w in out["warnings"])


@pytest.mark.parametrize("row, overrides, common", [
    ("PLAN-9", {"parallelism": {"tensor": 3, "pipeline": 1}, "nodes": 3}, {}),
    ("INV-3", None, {"ansible_host": "10.0.0.5"}),
])
def test_a_hard_row_is_never_waived(tmp_path, row, overrides, common):
    """Arithmetic and address conflicts: the refusal suggests no sparkops_accept, and accepting
    the row is itself refused, naming why; the run never goes on."""
    config = base_config("qwen397b")
    hosts = 3 if row == "PLAN-9" else None
    refused = plan(tmp_path, config, overrides=overrides, common=common, hosts=hosts)
    assert refused["failed"] and row in {r["rule"] for r in refused["refusals"]}
    assert "sparkops_accept" not in refused["msg"]
    config["accept"] = {row: "trust me"}
    out = plan(tmp_path, config, overrides=overrides, common=common, hosts=hosts)
    assert out["failed"] and out["refusals"][0]["rule"] == "PLAN-6"
    assert "%s (" % row in out["msg"] and "cannot be accepted: it is a hard limit" in out["msg"]


def test_a_version_bound_rule_outside_its_versions_is_named_not_judged(tmp_path):
    out = plan(tmp_path, base_config("qwen397b"))
    notes = {s["rule"]: s["note"] for s in out["plan"]["not_judged"]}
    assert notes["KF-3"] == "not judged: it applies to vLLM from 0.17.0.dev0 before 0.17.1.dev0; the plan's vLLM is 0.19.1"
    inside = plan(tmp_path, base_config("qwen397b-int4"),
                  overrides={"engine": {"version": "0.17.0rc1", "min_version": "0.16.0"}})
    assert [r["rule"] for r in inside["refusals"]] == ["KF-3"]


def test_a_single_host_needs_no_rails_but_several_hosts_do(tmp_path):
    out = plan(tmp_path, base_config("qwen397b-h200x8"), rails=0)
    assert not out.get("failed") and out["plan"]["nodes"][0]["rails"] == []
    assert "VLLM_HOST_IP" not in out["plan"]["nodes"][0]["env"]
    two = plan(tmp_path, base_config("minimax-m27"), rails=0)
    assert two["failed"] and two["refusals"][0]["rule"] == "INV-1"


def test_the_memory_rule_counts_the_kv_cache_of_the_context(tmp_path):
    out = plan(tmp_path, load("eugr-minimax-m27-nvfp4-2x"))
    mem = out["plan"]["memory_per_gpu"]
    # 2 x 62 layers x 4 KV heads per rank x 128 x 1 byte (fp8_e4m3) = 63488 bytes per token
    assert mem["kv_bytes_per_token"] == 63488
    assert mem["kv_need_gib"] == pytest.approx(63488 * 196608 / 2 ** 30, abs=0.01)


WRONG = [None, "", "x", 0, -1, 1.5, True, [], {}, ["--x"], {"a": 1}, "--enable-expert-parallel", "🚀", 10 ** 12]


def _nested(path, value):
    out = value
    for part in reversed(path.split(".")):
        out = {part: out}
    return out


def _judged_or_refused(out):
    """A result the preflight can give: a plan, or a refusal with a message and a structured
    row (never an exception: that would have failed the test already)."""
    assert isinstance(out, dict)
    if out.get("failed"):
        assert out["msg"].strip() and "Traceback" not in out["msg"]
        assert all(r["rule"] and r["fix"] for r in out["refusals"]), out["refusals"]
    else:
        assert out["plan"]["nodes"]


@pytest.mark.parametrize("path", sorted(_preflight._recipe._SCHEMA))
def test_fuzz_every_recipe_field_through_the_preflight(tmp_path, path):
    """Every schema field overridden with values of every kind: a plan or a refusal that
    names the field, through the whole preflight."""
    for value in WRONG:
        out = plan(tmp_path, base_config("qwen397b"), overrides=_nested(path, value))
        _judged_or_refused(out)
        if out.get("failed") and out["refusals"][0]["rule"] == "PLAN-4":
            assert path.split(".")[0] in out["msg"], (path, value, out["msg"])


@pytest.mark.parametrize("name", sorted(_preflight._settings.SETTINGS) + list(_preflight.ROLE_ENV)
                         + ["sparkops_rails", "sparkops_rail_mtu", "sparkops_node_index", "sparkops_rail_addresses"])
def test_fuzz_every_variable_through_the_preflight(tmp_path, name):
    for value in WRONG:
        if name == "sparkops_recipe" and value in ("x", "--enable-expert-parallel", "🚀"):
            continue  # a recipe of that name: refused as not found, tested elsewhere
        _judged_or_refused(plan(tmp_path, base_config("qwen397b"), common={name: value}))


def test_a_key_on_loopback_and_pinned_remote_code_are_planned(tmp_path):
    out = plan(tmp_path, base_config("qwen397b"), common={"sparkops_api_host": "127.0.0.1",
                                                          "vllm_serve_api_key": "a-long-enough-key-from-a-vault"},
               overrides={"serving": {"args": ["--trust-remote-code", "--revision=8d1c6b3"]}})
    assert not out.get("failed"), out.get("msg")


def test_a_secret_in_the_recipe_is_refused_and_its_value_never_shown(tmp_path):
    out = plan(tmp_path, base_config("qwen397b"), overrides={"serving": {"env": {"HF_TOKEN": "hf_planted_value_1234"}}})
    assert out["failed"] and "SEC-3" in {r["rule"] for r in out["refusals"]}
    assert "hf_planted_value_1234" not in json.dumps(out)  # not in the recipe, the plan or the message shown at -v
    assert out["recipe"]["serving"]["env"]["HF_TOKEN"] == "set"
