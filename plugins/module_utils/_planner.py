# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight: refuse known-bad plans from the recipe, the inventory and node facts.

Each rule names a row of recipes/known_failures.yml (or a plan-consistency check) and
returns a refusal with the option, the reason, the fix and the source. Pure Python.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.sparkops.cluster.plugins.module_utils._fabric import DEFAULT_MTU, FabricError, rail_plan
from ansible_collections.sparkops.cluster.plugins.module_utils._recipe import arg_name, parse_version

GIB = 1024 ** 3
INT4_MARLIN = ("awq", "gptq", "autoround", "int4")
MARLIN_MIN_THREAD_N = 64
PER_NODE_ENV = ("NCCL_IB_HCA", "NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "TP_SOCKET_IFNAME",
                "UCX_NET_DEVICES", "VLLM_HOST_IP", "NCCL_IB_GID_INDEX")


class Refusal(dict):
    """One refused point of a plan: rule, option, reason, fix, source."""

    def __str__(self):
        return "[%s] %s: %s. Fix: %s (source: %s)" % (
            self["rule"], self["option"], self["reason"], self["fix"], self["source"])


def _refuse(rule, option, reason, fix, source):
    return Refusal(rule=rule, option=option, reason=reason, fix=fix, source=source)


def _args(recipe):
    return {arg_name(a): (a.split("=", 1)[1] if "=" in a else True) for a in recipe["serving"]["args"]}


def memory_budget(recipe, hw):
    """Per-GPU memory: weights share, overhead, minimum KV cache, against the budget (GiB)."""
    par = recipe["parallelism"]
    shards = par["tensor"] * par["pipeline"]
    weights = recipe["model"]["size_gb"] * 1e9 / shards / GIB
    need = weights + hw["overhead_gib"] + recipe["serving"]["min_kv_cache_gib"]
    budget = hw["memory_gib_per_gpu"] * recipe["serving"]["gpu_memory_utilization"]
    return {"weights_gib": round(weights, 2), "overhead_gib": hw["overhead_gib"],
            "min_kv_cache_gib": recipe["serving"]["min_kv_cache_gib"], "need_gib": round(need, 2),
            "budget_gib": round(budget, 2), "kv_cache_gib": round(budget - weights - hw["overhead_gib"], 2),
            "fits": need <= budget}


