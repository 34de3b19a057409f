"""A checkpoint's facts from its config.json (module_utils/_checkpoint), what node_facts keeps
for the preflight (module_utils/_nodefacts.preflight_view), and the preflight judging the
model served: facts the recipe omits taken from the checkpoint, facts it gives otherwise
refused (PLAN-13), traits derived from the architecture."""

from __future__ import annotations

import copy
import json
import os

import pytest
import yaml

from ansible_collections.sparkops.cluster.plugins.module_utils import _checkpoint, _nodefacts
from ansible_collections.sparkops.cluster.plugins.plugin_utils import _preflight, _recipe
from conftest import FIXTURES, REPO

# config.json files as transformers writes them (tests/fixtures/README.md says where each is from)
TINY = "config_json_sparkops_tiny_qwen2_transformers_5.19.0.json"
QWEN35 = "config_json_qwen3_5_moe_397b_dims_transformers_5.19.0.json"
QWEN3VL = "config_json_qwen3_vl_moe_235b_dims_transformers_5.19.0.json"
MINIMAX = "config_json_minimax_m2_dims_transformers_5.19.0.json"
RECIPES = REPO / "recipes"


def config(name):
    return _checkpoint.parse((FIXTURES / name).read_bytes())


def recipe_model(name):
    return yaml.safe_load((RECIPES / ("%s.yml" % name)).read_text())["model"]


def test_the_served_tiny_model():
    """The simulation's model, config.json copied out of the engine image: the facts
    inventory/simulated gives by hand are the checkpoint's."""
    found = _checkpoint.facts(config(TINY))
    assert found == {
        "architecture": "qwen2", "layers": 2, "attention_heads": 8, "kv_heads": 2, "head_dim": 32, "kv_layers": 2,
        "hidden_size": 256, "context_length": 2048, "moe": False, "shared_experts": False, "hybrid_gdn": False,
        "vision": False, "linear_num_value_heads": None, "quantization": "none", "quantization_said": "unquantized float32",
        "dtype_bytes": 4}
    sim = yaml.safe_load((REPO / "inventory/simulated/group_vars/sparkops_nodes/sim.yml").read_text())
    model = dict(sim["sparkops_recipe_overrides"]["model"], linear_num_value_heads=None)
    # the simulation serves it in bf16 (--dtype): the same family as the float32 checkpoint
    assert _checkpoint.contradictions(model, found) == []


@pytest.mark.parametrize("fixture, recipe", [(QWEN35, "qwen397b"), (QWEN3VL, "qwen3-vl-235b"), (MINIMAX, "minimax-m27")])
def test_the_shipped_recipes_agree_with_their_architectures_config(fixture, recipe):
    found = _checkpoint.facts(config(fixture))
    assert _checkpoint.contradictions(recipe_model(recipe), found) == []


def test_qwen35_nested_text_config_and_hybrid_layers():
    found = _checkpoint.facts(config(QWEN35))
    assert (found["architecture"], found["layers"], found["kv_layers"], found["hybrid_gdn"], found["vision"]) == (
        "qwen3_5_moe", 60, 15, True, True)
    assert (found["attention_heads"], found["kv_heads"], found["head_dim"], found["linear_num_value_heads"]) == (
        32, 2, 256, 64)
    assert found["moe"] and found["shared_experts"] and found["quantization"] == "fp8"


def test_quantization_configs():
    q = lambda qc: _checkpoint.facts({"model_type": "x", "quantization_config": qc})["quantization"]  # noqa: E731
    assert q({"quant_method": "awq", "bits": 4}) == "awq"
    assert q({"quant_method": "gptq", "bits": 4}) == "gptq"
    assert q({"quant_method": "auto-round", "bits": 4}) == "autoround"
    assert q({"quant_method": "modelopt", "quant_algo": "NVFP4"}) == "nvfp4"
    assert q({"quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized"}) == "nvfp4"
    assert q({"quant_method": "compressed-tensors", "format": "float-quantized"}) == "fp8"
    assert q({"quant_method": "compressed-tensors", "format": "pack-quantized",
              "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int"}}}}) == "int4"
    assert q({"quant_method": "bitsandbytes"}) is None  # unknown: not judged
    # AutoRound's int4 in GPTQ's layout is not a contradiction of a recipe that says autoround
    assert _checkpoint.contradictions({"quantization": "autoround"}, {"quantization": "gptq"}) == []
    assert _checkpoint.contradictions({"quantization": "fp8"}, {"quantization": "bf16", "quantization_said": "x"})


@pytest.mark.parametrize("raw, words", [
    (b"", "not JSON"), (b"\xff\xfe{", "not JSON"), (b"[1, 2]", "a JSON list, not an object"), (b"{\"a\": ", "not JSON")])
