# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight's rules and the table they answer to. Pure Python.

recipes/known_failures.yml is the one table of what is refused, warned about and
recognised in engine logs. Each rule here is registered under the id of its row and
returns findings: the option concerned and the values the row's reason and fix name.
The row gives the words (reason, fix, sources, severity); the rule only detects.
"""

from __future__ import annotations

import ipaddress
import re
import string

from ansible_collections.sparkops.cluster.plugins.module_utils._recipe import parse_args, parse_version

GIB = 1024 ** 3
INT4_MARLIN = ("awq", "gptq", "autoround", "int4")
MARLIN_MIN_THREAD_N = 64
PER_NODE_ENV = ("NCCL_IB_HCA", "NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "TP_SOCKET_IFNAME",
                "UCX_NET_DEVICES", "VLLM_HOST_IP", "NCCL_IB_GID_INDEX")
SEVERITIES = ("refuse", "warn")
_ROW_KEYS = ("id", "title", "reason", "fix", "sources", "severity")

# (row id, stage, function); stage is recipe, inventory or facts. A row's detect.rule
# names its functions (a row may have one per stage).
RULES = []


def rule(row_id, stage="recipe"):
    """Register a rule under the id of its row in recipes/known_failures.yml."""
    def register(fn):
        RULES.append((row_id, stage, fn))
        return fn
    return register


class TableError(ValueError):
    """recipes/known_failures.yml is malformed; the message names the row and the field."""


class Refusal(dict):
    """One refused (or warned) point of a plan: rule (row id), option, reason, fix, sources, severity."""

    def __str__(self):
        return "[%s] %s: %s. Fix: %s (source: %s)" % (
            self["rule"], self["option"], self["reason"], self["fix"], "; ".join(self["sources"]))


def _fields(text):
    return {field[1] for field in string.Formatter().parse(text) if field[1]}


class Table:
    """The rows of recipes/known_failures.yml, checked, by id."""

    def __init__(self, rows):
        if not isinstance(rows, list) or not rows:
            raise TableError("known_failures.yml must be a non-empty list of rows")
        self.rows = {}
        for i, row in enumerate(rows):
            where = "known_failures.yml row %d" % i
            if not isinstance(row, dict):
                raise TableError("%s is not a mapping" % where)
            missing = [k for k in _ROW_KEYS if not row.get(k)]
            if missing:
                raise TableError("%s (%s) lacks %s" % (where, row.get("id"), ", ".join(missing)))
            if row["id"] in self.rows:
                raise TableError("%s: id %s is used twice" % (where, row["id"]))
            if row["severity"] not in SEVERITIES:
                raise TableError("%s (%s): severity must be refuse or warn" % (where, row["id"]))
            if not isinstance(row["sources"], list) or not all(isinstance(s, str) and s.strip() for s in row["sources"]):
                raise TableError("%s (%s): sources must be a list of public sources" % (where, row["id"]))
            detect = row.get("detect") or {}
            for pattern in detect.get("patterns") or []:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise TableError("%s (%s): pattern %r is not a regular expression: %s"
                                     % (where, row["id"], pattern, exc))
            self.rows[row["id"]] = row

    def __contains__(self, row_id):
        return row_id in self.rows

    def finding(self, row_id, option, **params):
        """The Refusal of a row for this option, its words filled with the rule's values."""
        row = self.rows[row_id]
        values = dict(params, option=option)
        try:
            reason, fix = row["reason"].format(**values), row["fix"].format(**values)
        except (KeyError, IndexError) as exc:
            raise TableError("row %s names %s, which its rule did not give" % (row_id, exc))
        return Refusal(rule=row_id, option=option, reason=reason, fix=fix, sources=list(row["sources"]),
                       severity=row["severity"], title=row["title"])

    def log_patterns(self):
        """Rows with log patterns, as the load watch takes them (id, title, fix, source, patterns)."""
        return [{"id": r["id"], "title": r["title"], "fix": r["fix"] if not _fields(r["fix"]) else r["title"],
                 "source": "; ".join(r["sources"]), "patterns": list(r["detect"]["patterns"])}
                for r in self.rows.values() if (r.get("detect") or {}).get("patterns")]