def check_recipe(recipe, hw):
    """Static rules on the recipe alone (with its hardware profile)."""
    out = []
    model, par, eng, srv = recipe["model"], recipe["parallelism"], recipe["engine"], recipe["serving"]
    args, env = _args(recipe), srv["env"]
    gpus = recipe["nodes"] * hw["gpus_per_node"]
    tp, pp = par["tensor"], par["pipeline"]
    dp = int(args.get("--data-parallel-size", 1)) if args.get("--data-parallel-size", 1) is not True else 1

    for bad in recipe.get("known_bad") or []:
        if bad["option"] in recipe["serving"]["args"] or arg_name(bad["option"]) in args and "=" not in bad["option"]:
            out.append(_refuse("recipe", bad["option"], bad["reason"], "remove %s" % bad["option"], bad["source"]))

    if tp * pp * dp != gpus:
        out.append(_refuse("plan", "parallelism", "tensor %d x pipeline %d x data %d = %d GPUs, but %d node(s) x %d GPU(s) = %d"
                           % (tp, pp, dp, tp * pp * dp, recipe["nodes"], hw["gpus_per_node"], gpus),
                           "make TP x PP x DP equal the GPUs of the inventory (nodes x gpus_per_node)", "vLLM distributed serving"))
    for flag in ("--tensor-parallel-size", "--pipeline-parallel-size", "--distributed-executor-backend"):
        if flag in args:
            out.append(_refuse("plan", flag, "set from the recipe's parallelism/engine sections, not serving.args",
                               "remove %s from serving.args" % flag, "sparkops recipe schema"))

    mem = memory_budget(recipe, hw)
    if not mem["fits"]:
        out.append(_refuse("KF#100", "parallelism.tensor",
                           "%.1f GiB of weights per GPU + %.1f overhead + %.1f KV cache = %.1f GiB does not fit %.1f GiB "
                           "(%g GiB x gpu_memory_utilization %.2f): the engine would be killed for memory (exit 137)"
                           % (mem["weights_gib"], mem["overhead_gib"], mem["min_kv_cache_gib"], mem["need_gib"],
                              mem["budget_gib"], hw["memory_gib_per_gpu"], srv["gpu_memory_utilization"]),
                           "shard over more nodes (TP x PP), use a smaller quantization, or shorten the context",
                           "seed 000 (TP=2: 226 GB on 2 Sparks, exit 137); seed 004 (FP8 M2.7 on 2 Sparks)"))

    if hw["unified_memory"] and srv["gpu_memory_utilization"] > hw["max_gpu_memory_utilization"]:
        out.append(_refuse("KF#25", "serving.gpu_memory_utilization",
                           "%.2f is above %.2f on unified memory: the OS, page cache and RoCE buffers share it"
                           % (srv["gpu_memory_utilization"], hw["max_gpu_memory_utilization"]),
                           "set gpu_memory_utilization to %.2f or less" % hw["max_gpu_memory_utilization"],
                           "vllm-project/recipes PR#632; seed 002"))

    ep = par["expert_parallel"] or "--enable-expert-parallel" in args
    if model["hybrid_gdn"] and ep:
        out.append(_refuse("KF#1", "--enable-expert-parallel",
                           "expert parallel deadlocks on hybrid GDN/Mamba models (%s) during graph capture or the profile run"
                           % model["architecture"],
                           "drop expert parallel (and data parallel EP); use tensor or pipeline parallel",
                           "vllm#41862 'EP Deadlock with Hybrid GDN/Mamba Architecture' (seed 001)"))
    if ep and not model["moe"]:
        out.append(_refuse("plan", "--enable-expert-parallel", "the model has no experts", "remove it", "vLLM docs"))

    try:
        have, need = parse_version(eng["version"]), parse_version(eng["min_version"])
    except ValueError as exc:
        out.append(_refuse("recipe", "engine.version", str(exc), "write versions as 0.19.1 or 0.19.1rc1", "recipe schema"))
    else:
        if have < need:
            out.append(_refuse("KF#102", "engine.version",
                               "vLLM %s is older than %s, the first to run %s" % (eng["version"], eng["min_version"], model["architecture"]),
                               "use an engine image with vLLM >= %s" % eng["min_version"],
                               "seed 000 (gdn_linear_attn.py missing before 0.18.2)"))
        if (0, 17, 0, -1, 0) <= have < (0, 17, 1, -1, 0) and model["size_gb"] > 150:
            out.append(_refuse("KF#3", "engine.version",
                               "vLLM 0.17.0 pre-releases hang mid-checkpoint loading large models on Sparks",
                               "pin another engine build", "eugr/spark-vllm-docker#82"))

    heads = model.get("linear_num_value_heads")
    if (model["hybrid_gdn"] and model["quantization"] in INT4_MARLIN and heads
            and "vllm-pr-36329" not in (eng.get("fixes") or [])):
        out_size = 2 * heads // tp
        if out_size < MARLIN_MIN_THREAD_N or out_size % MARLIN_MIN_THREAD_N:
            out.append(_refuse("KF#2", "parallelism.tensor",
                               "Marlin int4 needs in_proj_ba output_size_per_partition (2 x %d / TP %d = %d) divisible by "
                               "min_thread_n %d" % (heads, tp, out_size, MARLIN_MIN_THREAD_N),
                               "use an engine with vLLM PR#36329 (add vllm-pr-36329 to engine.fixes) or a lower TP",
                               "vllm#35924, PR#36329; seed 000 attempts 1-2"))

    if (recipe["nodes"] == 2 and tp == 2 and model["quantization"] == "autoround" and "--enable-prefix-caching" in args
            and eng["version"].startswith("0.17.2")):
        out.append(_refuse("KF#4", "--enable-prefix-caching", "the API never binds after a full load with this build",
                           "use --no-enable-prefix-caching", "eugr/spark-vllm-docker#114"))

    if hw["unified_memory"] and hw["compute_capability"] == "12.1":
        for key in ("VLLM_USE_DEEP_GEMM", "VLLM_MOE_USE_DEEP_GEMM"):
            if str(env.get(key, "0")) not in ("0", "false", "False"):
                out.append(_refuse("KF#22", "serving.env.%s" % key, "DeepGEMM has no sm_121 kernels (CUDA_ERROR_INVALID_IMAGE)",
                                   "remove %s (the gb10 profile sets it to 0)" % key, "vllm#54125"))
        if str(env.get("NCCL_NET_GDR_LEVEL", "LOC")) != "LOC" or str(env.get("NCCL_DMABUF_ENABLE", "0")) != "0":
            out.append(_refuse("KF#12", "serving.env.NCCL_NET_GDR_LEVEL", "GPUDirect RDMA and dma-buf are not supported on GB10; "
                               "forcing them can hang init_process_group", "leave NCCL_NET_GDR_LEVEL=LOC and NCCL_DMABUF_ENABLE=0",
                               "NVIDIA forum t/dgx-spark-gpudirect-rdma/348787"))
        if model["vision"] and not eng.get("disable_cudnn"):
            out.append(_refuse("KF#28", "engine.disable_cudnn", "vision encoders hit cuDNN Conv3d without sm_121 kernels",
                               "set engine.disable_cudnn: true (or an image with cuDNN >= 9.15)", "sglang PR#14119; seed 003"))
        if (model["moe"] and recipe["nodes"] == 2 and tp == 2
                and str(env.get("VLLM_DISABLE_SHARED_EXPERTS_STREAM", "0")) != "1"):
            out.append(_refuse("KF#31", "serving.env.VLLM_DISABLE_SHARED_EXPERTS_STREAM",
                               "two concurrent requests deadlock a 2x GB10 TP=2 MoE pair on the shared-experts stream",
                               "set VLLM_DISABLE_SHARED_EXPERTS_STREAM: '1'", "MiaAI-Lab DeepSeek-v4.1-Flash#22"))
    if eng["executor"] == "ray" and hw["unified_memory"] and str(env.get("RAY_memory_monitor_refresh_ms", "0")) != "0":
        out.append(_refuse("KF#21", "serving.env.RAY_memory_monitor_refresh_ms",
                           "Ray's memory monitor counts unified memory and page cache and kills the load at 95%",
                           "leave RAY_memory_monitor_refresh_ms at 0", "MiaAI-Lab GLM-5.3 PR#2; ray#35989"))

    if "NCCL_IB_GID_INDEX" in env:
        out.append(_refuse("KF#17", "serving.env.NCCL_IB_GID_INDEX",
                           "a pinned (or empty, read as 0) GID index breaks after GID table drift",
                           "remove NCCL_IB_GID_INDEX: NCCL >= 2.21 picks the RoCE v2 GID itself", "nccl#1333"))
    for key in PER_NODE_ENV:
        if key in env and key != "NCCL_IB_GID_INDEX":
            out.append(_refuse("KF#20", "serving.env.%s" % key, "a per-node value set once for all nodes",
                               "remove it: the ray_cluster role derives it per node from facts", "vllm PR#14099; seed 002"))
    if "SGLANG_DISABLE_CUDA_GRAPH" in env:
        out.append(_refuse("KF#6", "serving.env.SGLANG_DISABLE_CUDA_GRAPH", "not an environment variable of any engine: it has no effect",
                           "use --disable-cuda-graph (SGLang) or --enforce-eager (vLLM)", "sglang environ.py; seed 004"))
    if args.get("--mm-encoder-tp-mode") == "data" and recipe["nodes"] > 1:
        out.append(_refuse("seed-003", "--mm-encoder-tp-mode=data", "hangs during multi-node encoder profiling",
                           "leave --mm-encoder-tp-mode unset", "seed 003"))
    if args.get("--host") == "0.0.0.0" or "--api-key" in args:
        out.append(_refuse("security", "--host/--api-key", "the bind address and the API key come from the vllm_container role "
                           "(the key from a no_log variable, the address loopback unless asked)",
                           "remove them from serving.args; set vllm_container_host / vllm_container_api_key", "sparkops security defaults"))
    return out