def test_broken_config_is_an_error_not_a_crash(raw, words):
    with pytest.raises(_checkpoint.CheckpointError) as err:
        _checkpoint.parse(raw)
    assert words in str(err.value)


def test_odd_values_are_unknown_not_guessed():
    found = _checkpoint.facts({"model_type": 7, "num_attention_heads": "32", "num_hidden_layers": True,
                               "layer_types": "full", "max_position_embeddings": -1})
    assert found["architecture"] is None and found["attention_heads"] is None and found["layers"] is None
    assert found["context_length"] is None and found["head_dim"] is None


def test_read_follows_a_hub_snapshot_link_and_refuses_what_is_no_file(tmp_path):
    blobs, snap = tmp_path / "blobs", tmp_path / "snapshots" / "abc"
    blobs.mkdir()
    snap.mkdir(parents=True)
    (blobs / "f00d").write_bytes((FIXTURES / TINY).read_bytes())
    (snap / "config.json").symlink_to("../../blobs/f00d")
    assert _checkpoint.read(str(snap))[0]["model_type"] == "qwen2"
    assert "has no config.json" in _checkpoint.read(str(tmp_path))[1]
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(str(fifo / "config.json"))
    assert "not a regular file" in _checkpoint.read(str(fifo))[1]  # and it did not block
    big = tmp_path / "big"
    big.mkdir()
    (big / "config.json").write_bytes(b" " * 2048)
    assert "more than a model configuration" in _checkpoint.read(str(big), limit=1024)[1]
    (big / "config.json").write_bytes(b"{not json")
    assert "not JSON" in _checkpoint.read(str(big))[1]


def test_complete_fills_only_what_the_recipe_omits():
    model = {"id": "org/m", "architecture": "qwen3_5_moe", "attention_heads": 32}
    done = _checkpoint.complete(model, _checkpoint.facts(config(QWEN35)))
    assert done["kv_cache"] == {"layers": 15, "kv_heads": 2, "head_dim": 256}
    assert done["context_length"] == 262144 and done["linear_num_value_heads"] == 64
    assert model == {"id": "org/m", "architecture": "qwen3_5_moe", "attention_heads": 32}  # a new mapping


# --- what node_facts keeps for the preflight -------------------------------------------------

RAILS = [{"name": "rail1", "netdev": "enp1s0f1np1", "rdma_device": "rocep1s0f1"},
         {"name": "rail2", "netdev": "enP2p1s0f1np1", "rdma_device": "roceP2p1s0f1"}]


def test_preflight_view():
    rdma = {"ports": [{"device": "rocep1s0f1", "netdev": "enp1s0f1np1", "up": True, "mtu": 9000},
                      {"device": "roceP2p1s0f1", "netdev": "enP2p1s0f1np0", "up": True, "mtu": 1500}],
            "gloo_socket_ifname": "enp1s0f1np1"}
    view = _nodefacts.preflight_view(RAILS, rdma, {"driver_version": "580.95.05"},
                                     {"mem_available": 100, "reboot_required": False, "reason": None},
                                     ["runc"], None, {"name": "spark", "addresses": ["127.0.1.1"]})
    # rail2's device is up on another netdev than the rail's: down (KF-13), and no MTU read for it
    assert view["rails_up"] == {"rail1": True, "rail2": False} and view["rail_mtu"] == {"rail1": 9000}
    assert view["hostname_loopback"] == "127.0.1.1" and view["docker_gpus"] is False
    assert view["driver_version"] == "580.95.05" and view["checkpoint"] is None
    view = _nodefacts.preflight_view(RAILS, {"ports": []}, {}, {}, ["nvidia", "runc"], None, None)
    assert view["rails_up"] == {"rail1": False, "rail2": False} and view["docker_gpus"] is True
    assert view["hostname_loopback"] is None


# --- the preflight judging the model served ---------------------------------------------------

def inventory(overrides, model_path="/srv/models/m"):
    hostvars = {}
    for i in range(4):
        hostvars["spark-%d" % i] = {
            "inventory_hostname": "spark-%d" % i, "ansible_host": "10.0.0.%d" % (10 + i), "sparkops_node_index": i,
            "sparkops_rails": [{"name": "rail1", "netdev": "enp1s0f1np1", "rdma_device": "rocep1s0f1",
                                "subnet": "192.168.100.0/24"},
                               {"name": "rail2", "netdev": "enP2p1s0f1np1", "rdma_device": "roceP2p1s0f1",
                                "subnet": "192.168.101.0/24"}],
            "sparkops_recipe": "qwen397b", "sparkops_recipe_overrides": overrides, "sparkops_model_path": model_path}
    return hostvars


def facts(checkpoint_config):
    node = {"driver_version": "580.95.05", "rails_up": {"rail1": True, "rail2": True},
            "rail_mtu": {"rail1": 9000, "rail2": 9000}, "mem_available": 120 * 2 ** 30, "docker_gpus": True}
    out = {"spark-%d" % i: dict(node) for i in range(4)}
    out["spark-0"]["checkpoint"] = {"path": "/srv/models/m/config.json", "note": None,
                                    "facts": _checkpoint.facts(checkpoint_config)}
    return out