def run(table, stage, ctx):
    """Every finding of the rules of a stage: (refusals, warnings), each a list of Refusal."""
    out = []
    for row_id, rule_stage, fn in RULES:
        if rule_stage != stage:
            continue
        for option, params in fn(ctx) or ():
            out.append(table.finding(row_id, option, **params))
    if stage == "recipe":
        # options the recipe itself names as known to fail for it, each with its row
        for bad in ctx["recipe"].get("known_bad") or []:
            (flag, value), = parse_args([bad["option"]])
            if flag in ctx["flags"] and (value is True or ctx["flags"][flag] == value):
                out.append(table.finding(bad["row"], bad["option"], **ctx["names"]))
    return [r for r in out if r["severity"] == "refuse"], [r for r in out if r["severity"] == "warn"]


def _true(value):
    return str(value).strip().lower() not in ("0", "false", "no", "off", "")


# --- recipe rules (ctx: recipe, hw, flags {flag: value}, env, names) ----------------------

@rule("PLAN-1")
def parallelism_product(ctx):
    r, hw = ctx["recipe"], ctx["hw"]
    tp, pp, dp = ctx["tp"], ctx["pp"], ctx["dp"]
    gpus = r["nodes"] * hw["gpus_per_node"]
    if tp * pp * dp != gpus:
        yield "parallelism", dict(tp=tp, pp=pp, dp=dp, product=tp * pp * dp, nodes=r["nodes"],
                                  gpus_per_node=hw["gpus_per_node"], gpus=gpus)


OWNED_FLAGS = {"--tensor-parallel-size": "parallelism.tensor", "--pipeline-parallel-size": "parallelism.pipeline",
               "--distributed-executor-backend": "engine.executor", "--served-model-name": "serving.served_model_name",
               "--gpu-memory-utilization": "serving.gpu_memory_utilization", "--max-model-len": "serving.max_model_len",
               "--nnodes": "engine.executor (mp)", "--node-rank": "engine.executor (mp)",
               "--master-addr": "engine.executor (mp)", "--headless": "engine.executor (mp)"}


@rule("PLAN-2")
def recipe_owned_flags(ctx):
    for flag, section in sorted(OWNED_FLAGS.items()):
        if flag in ctx["flags"]:
            yield flag, dict(section=section)


@rule("PLAN-3")
def expert_parallel_without_experts(ctx):
    if ctx["ep"] and not ctx["recipe"]["model"]["moe"]:
        yield "--enable-expert-parallel", dict(architecture=ctx["recipe"]["model"]["architecture"])


@rule("KF-100")
def memory_fit(ctx):
    mem = ctx["memory"]
    if not mem["fits"]:
        yield "parallelism.tensor", dict(weights_gib=mem["weights_gib"], overhead_gib=mem["overhead_gib"],
                                         kv_gib=mem["min_kv_cache_gib"], need_gib=mem["need_gib"],
                                         budget_gib=mem["budget_gib"], memory_gib=ctx["hw"]["memory_gib_per_gpu"],
                                         utilization=ctx["recipe"]["serving"]["gpu_memory_utilization"])


@rule("KF-25")
def unified_memory_utilization(ctx):
    hw, util = ctx["hw"], ctx["recipe"]["serving"]["gpu_memory_utilization"]
    if hw["unified_memory"] and util > hw["max_gpu_memory_utilization"]:
        yield "serving.gpu_memory_utilization", dict(value="%.2f" % util, max="%.2f" % hw["max_gpu_memory_utilization"])


@rule("KF-1")
def hybrid_expert_parallel(ctx):
    model = ctx["recipe"]["model"]
    if model["hybrid_gdn"] and ctx["ep"]:
        yield "--enable-expert-parallel", dict(architecture=model["architecture"])


@rule("KF-102")
def engine_min_version(ctx):
    eng = ctx["recipe"]["engine"]
    if ctx["version"] < parse_version(eng["min_version"]):
        yield "engine.version", dict(version=eng["version"], min_version=eng["min_version"],
                                     architecture=ctx["recipe"]["model"]["architecture"])


