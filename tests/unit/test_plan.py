"""The plan (plugin_utils/_plan): every node's environment, the engine command, the
settings; the environment derivation table-driven over the hardware kinds."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.sparkops.cluster.plugins.module_utils import _fabric
from ansible_collections.sparkops.cluster.plugins.plugin_utils import _plan, _recipe, _rules, _settings
from conftest import REPO

RECIPES = REPO / "recipes"
HARDWARE = yaml.safe_load((REPO / "data" / "hardware.yml").read_text())
TABLE = _rules.Table(yaml.safe_load((REPO / "data" / "known_failures.yml").read_text()))
SPARK_RAILS = [{"name": "rail1", "netdev": "enp1s0f1np1", "rdma_device": "rocep1s0f1", "subnet": "192.168.100.0/24"},
               {"name": "rail2", "netdev": "enP2p1s0f1np1", "rdma_device": "roceP2p1s0f1", "subnet": "192.168.101.0/24"}]
# a host with one ConnectX-7 port per GPU, as an 8x H200 node (NDR 400G, mlx5 names)
H200_RAILS = [{"name": "rail%d" % i, "netdev": "ibp%ds0" % i, "rdma_device": "mlx5_%d" % i,
               "subnet": "10.%d.0.0/24" % i} for i in range(8)]


def rails(defs, index=0):
    return _fabric.rail_plan("n%d" % index, {"sparkops_rails": defs, "sparkops_node_index": index})


ENV_CASES = [
    # (case, hardware, rail definitions, keys that must be as given, keys that must be absent)
    ("gb10, both halves of port 1", "gb10", SPARK_RAILS,
     {"VLLM_HOST_IP": "192.168.100.10", "NCCL_SOCKET_IFNAME": "=enp1s0f1np1,enP2p1s0f1np1",
      "GLOO_SOCKET_IFNAME": "enp1s0f1np1", "TP_SOCKET_IFNAME": "enp1s0f1np1",
      "NCCL_IB_HCA": "=rocep1s0f1:1,roceP2p1s0f1:1", "UCX_NET_DEVICES": "rocep1s0f1:1,roceP2p1s0f1:1",
      "NCCL_NET_GDR_LEVEL": "LOC", "NCCL_DMABUF_ENABLE": "0", "VLLM_USE_DEEP_GEMM": "0",
      "RAY_memory_monitor_refresh_ms": "0"}, ["NCCL_IB_GID_INDEX"]),
    ("gb10, one rail", "gb10", SPARK_RAILS[:1],
     {"NCCL_SOCKET_IFNAME": "=enp1s0f1np1", "NCCL_IB_HCA": "=rocep1s0f1:1", "GLOO_SOCKET_IFNAME": "enp1s0f1np1",
      "NCCL_NET_GDR_LEVEL": "LOC"}, []),
    ("ConnectX on a host that is no GB10", "h200", SPARK_RAILS,
     {"NCCL_IB_HCA": "=rocep1s0f1:1,roceP2p1s0f1:1", "VLLM_HOST_IP": "192.168.100.10"},
     ["NCCL_NET_GDR_LEVEL", "NCCL_DMABUF_ENABLE", "VLLM_USE_DEEP_GEMM", "RAY_memory_monitor_refresh_ms"]),
    ("8-GPU node, a rail per GPU", "h200", H200_RAILS,
     {"NCCL_IB_HCA": "=" + ",".join("mlx5_%d:1" % i for i in range(8)),
      "NCCL_SOCKET_IFNAME": "=" + ",".join("ibp%ds0" % i for i in range(8)), "GLOO_SOCKET_IFNAME": "ibp0s0",
      "VLLM_HOST_IP": "10.0.0.10"}, ["NCCL_NET_GDR_LEVEL"]),
]


@pytest.mark.parametrize("case, hardware, defs, want, absent", ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_node_env(case, hardware, defs, want, absent):
    env = _plan.node_env(HARDWARE[hardware], rails(defs), {"VLLM_ATTENTION_BACKEND": "TRITON_ATTN"})
    assert {k: env.get(k) for k in want} == want, case
    assert not [k for k in absent if k in env], case
    assert env["VLLM_ATTENTION_BACKEND"] == "TRITON_ATTN" and all(isinstance(v, str) for v in env.values())
    assert "RAY_ADDRESS" not in env


def test_ray_executor_adds_the_address_and_config_root():
    env = _plan.node_env(HARDWARE["gb10"], rails(SPARK_RAILS), {}, ray_address="192.168.100.10:6379")
    assert env["RAY_ADDRESS"] == "192.168.100.10:6379" and env["VLLM_CONFIG_ROOT"] == "/etc/vllm"
    # every rank's lines reach the head's log unfolded (the load watch reads them), unless serving.env says
    assert env["RAY_DEDUP_LOGS"] == "0"
    assert _plan.node_env(HARDWARE["gb10"], rails(SPARK_RAILS), {"RAY_DEDUP_LOGS": "1"},
                          ray_address="192.168.100.10:6379")["RAY_DEDUP_LOGS"] == "1"
    assert "RAY_DEDUP_LOGS" not in _plan.node_env(HARDWARE["gb10"], rails(SPARK_RAILS), {})


def recipe(name, **overrides):
    r = yaml.safe_load((RECIPES / ("%s.yml" % name)).read_text())
    return _recipe.validate(_recipe.merge(r, overrides), source=name, known_rows=set(TABLE.rows))


def four_nodes():
    return [{"name": "spark-%d" % i, "rails": rails(SPARK_RAILS, i)} for i in range(4)]


def test_plan_of_qwen397b_on_four_sparks():
    settings = _settings.read({"sparkops_ray_port": "6380", "sparkops_model_path": "/srv/models/qwen"})
    plan = _plan.build(recipe("qwen397b"), HARDWARE["gb10"], four_nodes(), settings, TABLE.log_patterns(),
                       {"spark-2": "engine-two"})
    assert plan["head"] == "spark-0" and plan["ray"] == {"address": "192.168.100.10:6380", "port": 6380, "auth": True,
                                                         "token_dir": "/run/sparkops/ray",
                                                         "start_args": ["--object-store-memory=4294967296"]}
    assert plan["nodes"][1]["env"]["RAY_prestart_worker_first_driver"] == "0"  # KF-42
    assert [n["rank"] for n in plan["nodes"]] == [0, 1, 2, 3]
    assert [n["container"] for n in plan["nodes"]] == ["sparkops-engine", "sparkops-engine", "engine-two", "sparkops-engine"]
    head, worker = plan["nodes"][0], plan["nodes"][3]
    assert head["command"][:3] == ["vllm", "serve", "/srv/models/qwen"] and worker["command"] is None
    assert worker["env"]["VLLM_HOST_IP"] == "192.168.100.13" and worker["env"]["RAY_ADDRESS"] == "192.168.100.10:6380"
    # Ray's token authentication: the mode and the file, never the token itself
    assert worker["env"]["RAY_AUTH_MODE"] == "token" and worker["env"]["RAY_AUTH_TOKEN_PATH"] == "/run/sparkops/ray/auth-token"
    assert "RAY_AUTH_TOKEN" not in worker["env"]
    off = _plan.build(recipe("qwen397b"), HARDWARE["gb10"], four_nodes(), _settings.read({"sparkops_ray_auth": "false"}),
                      [])
    assert "RAY_AUTH_MODE" not in off["nodes"][1]["env"] and off["ray"]["auth"] is False
    assert head["rails"][1] == {"name": "rail2", "netdev": "enP2p1s0f1np1", "rdma_device": "roceP2p1s0f1",
                                "address": "192.168.101.10", "subnet": "192.168.101.0/24", "mtu": 9000}
    assert plan["model_path"] == "/srv/models/qwen" and plan["settings"]["ray_port"] == 6380
    assert {p["id"] for p in plan["log_patterns"]} >= {"KF-2", "KF-10", "KF-30"}


def test_mp_executor_runs_on_every_node_and_has_no_ray():
    plan = _plan.build(recipe("qwen397b", engine={"executor": "mp"}), HARDWARE["gb10"], four_nodes(),
                       _settings.read({}), [])
    assert plan["ray"] is None and all(n["command"] for n in plan["nodes"])
    assert "--headless" in plan["nodes"][2]["command"] and "RAY_ADDRESS" not in plan["nodes"][2]["env"]


def test_engine_args_are_emitted_as_vllm_reads_them():
    r = recipe("qwen397b", serving={"args": ["--max_num_batched_tokens 4096", "--enforce-eager", "--block-size", "128"]})
    argv = _plan.engine_command(r)
    assert argv[-7:-4] == ["--max-num-batched-tokens=4096", "--enforce-eager", "--block-size=128"]
    # the deployment's bind address and port last: vLLM's parser keeps a flag's last value
    assert argv[-4:] == ["--host", "127.0.0.1", "--port", "8000"]


@pytest.mark.parametrize("variables, words", [
    ({"sparkops_api_port": "eighty"}, "sparkops_api_port must be a whole number, got 'eighty'"),
    ({"sparkops_api_port": 70000}, "sparkops_api_port must be a TCP port (1-65535), got 70000"),
    ({"sparkops_persistent": "maybe"}, "sparkops_persistent must be true or false"),
    ({"sparkops_recipe_overrides": ["a"]}, "sparkops_recipe_overrides must be a mapping"),
])
def test_settings_of_the_wrong_kind_are_named(variables, words):
    with pytest.raises(_settings.SettingError) as err:
        _settings.read(variables)
    assert words in str(err.value)


def test_settings_defaults_and_text_numbers():
    s = _settings.read({"sparkops_api_port": "8001", "sparkops_teardown_reboot": "yes"})
    assert s["api_port"] == 8001 and s["teardown_reboot"] is True and s["api_host"] == "127.0.0.1"
    assert s["reclaim_min_cached_gb"] == 4.0 and s["recipes_dir"] is None


@pytest.mark.parametrize("image, previous", [
    ("vllm/vllm-openai:v0.17.1", "vllm/vllm-openai:sparkops-previous"),
    ("nvcr.io/nvidia/vllm:25.09-py3", "nvcr.io/nvidia/vllm:sparkops-previous"),
    ("localhost:5000/team/vllm", "localhost:5000/team/vllm:sparkops-previous"),
    ("localhost:5000/team/vllm:rc1", "localhost:5000/team/vllm:sparkops-previous"),
    ("vllm/vllm-openai@sha256:" + "a" * 64, "vllm/vllm-openai:sparkops-previous"),
    ("registry:5000/vllm:0.18@sha256:" + "b" * 64, "registry:5000/vllm:sparkops-previous"),
    ("engine", "engine:sparkops-previous"),
])
def test_the_rollback_image_keeps_the_repository(image, previous):
    assert _plan.previous_image(image) == previous


@pytest.mark.parametrize("build", [False, True])
def test_a_rollback_serves_the_previous_image(build):
    rec = recipe("qwen397b") if build else _recipe.merge(recipe("qwen397b"), {"engine": {"build": None}})
    plan = _plan.build(rec, HARDWARE["gb10"], four_nodes(), _settings.read({}), [])
    assert plan["image"] == _plan.served_image(rec) and not plan["rollback"] and plan["keep_previous"]
    back = _plan.build(rec, HARDWARE["gb10"], four_nodes(), _settings.read({"sparkops_engine_rollback": "true"}), [])
    assert back["image"] == back["image_previous"] == _plan.previous_image(plan["image"]) and back["rollback"]
    assert (plan["image_build"] is not None) == build == (back["image"] == "sparkops/vllm-ray:sparkops-previous")


def test_a_recipe_with_engine_build_serves_an_image_named_by_its_inputs():
    """engine.build: the plan serves sparkops/vllm-ray:<hash of base, Ray, pip>, which the
    engine_image role builds on the head; the same inputs give the same tag, any other input
    another."""
    rec = recipe("qwen397b")
    build = _plan.build(rec, HARDWARE["gb10"], four_nodes(), _settings.read({}), [])["image_build"]
    assert build["base"] == rec["engine"]["image"] == "vllm/vllm-openai:nightly" and build["ray"] == "2.60.0"
    assert build["pip"] == [] and build["image"].startswith("sparkops/vllm-ray:") and len(build["image"]) == 30
    assert _plan.image_build(recipe("qwen397b")) == build
    tags = {_plan.image_build(_recipe.merge(rec, {"engine": change}))["image"] for change in (
        {"build": {"ray": "2.61.0"}}, {"build": {"pip": ["nvidia-nccl-cu13==2.30.3"]}}, {"image": "vllm/vllm-openai:v0.19.1"})}
    assert len(tags) == 3 and build["image"] not in tags
    assert _plan.image_build(recipe("qwen397b-h200x8")) is None  # mp on a stock image: nothing to build


@pytest.mark.parametrize("build, words", [
    ({"ray": "2.51.0"}, "engine.build.ray must be an exact Ray release, 2.52.0 or later"),
    ({"ray": ">=2.52"}, "engine.build.ray must be an exact Ray release"),
    ({}, "engine.build.ray is missing"),
    ({"ray": "2.60.0", "pip": ["x==1; rm -rf /"]}, "engine.build.pip[0] must be a pip requirement"),
    ({"ray": "2.60.0", "pip": ["--index-url=http://evil"]}, "engine.build.pip[0] must be a pip requirement"),
    ({"ray": "2.60.0", "pip": ["https://example.com/x.whl"]}, "engine.build.pip[0] must be a pip requirement"),
    ({"ray": "2.60.0", "pipp": []}, "engine.build.pipp is not a recipe field (did you mean engine.build.pip?)"),
])
def test_a_bad_engine_build_is_refused_naming_the_field(build, words):
    with pytest.raises(_recipe.RecipeError) as exc:
        _recipe.validate(dict(recipe("qwen397b"), engine=dict(recipe("qwen397b")["engine"], build=build)))
    assert words in str(exc.value)


def test_good_pip_requirements_pass():
    ok = dict(recipe("qwen397b")["engine"], build={"ray": "2.60.0", "pip": [
        "nvidia-nccl-cu13==2.30.3", "ray[default,cgraph]==2.60.0", "flashinfer-python>=0.5,<0.6", "triton~=3.5"]})
    _recipe.validate(dict(recipe("qwen397b"), engine=ok))