def judge(overrides, checkpoint_config, stage="dynamic", model_path="/srv/models/m"):
    hostvars = inventory(overrides, model_path)
    return _preflight.judge(hostvars["spark-0"], hostvars, list(hostvars), stage=stage, facts=facts(checkpoint_config))


def test_the_checkpoint_served_agrees_with_the_recipe():
    out = judge({}, config(QWEN35))
    assert not out.get("failed"), out.get("msg")
    assert out["plan"]["checkpoint"]["facts"]["kv_layers"] == 15


def test_a_contradicting_fact_is_refused_naming_both_values():
    wrong = config(QWEN35)
    wrong["text_config"]["num_attention_heads"] = 40
    out = judge({}, wrong)
    hit = [r for r in out["refusals"] if r["rule"] == "PLAN-13"]
    assert hit and "model.attention_heads is 32 in the recipe, 40 in /srv/models/m/config.json" in hit[0]["reason"]
    assert "sparkops_accept" not in out["msg"]  # a hard row


def test_a_swapped_variant_needs_only_its_size_and_is_judged_by_its_config():
    """The BF16 original in place of the FP8 recipe's model: the override gives the id and
    the size; the rest is the base recipe's, which the checkpoint confirms or refutes."""
    bf16 = config(QWEN35)
    del bf16["quantization_config"]
    bf16["text_config"]["dtype"] = "bfloat16"
    swap = {"model": {"id": "Qwen/Qwen3.5-397B-A17B", "size_gb": 794, "quantization": "bf16"}}
    static = judge(swap, bf16, stage="static")
    assert not [r for r in static["refusals"] if r["rule"] == "PLAN-11"], static.get("msg")
    out = judge(swap, bf16)
    assert not [r for r in out["refusals"] if r["rule"] == "PLAN-13"], out.get("msg")
    # the same override left at fp8: the checkpoint says otherwise
    out = judge(dict(swap, model=dict(swap["model"], quantization="fp8")), bf16)
    assert [r for r in out["refusals"] if r["rule"] == "PLAN-13" and r["option"] == "model.quantization"]
    # without local weights nothing can confirm the inherited facts: they are asked for
    static = judge({"model": {"id": "Qwen/Qwen3.5-397B-A17B", "size_gb": 794}}, bf16, stage="static", model_path="")
    hit = [r for r in static["refusals"] if r["rule"] == "PLAN-11"]
    assert hit and "model.architecture, model.quantization" in hit[0]["reason"]


def test_facts_the_recipe_omits_come_from_the_checkpoint_and_are_judged():
    """A recipe without heads: PLAN-9 (TP divides the heads) cannot be judged before the
    weights are read; with config.json it is."""
    model = {"attention_heads": None, "kv_cache": None}
    overrides = {"model": model, "parallelism": {"tensor": 4}}
    odd = config(QWEN35)
    odd["text_config"]["num_attention_heads"] = 30
    assert not [r for r in judge(overrides, odd, stage="static")["refusals"] if r["rule"] == "PLAN-9"]
    hit = [r for r in judge(overrides, odd)["refusals"] if r["rule"] == "PLAN-9"]
    assert hit and "30" in hit[0]["reason"]


def test_traits_follow_the_architecture():
    r = yaml.safe_load((RECIPES / "qwen397b.yml").read_text())
    for trait in _recipe.TRAITS:
        del r["model"][trait]
    done = _recipe.validate(copy.deepcopy(r), source="qwen397b.yml")
    assert (done["model"]["moe"], done["model"]["hybrid_gdn"], done["model"]["vision"]) == (True, True, True)
    # a trait given against the architecture is refused (static, PLAN-13)
    out = judge({"model": {"hybrid_gdn": False}}, config(QWEN35), stage="static")
    hit = [r for r in out["refusals"] if r["rule"] == "PLAN-13"]
    assert hit and "model.hybrid_gdn is false in the recipe, but qwen3_5_moe is a hybrid" in hit[0]["reason"]


def test_an_unreadable_checkpoint_is_noted_not_judged():
    hostvars = inventory({})
    node_facts = facts(config(QWEN35))
    node_facts["spark-0"]["checkpoint"] = {"path": "/srv/models/m/config.json", "facts": None,
                                           "note": "/srv/models/m/config.json: not JSON"}
    out = _preflight.judge(hostvars["spark-0"], hostvars, list(hostvars), stage="dynamic", facts=node_facts)
    assert not out.get("failed") and out["plan"]["checkpoint"]["note"].endswith("not JSON")
    assert json.dumps(out["plan"]["checkpoint"])