@rule("KF-3")
def vllm_017_load_hang(ctx):
    if (0, 17, 0, -2, 0) <= ctx["version"] < (0, 17, 1, -2, 0) and ctx["recipe"]["model"]["size_gb"] > 150:
        yield "engine.version", dict(version=ctx["recipe"]["engine"]["version"])


@rule("KF-2")
def marlin_int4_split(ctx):
    model, eng = ctx["recipe"]["model"], ctx["recipe"]["engine"]
    heads, tp = model.get("linear_num_value_heads"), ctx["tp"]
    if (model["hybrid_gdn"] and model["quantization"] in INT4_MARLIN and heads
            and "vllm-pr-36329" not in (eng.get("fixes") or [])):
        out_size = 2 * heads // tp
        if out_size < MARLIN_MIN_THREAD_N or out_size % MARLIN_MIN_THREAD_N:
            yield "parallelism.tensor", dict(heads=heads, tp=tp, out_size=out_size)


@rule("KF-4")
def prefix_caching_0172(ctx):
    r = ctx["recipe"]
    if (r["nodes"] == 2 and ctx["tp"] == 2 and r["model"]["quantization"] == "autoround"
            and "--enable-prefix-caching" in ctx["flags"] and (0, 17, 2, -2, 0) <= ctx["version"] < (0, 17, 3, -2, 0)):
        yield "--enable-prefix-caching", {}


def _gb10(ctx):
    hw = ctx["hw"]
    return hw["unified_memory"] and hw["compute_capability"] == "12.1"


@rule("KF-22")
def gb10_deepgemm(ctx):
    if _gb10(ctx):
        for key in ("VLLM_USE_DEEP_GEMM", "VLLM_MOE_USE_DEEP_GEMM"):
            if _true(ctx["env"].get(key, "0")):
                yield "serving.env.%s" % key, dict(value=ctx["env"][key])


@rule("KF-12")
def gb10_gpudirect(ctx):
    if _gb10(ctx):
        env = ctx["env"]
        if str(env.get("NCCL_NET_GDR_LEVEL", "LOC")) != "LOC":
            yield "serving.env.NCCL_NET_GDR_LEVEL", dict(value=env["NCCL_NET_GDR_LEVEL"])
        if str(env.get("NCCL_DMABUF_ENABLE", "0")) != "0":
            yield "serving.env.NCCL_DMABUF_ENABLE", dict(value=env["NCCL_DMABUF_ENABLE"])


@rule("KF-28")
def gb10_vision_cudnn(ctx):
    if _gb10(ctx) and ctx["recipe"]["model"]["vision"] and not ctx["recipe"]["engine"].get("disable_cudnn"):
        yield "engine.disable_cudnn", {}


@rule("KF-31")
def shared_experts_stream(ctx):
    r = ctx["recipe"]
    if (_gb10(ctx) and r["model"]["moe"] and r["nodes"] == 2 and ctx["tp"] == 2
            and str(ctx["env"].get("VLLM_DISABLE_SHARED_EXPERTS_STREAM", "0")) != "1"):
        yield "serving.env.VLLM_DISABLE_SHARED_EXPERTS_STREAM", {}


@rule("KF-21")
def ray_memory_monitor(ctx):
    value = ctx["env"].get("RAY_memory_monitor_refresh_ms", "0")
    if ctx["recipe"]["engine"]["executor"] == "ray" and ctx["hw"]["unified_memory"] and str(value) != "0":
        yield "serving.env.RAY_memory_monitor_refresh_ms", dict(value=value)


@rule("KF-17")
def gid_index_pinned(ctx):
    if "NCCL_IB_GID_INDEX" in ctx["env"]:
        yield "serving.env.NCCL_IB_GID_INDEX", {}


@rule("KF-20")
def per_node_env(ctx):
    for key in PER_NODE_ENV:
        if key in ctx["env"] and key != "NCCL_IB_GID_INDEX":
            yield "serving.env.%s" % key, {}


