# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan: what every node runs, derived once from the recipe, its hardware profile,
the inventory's rails and the collection settings. Pure Python.

The preflight builds it; the roles (engine_container, vllm_serve, model_sync), the
fabric check and the load watch read it. Per node: rank, rails, the engine container's
environment, the engine command.
"""

from __future__ import annotations

import hashlib
import json

from ansible_collections.sparkops.cluster.plugins.module_utils import _bench
from ansible_collections.sparkops.cluster.plugins.module_utils._fabric import rail_env
from ansible_collections.sparkops.cluster.plugins.module_utils._units import GIB
from ansible_collections.sparkops.cluster.plugins.plugin_utils._recipe import args_dict, parse_args, parse_version
from ansible_collections.sparkops.cluster.plugins.plugin_utils._rules import PER_NODE_ENV
from ansible_collections.sparkops.cluster.plugins.plugin_utils._settings import on

VLLM_CONFIG_ROOT = "/etc/vllm"  # vLLM reads ray_non_carry_over_env_vars.json from here
RAY_TOKEN_DIR = "/run/sparkops/ray"  # the token file's directory in the engine container (read only)
RAY_TOKEN_PATH = RAY_TOKEN_DIR + "/auth-token"
PREVIOUS_TAG = "sparkops-previous"  # the engine image a roll replaced, kept on every node


# The repository of the serving images the engine_image role builds on the head
BUILT_REPO = "sparkops/vllm-ray"


def image_build(recipe):
    """What the engine_image role builds on the head from the recipe's engine.build, or None:
    {base, ray, pip, image}, the image tagged by the hash of these inputs (the same recipe
    inputs, the same tag; the role rebuilds under it when the base image's ID moved)."""
    engine = recipe["engine"]
    build = engine.get("build")
    if not build:
        return None
    spec = {"base": engine["image"], "ray": build["ray"], "pip": [str(p) for p in build.get("pip") or []]}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode("utf-8")).hexdigest()[:12]
    return dict(spec, image="%s:%s" % (BUILT_REPO, digest))


def served_image(recipe, rollback=False):
    """The image the engines run: the one built from engine.build, else engine.image; on a
    rollback (sparkops_engine_rollback), the one the last roll replaced."""
    build = image_build(recipe)
    image = build["image"] if build else recipe["engine"]["image"]
    return previous_image(image) if rollback else image


def previous_image(image):
    """The name under which every node keeps the engine image a deploy moved away from:
    the image's repository (registry and port kept, tag or digest dropped) tagged
    sparkops-previous."""
    repo = image.split("@", 1)[0]
    head, _sep, last = repo.rpartition("/")
    last = last.split(":", 1)[0]
    return "%s%s:%s" % (head + "/" if head else "", last, PREVIOUS_TAG)


def user_env(hw, serving_env=None, role_env=None):
    """The environment the user controls, as the engine container gets it: the hardware
    profile's set, then the recipe's serving.env, then the role variables (each a mapping;
    later ones win, as the roles combine them). Values are strings."""
    env = {}
    for layer in (hw.get("env") or {}, serving_env or {}, role_env or {}):
        env.update({str(k): str(v) for k, v in layer.items()})
    return env


def node_env(hw, rails, serving_env=None, ray_address=None, ray_auth=False):
    """The environment of one node's engine container: the hardware profile's set (GB10:
    GPUDirect off, DeepGEMM off, Ray's memory monitor off), the recipe's serving.env, the
    per-node values from its rails (VLLM_HOST_IP, interfaces, devices) and, for the Ray
    executor, RAY_ADDRESS, VLLM_CONFIG_ROOT, RAY_DEDUP_LOGS=0 (unless serving.env sets it:
    Ray folds a line that other nodes print again into "[repeated Nx across cluster]", and
    the load watch reads every rank's lines in the head's log) and with ray_auth Ray's token
    mode and the path of the token file (the token itself is never in the environment).
    Values are strings."""
    env = {k: str(v) for k, v in (hw.get("env") or {}).items()}
    env.update({k: str(v) for k, v in (serving_env or {}).items()})
    if rails:
        env["VLLM_HOST_IP"] = rails[0]["address"]
        env.update(rail_env(rails))
    if ray_address:
        env["RAY_ADDRESS"] = ray_address
        env["VLLM_CONFIG_ROOT"] = VLLM_CONFIG_ROOT
        env.setdefault("RAY_DEDUP_LOGS", "0")
        if ray_auth:
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=RAY_TOKEN_PATH)
    return env


def data_parallel(flags):
    """The data parallel size of the engine flags (args_dict), 1 when unset or unreadable."""
    dp = flags.get("--data-parallel-size", 1)
    try:
        return max(1, int(dp)) if dp is not True and dp is not False else 1
    except (TypeError, ValueError):
        return 1