def recipe_warnings(recipe, hw):
    """Points worth saying that do not refuse the plan."""
    out = []
    env = recipe["serving"]["env"]
    if "VLLM_ATTENTION_BACKEND" in env:
        out.append("serving.env.VLLM_ATTENTION_BACKEND is deprecated in newer vLLM: prefer --attention-backend=%s (KF#29)"
                   % env["VLLM_ATTENTION_BACKEND"])
    if hw["unified_memory"] and recipe["serving"]["max_model_len"] > 32768 and recipe["nodes"] <= 2:
        out.append("max_model_len %d on 2 unified-memory nodes: long contexts triggered driver OOM (seed 003); validate before use"
                   % recipe["serving"]["max_model_len"])
    return out


def check_inventory(nodes, rails, mtu):
    """Rails: addresses unique, inside their subnet; one MTU everywhere (rows 13, 18).

    nodes: [{name, rails: {rail_name: {address, mtu}}}]; rails: [{name, subnet}].
    """
    out = []
    for rail in rails:
        try:
            net = ipaddress.ip_network(rail["subnet"], strict=True)
        except ValueError as exc:
            out.append(_refuse("inventory", "sparkops_rails[%s].subnet" % rail["name"], str(exc),
                               "give the rail subnet as a network, e.g. 192.168.100.0/24", "inventory"))
            continue
        seen = {}
        for node in nodes:
            entry = node["rails"].get(rail["name"])
            if entry is None:
                out.append(_refuse("inventory", "%s: rail %s" % (node["name"], rail["name"]), "the node has no address on this rail",
                                   "define the rail for every node", "inventory"))
                continue
            try:
                addr = ipaddress.ip_address(entry["address"])
            except ValueError as exc:
                out.append(_refuse("inventory", "%s: %s address" % (node["name"], rail["name"]), str(exc),
                                   "use an IPv4 address inside %s" % net, "inventory"))
                continue
            if addr not in net or addr in (net.network_address, net.broadcast_address):
                out.append(_refuse("inventory", "%s: %s address %s" % (node["name"], rail["name"], addr),
                                   "not a host address of the rail subnet %s" % net,
                                   "pick an address inside %s (or fix sparkops_node_index / the offset)" % net, "inventory"))
            if str(addr) in seen:
                out.append(_refuse("inventory", "%s: %s address %s" % (node["name"], rail["name"], addr),
                                   "already used by %s" % seen[str(addr)], "give every node its own rail address "
                                   "(unique sparkops_node_index)", "inventory"))
            seen[str(addr)] = node["name"]
    mtus = {}
    for node in nodes:
        mtus.setdefault(node.get("mtu", mtu), []).append(node["name"])
    if len(mtus) > 1:
        out.append(_refuse("KF#18", "sparkops_rail_mtu", "MTU differs across nodes: %s" % "; ".join(
            "%s on %s" % (m, ", ".join(h)) for m, h in sorted(mtus.items(), key=lambda x: str(x[0]))),
            "use one MTU (9000) on every node", "tonyd2wild PR#40 (IBV_WC_RETRY_EXC_ERR)"))
    return out