@rule("KF-6")
def sglang_graph_env(ctx):
    if "SGLANG_DISABLE_CUDA_GRAPH" in ctx["env"]:
        yield "serving.env.SGLANG_DISABLE_CUDA_GRAPH", {}


@rule("KF-103")
def mm_encoder_data_multinode(ctx):
    if ctx["flags"].get("--mm-encoder-tp-mode") == "data" and ctx["recipe"]["nodes"] > 1:
        yield "--mm-encoder-tp-mode=data", {}


@rule("SEC-1")
def api_flags(ctx):
    for flag in ("--host", "--port", "--api-key"):
        if flag in ctx["flags"]:
            yield flag, {}


@rule("KF-29")
def attention_backend_env(ctx):
    if "VLLM_ATTENTION_BACKEND" in ctx["env"]:
        yield "serving.env.VLLM_ATTENTION_BACKEND", dict(value=ctx["env"]["VLLM_ATTENTION_BACKEND"])


@rule("KF-104")
def long_context_two_nodes(ctx):
    r = ctx["recipe"]
    if ctx["hw"]["unified_memory"] and r["serving"]["max_model_len"] > 32768 and r["nodes"] <= 2:
        yield "serving.max_model_len", dict(value=r["serving"]["max_model_len"], nodes=r["nodes"])


# --- inventory rules (ctx: nodes [{name, rails, mtu}], errors {host: message}) -----------

@rule("INV-1", stage="inventory")
def rail_variables(ctx):
    for host, message in sorted(ctx["errors"].items()):
        yield host, dict(detail=message, host=host)


@rule("INV-2", stage="inventory")
def rail_addresses(ctx):
    nodes = ctx["nodes"]
    if not nodes:
        return
    for rail in nodes[0]["rails"]:
        try:
            net = ipaddress.ip_network(rail["subnet"], strict=True)
        except ValueError as exc:
            yield "sparkops_rails[%s].subnet" % rail["name"], dict(
                detail=str(exc), fix="give the rail subnet as a network, e.g. 192.168.100.0/24")
            continue
        seen = {}
        for node in nodes:
            entry = {r["name"]: r for r in node["rails"]}.get(rail["name"])
            if entry is None:
                yield "%s: rail %s" % (node["name"], rail["name"]), dict(
                    detail="the node has no address on this rail", fix="define the rail for every node")
                continue
            try:
                addr = ipaddress.ip_address(entry["address"])
            except ValueError as exc:
                yield "%s: %s address" % (node["name"], rail["name"]), dict(
                    detail=str(exc), fix="use an IPv4 address inside %s" % net)
                continue
            if addr not in net or addr in (net.network_address, net.broadcast_address):
                yield "%s: %s address %s" % (node["name"], rail["name"], addr), dict(
                    detail="not a host address of the rail subnet %s" % net,
                    fix="pick an address inside %s (or fix sparkops_node_index / the offset)" % net)
            if str(addr) in seen:
                yield "%s: %s address %s" % (node["name"], rail["name"], addr), dict(
                    detail="already used by %s" % seen[str(addr)],
                    fix="give every node its own rail address (unique sparkops_node_index)")
            seen[str(addr)] = node["name"]


@rule("KF-18", stage="inventory")
def rail_mtu(ctx):
    mtus = {}
    for node in ctx["nodes"]:
        mtus.setdefault(node["mtu"], []).append(node["name"])
    if len(mtus) > 1:
        yield "sparkops_rail_mtu", dict(detail="MTU differs across nodes: %s" % "; ".join(
            "%s on %s" % (m, ", ".join(h)) for m, h in sorted(mtus.items())))


# --- fact rules (ctx: facts {host: {...}}, recipe, hw, nodes: the rail plan) -------------

@rule("KF-105", stage="facts")
def driver_versions(ctx):
    drivers = {}
    for host, f in sorted(ctx["facts"].items()):
        if f.get("driver_version"):
            drivers.setdefault(f["driver_version"], []).append(host)
    if len(drivers) > 1:
        yield "driver version", dict(detail="; ".join("%s on %s" % (v, ", ".join(h)) for v, h in sorted(drivers.items())))