def kv_cache_need(recipe, flags=None):
    """KV cache one GPU needs for serving.concurrency sequences of max_model_len:
    (bytes per token, GiB), or None when the recipe gives no model.kv_cache.

    2 (K and V) x the layers of this pipeline stage x the KV heads of this rank (vLLM
    replicates them when the tensor parallel size exceeds them) x head_dim x the bytes of
    --kv-cache-dtype (fp8: 1; auto: the model's 16-bit activations, 2). The fixed
    per-sequence state of linear-attention layers (GDN, Mamba) is not counted.
    """
    kv = recipe["model"].get("kv_cache")
    if not kv:
        return None
    flags = args_dict(recipe["serving"]["args"]) if flags is None else flags
    width = 1 if str(flags.get("--kv-cache-dtype", "auto")).lower().startswith("fp8") else 2
    par = recipe["parallelism"]
    heads = max(1, kv["kv_heads"] // par["tensor"])
    layers = -(-kv["layers"] // par["pipeline"])
    per_token = 2 * layers * heads * kv["head_dim"] * width
    tokens = recipe["serving"]["max_model_len"] * recipe["serving"].get("concurrency", 1)
    return per_token, per_token * tokens / GIB


def memory_budget(recipe, hw, flags=None):
    """Per-GPU memory (GiB): the weights' share, the overhead and the KV cache (the larger of
    the recipe's min_kv_cache_gib and what max_model_len x concurrency needs) against
    memory x gpu_memory_utilization."""
    par, srv = recipe["parallelism"], recipe["serving"]
    flags = args_dict(srv["args"]) if flags is None else flags
    shards = par["tensor"] * par["pipeline"]
    if recipe["model"]["moe"] and (par["expert_parallel"] or on(flags.get("--enable-expert-parallel"))):
        # expert parallel spreads the experts over the data parallel ranks too; they are
        # nearly all of a MoE's weights (the replicated attention weights are not counted)
        shards *= data_parallel(flags)
    weights = recipe["model"]["size_gb"] * 1e9 / shards / GIB
    kv = kv_cache_need(recipe, flags)
    if kv and kv[1] > srv["min_kv_cache_gib"]:
        kv_need = kv[1]
        kv_what = "max_model_len %d x %d sequence(s) at %.1f KiB per token" % (
            srv["max_model_len"], srv.get("concurrency", 1), kv[0] / 1024)
    else:
        kv_need, kv_what = srv["min_kv_cache_gib"], "serving.min_kv_cache_gib"
    need = weights + hw["overhead_gib"] + kv_need
    budget = hw["memory_gib_per_gpu"] * srv["gpu_memory_utilization"]
    return {"weights_gib": round(weights, 2), "overhead_gib": hw["overhead_gib"],
            "min_kv_cache_gib": srv["min_kv_cache_gib"], "kv_need_gib": round(kv_need, 2), "kv_what": kv_what,
            "kv_bytes_per_token": kv[0] if kv else None, "need_gib": round(need, 2),
            "budget_gib": round(budget, 2), "kv_cache_gib": round(budget - weights - hw["overhead_gib"], 2),
            "fits": need <= budget}


def recipe_context(recipe, hw, env=None, env_doors=None, base=None, overrides=None, hw_name=None, api_host=None,
                   model_local=False):
    """What the recipe rules read: the recipe, its hardware, its flags as vLLM reads them,
    its environment (env: every door merged, the hardware profile's first; env_doors: the
    door of each key that did not come from serving.env), the parallel sizes, the memory
    budget, the names rows may use, the recipe before overrides (base, overrides), the
    API's bind address (api_host) and whether the weights are local (model_local:
    sparkops_model_path given, so the live preflight reads the checkpoint's config.json)."""
    flags = args_dict(recipe["serving"]["args"])
    if env is None:
        env = user_env(hw, recipe["serving"]["env"])
    dp = data_parallel(flags)
    eng, model = recipe["engine"], recipe["model"]
    return {
        "recipe": recipe, "hw": hw, "hw_name": hw_name, "flags": flags, "env": env, "env_doors": env_doors or {},
        "base": base, "overrides": overrides, "version_text": eng["version"], "api_host": api_host,
        "model_local": model_local,
        "tp": recipe["parallelism"]["tensor"], "pp": recipe["parallelism"]["pipeline"], "dp": dp,
        "ep": recipe["parallelism"]["expert_parallel"] or on(flags.get("--enable-expert-parallel")),
        "version": parse_version(eng["version"]), "memory": memory_budget(recipe, hw, flags),
        "names": {"architecture": model["architecture"], "model": model["id"], "version": eng["version"],
                  "min_version": eng["min_version"], "nodes": recipe["nodes"]},
    }


def engine_command(recipe, host="127.0.0.1", port=8000, node_rank=0, head_address=None, model_path=None):
    """The exact `vllm serve` argv for one node, or None for a node that runs none (a Ray
    worker). Followers of the mp executor get --headless."""
    par, eng, srv = recipe["parallelism"], recipe["engine"], recipe["serving"]
    tp, pp = par["tensor"], par["pipeline"]
    argv = ["vllm", "serve", model_path or recipe["model"]["id"], "--served-model-name", srv["served_model_name"],
            "--tensor-parallel-size", str(tp), "--pipeline-parallel-size", str(pp),
            "--gpu-memory-utilization", "%g" % srv["gpu_memory_utilization"], "--max-model-len", str(srv["max_model_len"])]
    if eng["executor"] == "ray":
        if node_rank > 0:
            return None
        argv += ["--distributed-executor-backend", "ray"]
    elif recipe["nodes"] > 1:
        argv += ["--nnodes", str(recipe["nodes"]), "--node-rank", str(node_rank), "--master-addr", head_address]
        if node_rank > 0:
            argv.append("--headless")
    argv += ["%s=%s" % (flag, value) if value is not True else flag for flag, value in parse_args(srv["args"])]
    # the deployment's bind address and port come last: vLLM's parser keeps a flag's last value
    return argv + ["--host", str(host), "--port", str(port)]


def node_address(node):
    """The address a node's engine (Ray, Gloo, vLLM) uses: its first rail's; a single host
    without rails talks to itself on loopback."""
    return node["rails"][0]["address"] if node["rails"] else "127.0.0.1"


def build(recipe, hw, nodes, settings, log_patterns, containers=None):
    """The plan from a valid recipe, its hardware profile, the rail plan of every node in
    rank order ([{name, rails}], the first is the head), the settings (plugin_utils/_settings)
    and the table's log patterns. containers: {node: engine container name}."""
    head = node_address(nodes[0]) if nodes else None
    executor = recipe["engine"]["executor"]
    ray_address = "%s:%d" % (head, settings["ray_port"]) if executor == "ray" and head else None
    model_path = settings["model_path"] or None
    containers = containers or {}

    def command(rank):
        return engine_command(recipe, host=settings["api_host"], port=settings["api_port"], node_rank=rank,
                              head_address=head, model_path=model_path)

    return {
        "recipe": recipe["name"],
        "model": recipe["model"]["id"],
        "model_path": model_path,
        "served_model_name": recipe["serving"]["served_model_name"],
        "hardware": recipe["hardware"],
        "executor": executor,
        # a rollback serves the image the last roll replaced (sparkops_engine_rollback)
        "image": served_image(recipe, settings["engine_rollback"]),
        "image_previous": served_image(recipe, rollback=True),
        # built on the head from engine.image with Ray (role engine_image), or None
        "image_build": image_build(recipe),
        "keep_previous": settings["engine_keep_previous"],
        "rollback": settings["engine_rollback"],
        "memory_per_gpu": memory_budget(recipe, hw),
        "expected_decode_tok_s": (recipe.get("expected") or {}).get("decode_tok_s"),
        "decode_bound": _bench.decode_bound(recipe, hw, recipe["parallelism"]["tensor"]),
        "head": nodes[0]["name"] if nodes else None,
        "head_address": head,
        "gpus_per_node": hw["gpus_per_node"],
        "api": {"host": settings["api_host"], "port": settings["api_port"]},
        "ray": {"address": ray_address, "port": settings["ray_port"], "auth": settings["ray_auth"],
                "token_dir": RAY_TOKEN_DIR,
                # the hardware's `ray start` arguments (KF-42: the object store on unified memory)
                "start_args": [str(a) for a in (hw.get("ray") or {}).get("start_args") or []]} if ray_address else None,
        "nodes": [{
            "name": n["name"],
            "rank": i,
            "container": containers.get(n["name"], settings["engine_container"]),
            "address": node_address(n),
            "rails": [{k: r[k] for k in ("name", "netdev", "rdma_device", "address", "subnet", "mtu")} for r in n["rails"]],
            "env": node_env(hw, n["rails"], recipe["serving"]["env"], ray_address, settings["ray_auth"]),
            "command": command(i),
        } for i, n in enumerate(nodes)],
        "per_node_env_keys": list(PER_NODE_ENV),
        "log_patterns": log_patterns,
        "settings": settings,
    }


def plan_node(plan, host):
    """This host's entry in the plan's nodes, with its rank (its index: 0 is the head).

    Raises ValueError naming the host and the plan's nodes when the host is not in it
    (a play run on other hosts than the plan's would place a node with no rank).
    """
    nodes = plan.get("nodes") if isinstance(plan, dict) else None
    if not isinstance(nodes, list):
        raise ValueError("the plan has no nodes list: pass the preflight's plan (sparkops_plan)")
    for rank, node in enumerate(nodes):
        if node.get("name") == host:
            return dict(node, rank=rank)
    raise ValueError("%s is not a node of the plan (%s): run the play on the plan's hosts, or plan again with this one"
                     % (host, ", ".join(str(n.get("name")) for n in nodes)))