def check_rails(hosts, hostvars, mtu=DEFAULT_MTU):
    """The rail plan of every host, and every refusal of it: variables that do not give an
    address or an MTU (FabricError), then check_inventory. Returns (nodes, refusals)."""
    nodes, out = [], []
    for host in hosts:
        try:
            rails = rail_plan(host, hostvars[host])
            nodes.append({"name": host, "rails": rails, "mtu": rails[0]["mtu"]})
        except FabricError as exc:
            out.append(_refuse("inventory", host, str(exc), "fix the rail variables of %s" % host, "inventory"))
    if nodes:
        out += check_inventory([{"name": n["name"], "mtu": n["mtu"], "rails": {r["name"]: r for r in n["rails"]}}
                                for n in nodes],
                               [{"name": r["name"], "subnet": r["subnet"]} for r in nodes[0]["rails"]], mtu)
    return nodes, out


def check_facts(facts, recipe, hw):
    """Dynamic rules on gathered facts.

    facts: {host: {driver_version, rails_up: {rail: bool}, rail_mtu: {rail: int},
    mem_available, reboot_required, reboot_reason, hostname_loopback, model_bytes}}.
    """
    out = []
    drivers = {}
    for host, f in sorted(facts.items()):
        if f.get("driver_version"):
            drivers.setdefault(f["driver_version"], []).append(host)
    if len(drivers) > 1:
        out.append(_refuse("seed-000", "driver version", "nodes run different NVIDIA drivers: %s" % "; ".join(
            "%s on %s" % (v, ", ".join(h)) for v, h in sorted(drivers.items())),
            "install the same driver on every node", "seed 000 (580.95.05 vs 580.142)"))
    for host, f in sorted(facts.items()):
        for rail, up in sorted((f.get("rails_up") or {}).items()):
            if not up:
                out.append(_refuse("KF#13", "%s: rail %s" % (host, rail), "the rail is down",
                                   "check the cable (same port on both ends) and rerun the netplan role", "seed 003"))
        for rail, m in sorted((f.get("rail_mtu") or {}).items()):
            if m != 9000:
                out.append(_refuse("KF#18", "%s: rail %s MTU" % (host, rail), "MTU is %s, not 9000" % m,
                                   "rerun the netplan role", "tonyd2wild PR#40"))
        if f.get("reboot_required"):
            out.append(_refuse("KF#9", "%s: memory" % host, f.get("reboot_reason") or "memory held by no process",
                               "reboot %s before the launch (playbooks/teardown.yml reboot=true)" % host, "seed 004"))
        if f.get("hostname_loopback") and not f.get("gloo_socket_ifname"):
            out.append(_refuse("KF#19", "%s: hostname" % host, "the hostname resolves to %s and no GLOO_SOCKET_IFNAME is derived"
                               % f["hostname_loopback"], "bring the rails up so the ray_cluster role can derive it", "seed 000"))
    avail = {h: f["mem_available"] for h, f in facts.items() if f.get("mem_available")}
    if avail:
        poorest = min(avail, key=avail.get)
        richest = max(avail, key=avail.get)
        usable = avail[poorest] / (hw["memory_gib_per_gpu"] * GIB * hw["gpus_per_node"])
        if hw["unified_memory"] and recipe["serving"]["gpu_memory_utilization"] > usable:
            out.append(_refuse("KF#10", "serving.gpu_memory_utilization",
                               "%s has %.1f GiB available (%.1f GiB less than %s), %.2f of its memory, below the planned %.2f"
                               % (poorest, avail[poorest] / GIB, (avail[richest] - avail[poorest]) / GIB, richest, usable,
                                  recipe["serving"]["gpu_memory_utilization"]),
                               "free memory on %s (memory_reclaim, stop other services) or lower gpu_memory_utilization to %.2f"
                               % (poorest, max(0.05, usable - 0.02)), "seed 004 (7 GB gap, rank timeout)"))
    sizes = {h: f.get("model_bytes") for h, f in facts.items() if "model_bytes" in f}
    if sizes:
        missing = sorted(h for h, s in sizes.items() if not s)
        if missing:
            out.append(_refuse("model", "model on %s" % ", ".join(missing), "the weights are missing",
                               "run the model sync step (copies with symlinks resolved)", "spark-vllm-docker PR#408"))
        elif len(set(sizes.values())) > 1:
            out.append(_refuse("model", "model size", "the weights differ across nodes: %s" % ", ".join(
                "%s %d B" % (h, s) for h, s in sorted(sizes.items())), "re-sync the weights from the head",
                "spark-vllm-docker PR#408 (a copy that kept symlinks gave workers zero weights)"))
    return out