@rule("KF-107", stage="facts")
def docker_gpus(ctx):
    if ctx["hw"]["gpus_per_node"] > 0:
        for host, f in sorted(ctx["facts"].items()):
            if f.get("docker_gpus") is False:
                yield "%s: docker" % host, dict(host=host)


@rule("KF-13", stage="facts")
def rails_up(ctx):
    for host, f in sorted(ctx["facts"].items()):
        for rail, up in sorted((f.get("rails_up") or {}).items()):
            if not up:
                yield "%s: rail %s" % (host, rail), {}


@rule("KF-9", stage="facts")
def memory_held_by_no_process(ctx):
    for host, f in sorted(ctx["facts"].items()):
        if f.get("reboot_required"):
            yield "%s: memory" % host, dict(detail=f.get("reboot_reason") or "memory is held by no process", host=host)


@rule("KF-19", stage="facts")
def loopback_hostname(ctx):
    for host, f in sorted(ctx["facts"].items()):
        if f.get("hostname_loopback") and not f.get("gloo_socket_ifname"):
            yield "%s: hostname" % host, dict(address=f["hostname_loopback"])


@rule("KF-10", stage="facts")
def memory_balance(ctx):
    hw, planned = ctx["hw"], ctx["recipe"]["serving"]["gpu_memory_utilization"]
    avail = {h: f["mem_available"] for h, f in ctx["facts"].items() if f.get("mem_available")}
    if not avail or not hw["unified_memory"] or hw["gpus_per_node"] < 1:
        return
    poorest, richest = min(avail, key=avail.get), max(avail, key=avail.get)
    usable = avail[poorest] / (hw["memory_gib_per_gpu"] * GIB * hw["gpus_per_node"])
    if planned > usable:
        yield "serving.gpu_memory_utilization", dict(
            poorest=poorest, richest=richest, available_gib="%.1f" % (avail[poorest] / GIB),
            gap_gib="%.1f" % ((avail[richest] - avail[poorest]) / GIB), usable="%.2f" % usable,
            planned="%.2f" % planned, lower="%.2f" % max(0.05, usable - 0.02))


@rule("KF-18", stage="facts")
def live_rail_mtu(ctx):
    planned = {(n["name"], r["name"]): r["mtu"] for n in ctx["nodes"] for r in n["rails"]}
    for host, f in sorted(ctx["facts"].items()):
        for rail, mtu in sorted((f.get("rail_mtu") or {}).items()):
            want = planned.get((host, rail))
            if want is not None and mtu != want:
                yield "%s: rail %s MTU" % (host, rail), dict(detail="%s: rail %s has MTU %s, not %s" % (host, rail, mtu, want))


def _engine_check(ctx):
    """The head's engine check (vllm_container check.yml) with its version parsed:
    (check, version tuple), or (None, None) when there is none or it is unreadable."""
    for _host, f in sorted(ctx["facts"].items()):
        check = f.get("engine_check")
        if isinstance(check, dict) and check.get("version"):
            try:
                return check, parse_version(check["version"])
            except ValueError:
                return None, None
    return None, None


@rule("PLAN-7", stage="facts")
def image_vllm_version(ctx):
    (check, found), eng = _engine_check(ctx), ctx["recipe"]["engine"]
    if check and found[:3] != parse_version(eng["version"])[:3]:
        yield "engine.version", dict(image=eng["image"], found=check["version"], declared=eng["version"])


@rule("KF-102", stage="facts")
def image_min_version(ctx):
    (check, found), eng = _engine_check(ctx), ctx["recipe"]["engine"]
    if check and found < parse_version(eng["min_version"]):
        yield "engine.image", dict(version=check["version"], min_version=eng["min_version"],
                                   architecture=ctx["recipe"]["model"]["architecture"])


@rule("PLAN-8", stage="facts")
def engine_parser(ctx):
    check = _engine_check(ctx)[0]
    if not check:
        return
    for verdict in check.get("commands") or []:
        if isinstance(verdict, dict) and not verdict.get("ok"):
            yield "serving.args", dict(version=check["version"], node=verdict.get("node") or "a node",
                                       error=verdict.get("error") or "rejected")