def engine_command(recipe, host="127.0.0.1", port=8000, node_rank=0, head_address=None, model_path=None,
                   head_only=False):
    """The exact `vllm serve` argv for one node (followers of the mp executor get --headless).

    head_only: one engine on the head with TP=PP=1 and vLLM's default executor; the
    simulated cluster needs it (the CPU build refuses the Ray executor). Followers then
    run nothing (None).
    """
    par, eng, srv = recipe["parallelism"], recipe["engine"], recipe["serving"]
    if head_only and node_rank > 0:
        return None
    tp, pp = (1, 1) if head_only else (par["tensor"], par["pipeline"])
    argv = ["vllm", "serve", model_path or recipe["model"]["id"], "--served-model-name", srv["served_model_name"],
            "--tensor-parallel-size", str(tp), "--pipeline-parallel-size", str(pp),
            "--gpu-memory-utilization", "%g" % srv["gpu_memory_utilization"], "--max-model-len", str(srv["max_model_len"])]
    if head_only:
        pass
    elif eng["executor"] == "ray":
        if node_rank > 0:
            return None
        argv += ["--distributed-executor-backend", "ray"]
    elif recipe["nodes"] > 1:
        argv += ["--nnodes", str(recipe["nodes"]), "--node-rank", str(node_rank), "--master-addr", head_address]
        if node_rank > 0:
            argv.append("--headless")
    argv += ["--host", str(host), "--port", str(port)]
    return argv + list(srv["args"])


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
