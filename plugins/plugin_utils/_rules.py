# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight's rules and the table they answer to. Pure Python.

data/known_failures.yml is the one table of what is refused, warned about and
recognised in engine logs. Each rule here is registered under the id of its row and
returns findings: the option concerned and the values the row's reason and fix name.
The row gives the words (reason, fix, sources, severity); the rule only detects.
"""

from __future__ import annotations

import ipaddress
import re
import string

from ansible_collections.sparkops.cluster.plugins.module_utils._checkpoint import contradictions
from ansible_collections.sparkops.cluster.plugins.module_utils._rdma import gid_of_ipv4
from ansible_collections.sparkops.cluster.plugins.module_utils._units import GIB
from ansible_collections.sparkops.cluster.plugins.module_utils._watchdog import WATCH_KINDS
from ansible_collections.sparkops.cluster.plugins.plugin_utils._recipe import (
    ARCHITECTURES, INT4, TRAITS, args_dict, parse_version, release, same_value)
from ansible_collections.sparkops.cluster.plugins.plugin_utils._ports import is_loopback
from ansible_collections.sparkops.cluster.plugins.plugin_utils._secrets import is_secret
from ansible_collections.sparkops.cluster.plugins.plugin_utils._settings import on

MARLIN_MIN_THREAD_N = 64
PER_NODE_ENV = ("NCCL_IB_HCA", "NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "TP_SOCKET_IFNAME",
                "UCX_NET_DEVICES", "VLLM_HOST_IP")
SEVERITIES = ("refuse", "warn")
_ROW_KEYS = ("id", "title", "reason", "fix", "sources", "severity")

# (row id, stage, function); stage is recipe, inventory or facts. A row's detect.rule
# names its functions (a row may have one per stage).
RULES = []


def rule(row_id, stage="recipe"):
    """Register a rule under the id of its row in data/known_failures.yml."""
    def register(fn):
        RULES.append((row_id, stage, fn))
        return fn
    return register


class TableError(ValueError):
    """data/known_failures.yml is malformed; the message names the row and the field."""


class Refusal(dict):
    """One refused (or warned) point of a plan: rule (row id), option, reason, fix, sources, severity;
    sources_hardware when the row's sources report it on other hardware than a DGX Spark."""

    def __str__(self):
        return "[%s] %s: %s. Fix: %s (source: %s%s)" % (
            self["rule"], self["option"], self["reason"], self["fix"], "; ".join(self["sources"]),
            "; reported on %s" % self["sources_hardware"] if self.get("sources_hardware") else "")


def _fields(text):
    return {field[1] for field in string.Formatter().parse(text) if field[1]}


class Table:
    """The rows of data/known_failures.yml, checked, by id."""

    def __init__(self, rows):
        if not isinstance(rows, list) or not rows:
            raise TableError("known_failures.yml must be a non-empty list of rows")
        self.rows, self.extra = {}, set()
        for i, row in enumerate(rows):
            self._add(row, "known_failures.yml row %d" % i)

    def extend(self, row, source):
        """Add a row of a user's own table (source: its file). It may detect by log patterns only
        (rules are this collection's code) and may not reuse an id of this table."""
        where = "%s row %s" % (source, row.get("id") if isinstance(row, dict) else row)
        if isinstance(row, dict) and row.get("id") in self.rows:
            raise TableError("%s: %s is a row of the collection's table; give your row an id of your own (say "
                             "USER-1): the collection's rows cannot be changed or reopened, only accepted where "
                             "they allow it (sparkops_accept)" % (where, row["id"]))
        for key in ("rule", "watch"):
            if isinstance(row, dict) and isinstance(row.get("detect"), dict) and row["detect"].get(key):
                raise TableError("%s: detect.%s names a check of the collection's code; a row of your own detects "
                                 "by detect.patterns (lines of the engine's log) and detect.kernel_patterns (lines "
                                 "of the kernel's log) only" % (where, key))
        self._add(row, where)
        self.extra.add(row["id"])

    def _add(self, row, where):
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
        if "sources_hardware" in row and not (isinstance(row["sources_hardware"], str) and row["sources_hardware"].strip()):
            raise TableError("%s (%s): sources_hardware must name the hardware the sources report on" % (where, row["id"]))
        detect = row.get("detect") or {}
        if not isinstance(detect, dict):
            raise TableError("%s (%s): detect must be a mapping (rule, patterns, kernel_patterns, watch)"
                             % (where, row["id"]))
        for key in ("patterns", "kernel_patterns"):
            patterns = detect.get(key) or []
            if not isinstance(patterns, list):
                raise TableError("%s (%s): detect.%s must be a list of regular expressions" % (where, row["id"], key))
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except (re.error, TypeError) as exc:
                    raise TableError("%s (%s): detect.%s: %r is not a regular expression: %s"
                                     % (where, row["id"], key, pattern, exc))
        if detect.get("watch") is not None and detect["watch"] not in WATCH_KINDS:
            raise TableError("%s (%s): detect.watch must be one of %s" % (where, row["id"], ", ".join(WATCH_KINDS)))
        versions = row.get("versions")
        if versions is not None:
            if not isinstance(versions, dict) or not versions or set(versions) - {"from", "before"}:
                raise TableError("%s (%s): versions must be a mapping {from, before} of vLLM versions"
                                 % (where, row["id"]))
            try:
                row["_versions"] = {k: parse_version(str(v)) for k, v in versions.items()}
            except ValueError as exc:
                raise TableError("%s (%s): versions: %s" % (where, row["id"], exc))
        if not isinstance(row.get("accept"), bool):
            raise TableError("%s (%s): accept must be true or false (can sparkops_accept waive the row for a plan?)"
                             % (where, row["id"]))
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
        out = Refusal(rule=row_id, option=option, reason=reason, fix=fix, sources=list(row["sources"]),
                      severity=row["severity"], title=row["title"])
        if row.get("sources_hardware"):
            out["sources_hardware"] = row["sources_hardware"]
        return out

    def applies(self, row_id, version):
        """None when the row applies to this vLLM version (a version tuple, or None when
        unknown), else why it does not."""
        bounds = self.rows[row_id].get("_versions")
        if not bounds or version is None:
            return None
        low, high = bounds.get("from"), bounds.get("before")
        if (low is None or version >= low) and (high is None or version < high):
            return None
        words = self.rows[row_id]["versions"]
        return "applies to vLLM %s" % " ".join(
            w for w in ("from %s" % words["from"] if "from" in words else "",
                        "before %s" % words["before"] if "before" in words else "") if w)

    def acceptable(self, row_id):
        return self.rows[row_id]["accept"]

    def log_patterns(self):
        """Rows that name what a log or the watchdog shows, as the load watch (patterns: the
        engine's log) and the watchdog (kernel_patterns: the kernel's log; watch: its own
        findings) take them: id, title, fix, source, patterns, kernel_patterns, watch."""
        out = []
        for r in self.rows.values():
            detect = r.get("detect") or {}
            if detect.get("patterns") or detect.get("kernel_patterns") or detect.get("watch"):
                out.append({"id": r["id"], "title": r["title"], "fix": r["fix"] if not _fields(r["fix"]) else r["title"],
                            "source": "; ".join(r["sources"]), "patterns": list(detect.get("patterns") or []),
                            "kernel_patterns": list(detect.get("kernel_patterns") or []),
                            "watch": detect.get("watch")})
        return out


class Findings:
    """What the rules of a stage found: refusals and warnings (lists of Refusal), the
    findings the user accepted (sparkops_accept) and the rows not judged, with why."""

    def __init__(self):
        self.refusals, self.warnings, self.accepted, self.skipped = [], [], [], []

    def add(self, other):
        for name in ("refusals", "warnings", "accepted", "skipped"):
            getattr(self, name).extend(getattr(other, name))
        return self


def run(table, stage, ctx, accept=None):
    """Every finding of the rules of a stage, sorted into a Findings.

    ctx["version"], when given, is the vLLM version judged: a row with versions outside it
    is not judged and is named in skipped. accept: {row id: why}, the rows the user
    accepts (their findings go to accepted, each with the reason given).
    """
    accept, out, found = accept or {}, Findings(), []
    version, skipped = ctx.get("version"), set()
    for row_id, rule_stage, fn in RULES:
        if rule_stage != stage:
            continue
        why = table.applies(row_id, version)
        if why:
            if row_id not in skipped:
                skipped.add(row_id)
                out.skipped.append({"rule": row_id, "title": table.rows[row_id]["title"],
                                    "note": "not judged: it %s; the plan's vLLM is %s" % (
                                        why, ctx.get("version_text") or "unknown")})
            continue
        for option, params in fn(ctx) or ():
            found.append(table.finding(row_id, option, **params))
    if stage == "recipe":
        # options the recipe itself names as known to fail for it, each with its row
        flags = ctx["flags"]
        for bad in ctx["recipe"].get("known_bad") or []:
            flag, wanted = next(iter(args_dict([bad["option"]]).items()))
            if flag in flags and same_value(wanted, flags[flag]) and not table.applies(bad["row"], version):
                found.append(table.finding(bad["row"], bad["option"], **ctx["names"]))
    for finding in found:
        if finding["rule"] in accept:
            out.accepted.append(Refusal(finding, accepted=accept[finding["rule"]]))
        else:
            (out.refusals if finding["severity"] == "refuse" else out.warnings).append(finding)
    return out


def env_option(ctx, key):
    """The door an environment variable came through: serving.env.KEY, or the role
    variable that set it (env_doors: {key: 'vllm_serve_env.KEY on spark-beta'})."""
    return (ctx.get("env_doors") or {}).get(key) or "serving.env." + key


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


# environment variables the plan sets per node (PER_NODE_ENV are KF-20's)
OWNED_ENV = {"RAY_ADDRESS": "the plan (engine.executor ray, sparkops_ray_port)",
             "VLLM_CONFIG_ROOT": "the plan (engine.executor ray)",
             "RAY_AUTH_MODE": "sparkops_ray_auth", "RAY_AUTH_TOKEN_PATH": "sparkops_ray_auth",
             "RAY_AUTH_TOKEN": "engine_container_auth_token (a file on every node, never the environment)",
             "CUDA_VISIBLE_DEVICES": "the engine container's GPU request (Ray and vLLM place the ranks)"}


@rule("PLAN-2")
def recipe_owned_flags(ctx):
    for flag, section in sorted(OWNED_FLAGS.items()):
        if flag in ctx["flags"]:
            yield flag, dict(section=section)
    for key, section in sorted(OWNED_ENV.items()):
        if key in ctx["env"]:
            yield env_option(ctx, key), dict(section=section)


@rule("PLAN-3")
def expert_parallel_without_experts(ctx):
    if ctx["ep"] and not ctx["recipe"]["model"]["moe"]:
        yield "--enable-expert-parallel", dict(architecture=ctx["recipe"]["model"]["architecture"])


@rule("KF-100")
def memory_fit(ctx):
    mem = ctx["memory"]
    if not mem["fits"]:
        yield "parallelism.tensor", dict(weights_gib=mem["weights_gib"], overhead_gib=mem["overhead_gib"],
                                         kv_gib=mem["kv_need_gib"], kv_what=mem["kv_what"], need_gib=mem["need_gib"],
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
    if ctx["recipe"]["model"]["size_gb"] > 150:  # versions: the row's
        yield "engine.version", dict(version=ctx["recipe"]["engine"]["version"])


@rule("KF-2")
def marlin_int4_split(ctx):
    model, eng = ctx["recipe"]["model"], ctx["recipe"]["engine"]
    heads, tp = model.get("linear_num_value_heads"), ctx["tp"]
    if (model["hybrid_gdn"] and model["quantization"] in INT4 and heads
            and "vllm-pr-36329" not in (eng.get("fixes") or [])):
        out_size = 2 * heads // tp
        if out_size < MARLIN_MIN_THREAD_N or out_size % MARLIN_MIN_THREAD_N:
            yield "parallelism.tensor", dict(heads=heads, tp=tp, out_size=out_size)


@rule("KF-4")
def prefix_caching_0172(ctx):
    r = ctx["recipe"]
    if (r["nodes"] == 2 and ctx["tp"] == 2 and r["model"]["quantization"] == "autoround"
            and on(ctx["flags"].get("--enable-prefix-caching"))):  # versions: the row's
        yield "--enable-prefix-caching", {}


def _gb10(ctx):
    hw = ctx["hw"]
    return hw["unified_memory"] and hw["compute_capability"] == "12.1"


@rule("KF-22")
def gb10_deepgemm(ctx):
    if _gb10(ctx):
        for key in ("VLLM_USE_DEEP_GEMM", "VLLM_MOE_USE_DEEP_GEMM"):
            if on(ctx["env"].get(key, "0")):
                yield env_option(ctx, key), dict(value=ctx["env"][key])


@rule("KF-12")
def gb10_gpudirect(ctx):
    if _gb10(ctx):
        env = ctx["env"]
        if str(env.get("NCCL_NET_GDR_LEVEL", "LOC")) != "LOC":
            yield env_option(ctx, "NCCL_NET_GDR_LEVEL"), dict(value=env["NCCL_NET_GDR_LEVEL"])
        if str(env.get("NCCL_DMABUF_ENABLE", "0")) != "0":
            yield env_option(ctx, "NCCL_DMABUF_ENABLE"), dict(value=env["NCCL_DMABUF_ENABLE"])


@rule("KF-28")
def gb10_vision_cudnn(ctx):
    text_only = on(ctx["flags"].get("--language-model-only"))
    if _gb10(ctx) and ctx["recipe"]["model"]["vision"] and not text_only and not ctx["recipe"]["engine"].get("disable_cudnn"):
        yield "engine.disable_cudnn", {}


@rule("KF-31")
def shared_experts_stream(ctx):
    r = ctx["recipe"]
    if (_gb10(ctx) and r["model"].get("shared_experts") and r["nodes"] == 2 and ctx["tp"] == 2
            and str(ctx["env"].get("VLLM_DISABLE_SHARED_EXPERTS_STREAM", "0")) != "1"):
        yield env_option(ctx, "VLLM_DISABLE_SHARED_EXPERTS_STREAM"), {}


@rule("KF-21")
def ray_memory_monitor(ctx):
    value = ctx["env"].get("RAY_memory_monitor_refresh_ms", "0")
    if ctx["recipe"]["engine"]["executor"] == "ray" and ctx["hw"]["unified_memory"] and str(value) != "0":
        yield env_option(ctx, "RAY_memory_monitor_refresh_ms"), dict(value=value)


@rule("KF-17")
def gid_index_pinned(ctx):
    """An empty NCCL_IB_GID_INDEX parses as 0 (a link-local GID); a pinned index is judged on
    every node's GID table at the live stage (gid_index_live)."""
    if "NCCL_IB_GID_INDEX" in ctx["env"] and not str(ctx["env"]["NCCL_IB_GID_INDEX"]).strip().isdigit():
        yield env_option(ctx, "NCCL_IB_GID_INDEX"), dict(
            detail="NCCL_IB_GID_INDEX=%r is no index (NCCL reads an empty value as 0, a link-local GID)"
                   % ctx["env"]["NCCL_IB_GID_INDEX"],
            fix="remove NCCL_IB_GID_INDEX (NCCL 2.21 and later pick the RoCE v2 GID themselves) or give the index of "
                "the rails' RoCE v2 GID")


@rule("KF-20")
def per_node_env(ctx):
    for key in PER_NODE_ENV:
        if key in ctx["env"] and key != "NCCL_IB_GID_INDEX":
            yield env_option(ctx, key), {}


@rule("KF-6")
def sglang_graph_env(ctx):
    if "SGLANG_DISABLE_CUDA_GRAPH" in ctx["env"]:
        yield env_option(ctx, "SGLANG_DISABLE_CUDA_GRAPH"), {}


@rule("KF-103")
def mm_encoder_data_multinode(ctx):
    if same_value("data", ctx["flags"].get("--mm-encoder-tp-mode")) and ctx["recipe"]["nodes"] > 1:
        yield "--mm-encoder-tp-mode=data", {}


@rule("PLAN-7")
def image_tag_version(ctx):
    """The official images are tagged v<version>: a tag that names another vLLM than engine.version."""
    eng = ctx["recipe"]["engine"]
    last = eng["image"].rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    m = re.match(r"^v(\d+\.\d+(?:\.\d+)?(?:rc\d+)?)(?:$|[-+])", tag)
    if m and release(parse_version(m.group(1))) != release(ctx["version"]):
        yield "engine.image", dict(image=eng["image"], found=m.group(1), declared=eng["version"])


@rule("PLAN-9")
def heads_divide(ctx):
    model, tp = ctx["recipe"]["model"], ctx["tp"]
    heads = model.get("attention_heads")
    if heads and heads % tp:
        yield "parallelism.tensor", dict(tp=tp, heads=heads, what="attention heads (model.attention_heads)")
    kv = (model.get("kv_cache") or {}).get("kv_heads")
    if kv and kv % tp and tp % kv:
        yield "parallelism.tensor", dict(tp=tp, heads=kv, what="KV heads (model.kv_cache.kv_heads)")


@rule("PLAN-10")
def context_length(ctx):
    r = ctx["recipe"]
    longest = r["model"].get("context_length")
    if longest and r["serving"]["max_model_len"] > longest and str(ctx["env"].get("VLLM_ALLOW_LONG_MAX_MODEL_LEN")) != "1":
        yield "serving.max_model_len", dict(value=r["serving"]["max_model_len"], context=longest)


@rule("PLAN-11")
def model_swapped_alone(ctx):
    """A swapped model keeps the recipe's other facts. Its size cannot be read before the weights
    are local; its architecture and quantization can, from config.json at the live preflight
    (PLAN-13), where sparkops_model_path gives the weights: without it, they are asked for."""
    over = (ctx.get("overrides") or {}).get("model")
    base = (ctx.get("base") or {}).get("model") or {}
    if isinstance(over, dict) and over.get("id") and over["id"] != base.get("id"):
        wanted = ("size_gb",) if ctx.get("model_local") else ("size_gb", "architecture", "quantization")
        missing = [k for k in wanted if k not in over]
        if missing:
            yield "sparkops_recipe_overrides.model.id", dict(
                model=over["id"], base=base.get("id"), missing=", ".join("model." + k for k in missing),
                why="" if ctx.get("model_local") else " (set sparkops_model_path and the others are read from the "
                                                      "checkpoint's config.json)")


@rule("PLAN-13")
def model_traits(ctx):
    """A trait the recipe gives by hand against what its architecture is."""
    model = ctx["recipe"]["model"]
    known = ARCHITECTURES.get(model["architecture"])
    for trait, value in zip(TRAITS, known or ()):
        if model.get(trait) is not None and model[trait] != value:
            yield "model." + trait, dict(detail="model.%s is %s in the recipe, but %s is %s" % (
                trait, str(model[trait]).lower(), model["architecture"], "" if value else "not ") + {
                    "moe": "a mixture of experts", "hybrid_gdn": "a hybrid of linear (GDN) and full attention",
                    "vision": "a vision-language model"}[trait],
                fix="remove model.%s (it follows from model.architecture) or correct model.architecture" % trait)


@rule("SEC-1")
def api_flags(ctx):
    """--host, --port, --api-key and --config (a file that can carry them), and any abbreviation
    of them: vLLM's argument parser takes an unambiguous prefix of a flag for the flag
    (argparse's allow_abbrev; `vllm serve m --hos=0.0.0.0` binds every address)."""
    for flag in sorted(ctx["flags"]):
        owned = [f for f in API_FLAGS if f.startswith(flag) and len(flag) > 2]
        if owned:
            yield flag if flag in API_FLAGS else "%s (read as %s)" % (flag, " or ".join(owned)), {}
    if "VLLM_API_KEY" in ctx["env"]:
        yield env_option(ctx, "VLLM_API_KEY"), {}


# the flags of `vllm serve` that only the deployment may set (SEC-1)
API_FLAGS = ("--host", "--port", "--api-key", "--config", "--uds", "--root-path")


@rule("SEC-2")
def api_exposed(ctx):
    host = ctx.get("api_host")
    if host is not None and not is_loopback(host):
        yield "sparkops_api_host", dict(host=host)


# switches of vLLM's environment that open the API server beyond serving (SEC-7)
DEV_SWITCHES = {
    "VLLM_SERVER_DEV_MODE": "/collective_rpc, /sleep, /wake_up, /reset_prefix_cache and other control routes",
    "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "/v1/load_lora_adapter, which loads an adapter from any path or hub id",
    "VLLM_ALLOW_INSECURE_SERIALIZATION": "pickle in the messages between vLLM's processes",
}


@rule("SEC-7")
def dev_switches(ctx):
    for key in sorted(DEV_SWITCHES):
        if key in ctx["env"] and on(ctx["env"][key]):
            yield env_option(ctx, key), dict(opens=DEV_SWITCHES[key])


@rule("SEC-3")
def secret_in_recipe(ctx):
    for key in sorted(ctx["recipe"]["serving"]["env"]):
        if is_secret(key):
            yield "serving.env.%s" % key, {}


@rule("SEC-4")
def unpinned_remote_code(ctx):
    flags, model = ctx["flags"], ctx["recipe"]["model"]
    if (on(flags.get("--trust-remote-code")) and not flags.get("--revision") and not flags.get("--code-revision")
            and not model.get("allow_unpinned_remote_code")):
        yield "--trust-remote-code", dict(model=model["id"])


@rule("KF-29")
def attention_backend_env(ctx):
    if "VLLM_ATTENTION_BACKEND" in ctx["env"]:
        yield env_option(ctx, "VLLM_ATTENTION_BACKEND"), dict(value=ctx["env"]["VLLM_ATTENTION_BACKEND"])


@rule("KF-104")
def long_context_two_nodes(ctx):
    r = ctx["recipe"]
    if (ctx["hw"]["unified_memory"] and r["serving"]["max_model_len"] > 32768 and r["nodes"] <= 2
            and not r["model"].get("kv_cache")):  # with the model's KV facts, KF-100 counts the context
        yield "serving.max_model_len", dict(value=r["serving"]["max_model_len"], nodes=r["nodes"])


# --- inventory rules (ctx: nodes [{name, rails, mtu}], errors {host: message}) -----------

@rule("INV-1", stage="inventory")
def rail_variables(ctx):
    for host, message in sorted(ctx["errors"].items()):
        yield host, dict(detail=message, host=host)


@rule("INV-2", stage="inventory")
def rail_addresses(ctx):
    nodes = [n for n in ctx["nodes"] if n["rails"]]
    if not nodes:
        return
    nets = []
    for rail in nodes[0]["rails"]:
        try:
            nets.append((rail["name"], ipaddress.ip_network(rail["subnet"], strict=False)))
        except ValueError:
            pass
    for i, (name, net) in enumerate(nets):
        for other, net2 in nets[i + 1:]:
            if net.overlaps(net2):
                yield "sparkops_rails[%s].subnet" % other, dict(
                    detail="%s overlaps %s of rail %s: the kernel would route both rails' traffic over one port"
                           % (net2, net, name), fix="give every rail its own subnet (e.g. 192.168.100.0/24, "
                                                    "192.168.101.0/24)")
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
        if node["rails"]:
            mtus.setdefault(node["mtu"], []).append(node["name"])
    if len(mtus) > 1:
        yield "sparkops_rail_mtu", dict(detail="MTU differs across nodes: %s" % "; ".join(
            "%s on %s" % (m, ", ".join(h)) for m, h in sorted(mtus.items())))
    want = (ctx.get("hw") or {}).get("rail_mtu")
    for mtu, hosts in sorted(mtus.items()):
        if want and mtu < want:
            yield "sparkops_rail_mtu", dict(detail="rails at MTU %s on %s, below the %s the hardware's RoCE rails need"
                                            % (mtu, ", ".join(hosts), want))


@rule("KF-13", stage="inventory")
def rail_count(ctx):
    want = (ctx.get("hw") or {}).get("rails")
    if not want or len(ctx["nodes"]) < 2:
        return
    for node in ctx["nodes"]:
        if len(node["rails"]) < want:
            yield "%s: sparkops_rails" % node["name"], dict(detail="%s has %d rail(s), the %s hardware has %d per node "
                                                            "(both halves of the 200G port): the others carry none of "
                                                            "the traffic" % (node["name"], len(node["rails"]),
                                                                             ctx.get("hw_name"), want))


_PCI_NETDEV = re.compile(r"^en(P\d+)?p(\d+)s(\d+)(?:f(\d+))?(?:np\d+)?$")
_PCI_RDMA = re.compile(r"^roce(P\d+)?p(\d+)s(\d+)(?:f(\d+))?$")


@rule("INV-3", stage="inventory")
def node_addresses(ctx):
    seen = {}
    for host, address in sorted((ctx.get("addresses") or {}).items()):
        if address in seen:
            yield "%s: ansible_host" % host, dict(detail="%s and %s are both reached at %s" % (
                seen[address], host, "%s port %s" % address if address[1] else address[0]))
        seen.setdefault(address, host)


@rule("INV-4", stage="inventory")
def rail_devices(ctx):
    for node in ctx["nodes"]:
        for key in ("netdev", "rdma_device"):
            names = [r[key] for r in node["rails"]]
            for name in sorted({n for n in names if names.count(n) > 1}):
                yield "%s: sparkops_rails %s %s" % (node["name"], key, name), dict(
                    detail="%s %s is given for more than one rail" % (key, name),
                    fix="give each rail its own port (ibdev2netdev lists them: rdma device ==> netdev)")
        for rail in node["rails"]:
            port, dev = _PCI_NETDEV.match(rail["netdev"]), _PCI_RDMA.match(rail["rdma_device"])
            if port and dev and port.groups() != dev.groups():
                yield "%s: rail %s" % (node["name"], rail["name"]), dict(
                    detail="netdev %s and rdma_device %s are different PCI functions" % (
                        rail["netdev"], rail["rdma_device"]),
                    fix="pair the netdev with its own RDMA device (ibdev2netdev: %s ==> %s)" % (
                        "roce" + rail["netdev"][2:].split("np")[0], rail["netdev"]))


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
                yield "%s: rail %s" % (host, rail), dict(detail="rail %s of %s is down" % (rail, host))


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
    """The head's engine check (vllm_serve check.yml) with its version parsed:
    (check, version tuple), or (None, None) when there is none or it is unreadable."""
    for _host, f in sorted(ctx["facts"].items()):
        check = f.get("engine_check")
        if isinstance(check, dict) and check.get("version"):
            try:
                return check, parse_version(check["version"])
            except ValueError:
                return None, None
    return None, None


# Kernels reported to hold memory in KHO that RDMA registration needs, and to wedge hosts
# with NV_ERR_NO_MEMORY (rows KF-34, KF-35 name the reports)
KHO_KERNELS = ("7.0.0-1019-nvidia",)


def _mib(value):
    return "%d" % round(value / 2 ** 20) if isinstance(value, int) else "?"


@rule("KF-34", stage="facts")
def cma_tell(ctx):
    for host, f in sorted(ctx["facts"].items()):
        free, total = f.get("cma_free"), f.get("cma_total")
        if isinstance(free, int) and free > (total or 0):
            yield "%s: kernel" % host, dict(host=host, kernel=f.get("kernel_release") or "?", cma_free=_mib(free),
                                            cma_total=_mib(total or 0))


@rule("KF-17", stage="facts")
def gid_index_live(ctx):
    """A pinned NCCL_IB_GID_INDEX must be, on every node and rail, the RoCE v2 GID of the rail's
    address (the index differs with the IPv6 set-up: 3 on some nodes, 5 on others)."""
    pinned = sorted({str(env["NCCL_IB_GID_INDEX"]).strip() for env in ctx.get("envs") or []
                     if str(env.get("NCCL_IB_GID_INDEX", "")).strip().isdigit()})
    addresses = {(n["name"], r["name"]): r.get("address") for n in ctx["nodes"] for r in n["rails"]}
    for index in pinned:
        for host, rail, link, netdev in _rail_links(ctx):
            table, address = link.get("gids"), addresses.get((host, rail))
            if not table or not address:
                continue  # no GID table read (no RDMA device there): nothing to judge
            want = gid_of_ipv4(address)
            right = [e["index"] for e in table if e.get("gid") == want and e.get("type") == "RoCE v2"]
            here = next((e for e in table if e.get("index") == int(index)), None)
            if here and here.get("gid") == want and here.get("type") == "RoCE v2":
                continue
            what = ("%s (%s)" % (here.get("gid"), here.get("type")) if here else "empty")
            yield "NCCL_IB_GID_INDEX (%s: rail %s)" % (host, rail), dict(
                detail="NCCL_IB_GID_INDEX=%s, but GID %s of %s's rail %s (%s) is %s, not the RoCE v2 GID of %s" % (
                    index, index, host, rail, netdev, what, address),
                fix=("set NCCL_IB_GID_INDEX to %s, where %s has the RoCE v2 GID of %s (if every node has it there), or "
                     "remove it: NCCL 2.21 and later pick the RoCE v2 GID themselves" % (right[0], host, address))
                if right else "remove NCCL_IB_GID_INDEX: %s has no RoCE v2 GID for %s yet (is the rail addressed?)" % (
                    host, address))


@rule("KF-35", stage="facts")
def kho_kernel(ctx):
    for host, f in sorted(ctx["facts"].items()):
        if f.get("kernel_release") in KHO_KERNELS and not f.get("kho_off"):
            yield "%s: kernel" % host, dict(host=host, kernel=f["kernel_release"])


def _rail_links(ctx):
    """(host, rail, link, netdev) of every rail whose link the node read, with the profile's
    expected link ({speed_mbps, pcie_width}, or {} when the profile states none)."""
    netdevs = {(n["name"], r["name"]): r.get("netdev") for n in ctx["nodes"] for r in n["rails"]}
    for host, f in sorted(ctx["facts"].items()):
        for rail, link in sorted((f.get("rail_link") or {}).items()):
            if isinstance(link, dict):
                yield host, rail, link, netdevs.get((host, rail), "?")


@rule("KF-36", stage="facts")
def pcie_narrow(ctx):
    expected = (ctx["hw"].get("link") or {}).get("pcie_width")
    for host, rail, link, netdev in _rail_links(ctx):
        width = link.get("pcie_width")
        if expected and isinstance(width, int) and width < expected:
            yield "%s: rail %s PCIe" % (host, rail), dict(host=host, rail=rail, netdev=netdev, width=width,
                                                          max_width=link.get("pcie_max_width") or "?",
                                                          expected=expected, hardware=ctx.get("hw_name") or "")


@rule("KF-37", stage="facts")
def link_speed(ctx):
    expected = (ctx["hw"].get("link") or {}).get("speed_mbps")
    for host, rail, link, netdev in _rail_links(ctx):
        speed = link.get("speed_mbps")
        if expected and isinstance(speed, int) and speed < expected:
            yield "%s: rail %s speed" % (host, rail), dict(host=host, rail=rail, netdev=netdev, speed=speed,
                                                           expected=expected, hardware=ctx.get("hw_name") or "")


def _release_of(text):
    try:
        return release(parse_version(text))
    except ValueError:
        return None


def _nccl_versions(check):
    """{version: where} of the NCCL builds the head's engine check found in the image."""
    found = {}
    nccl = (check or {}).get("nccl") or {}
    for dist in nccl.get("pip") or []:
        if isinstance(dist, dict) and dist.get("version"):
            found.setdefault(str(dist["version"]), "pip %s" % dist.get("name"))
    if nccl.get("torch"):
        found.setdefault(str(nccl["torch"]), "torch's")
    for version in nccl.get("system") or []:
        found.setdefault(str(version), "the system's libnccl")
    return found


def _image(ctx):
    """The image the facts stage judged: the plan's (built from engine.build, or engine.image)."""
    return ctx.get("image") or ctx["recipe"]["engine"]["image"]


@rule("KF-39", stage="facts")
def nccl_2304_nvls(ctx):
    check = _engine_check(ctx)[0]
    where = {v: w for v, w in _nccl_versions(check).items() if _release_of(v) == (2, 30, 4)}
    if where and any(str(env.get("NCCL_NVLS_ENABLE", "")).strip() != "0" for env in ctx.get("envs") or [{}]):
        version = sorted(where)[0]
        yield "serving.env.NCCL_NVLS_ENABLE", dict(image=_image(ctx), version=version,
                                                   where=where[version])


@rule("KF-40", stage="facts")
def pip_and_system_nccl(ctx):
    check = _engine_check(ctx)[0]
    nccl = (check or {}).get("nccl") or {}
    pip = [d.get("version") for d in nccl.get("pip") or [] if isinstance(d, dict) and d.get("version")]
    system = [str(v) for v in nccl.get("system") or []]
    if pip and system and any(not env.get("VLLM_NCCL_SO_PATH") for env in ctx.get("envs") or [{}]):
        yield "serving.env.VLLM_NCCL_SO_PATH", dict(image=_image(ctx), pip=", ".join(pip),
                                                    system=", ".join(system))


@rule("KF-41", stage="facts")
def image_without_ray(ctx):
    check = _engine_check(ctx)[0]
    if check and ctx["recipe"]["engine"]["executor"] == "ray" and not check.get("ray_version"):
        yield "engine.image", dict(image=_image(ctx))


@rule("PLAN-7", stage="facts")
def image_vllm_version(ctx):
    (check, found), eng = _engine_check(ctx), ctx["recipe"]["engine"]
    if check and release(found) != release(parse_version(eng["version"])):
        yield "engine.version", dict(image=_image(ctx), found=check["version"], declared=eng["version"])


@rule("KF-102", stage="facts")
def image_min_version(ctx):
    (check, found), eng = _engine_check(ctx), ctx["recipe"]["engine"]
    if check and found < parse_version(eng["min_version"]):
        yield "engine.image", dict(version=check["version"], min_version=eng["min_version"],
                                   architecture=ctx["recipe"]["model"]["architecture"])


RAY_TOKEN_AUTH = "2.52.0"  # the first Ray with token authentication


@rule("SEC-5", stage="facts")
def ray_without_token_auth(ctx):
    check = _engine_check(ctx)[0]
    if not check or not ctx.get("ray_auth") or ctx["recipe"]["engine"]["executor"] != "ray":
        return
    if not check.get("ray_version"):
        return  # no Ray at all: KF-41, whatever sparkops_ray_auth says
    try:
        found = parse_version(check.get("ray_version") or "")
    except ValueError:
        found = None
    if found is None or found < parse_version(RAY_TOKEN_AUTH):
        yield "engine.image", dict(image=_image(ctx), ray=check.get("ray_version") or "no Ray")


@rule("SEC-6", stage="facts")
def image_by_tag(ctx):
    """A tag can be moved to other bytes; the row names what the head has under it now."""
    image = _image(ctx)
    check = _engine_check(ctx)[0]
    if "@sha256:" in image or not check or ctx["recipe"]["engine"].get("build"):
        return  # a built image: named by the hash of its inputs, its base's ID in its labels (engine_image)
    digests = [d for d in check.get("repo_digests") or [] if isinstance(d, str) and "@sha256:" in d]
    if digests:
        yield "engine.image", dict(image=image, found=digests[0], pinned=digests[0])
        return
    last = image.rsplit("/", 1)[-1]
    repo = image[:len(image) - len(last)] + last.split(":", 1)[0]
    yield "engine.image", dict(image=image, found="image ID %s, with no registry digest (built or loaded on the node)"
                               % (check.get("image_id") or "unknown"),
                               pinned="%s@sha256:<digest>, once it is pushed to a registry you control" % repo)


@rule("SEC-1", stage="facts")
def parsed_bind(ctx):
    """Where vLLM's own parser, in the engine image, says each planned command binds: the plan's
    host and port, and no key through the arguments (whatever smuggled them past the static check)."""
    check = _engine_check(ctx)[0]
    api = ctx.get("api") or {}
    for verdict in (check or {}).get("commands") or []:
        bind = verdict.get("bind") if isinstance(verdict, dict) else None
        if not isinstance(bind, dict):
            continue
        if bind.get("host") != api.get("host") or bind.get("port") != api.get("port"):
            yield "serving.args (vLLM reads --host %s --port %s for %s)" % (bind.get("host"), bind.get("port"),
                                                                            verdict.get("node") or "a node"), {}
        if bind.get("api_key"):
            yield "serving.args (vLLM reads an --api-key for %s)" % (verdict.get("node") or "a node"), {}


def checkpoint_facts(ctx):
    """(the checkpoint facts the head read, its config.json's path) or (None, None)."""
    for _host, f in sorted(ctx["facts"].items()):
        found = f.get("checkpoint")
        if isinstance(found, dict) and isinstance(found.get("facts"), dict):
            return found["facts"], found.get("path")
    return None, None


@rule("PLAN-13", stage="facts")
def checkpoint_contradicts(ctx):
    """The recipe's facts of the model against the checkpoint's config.json on the head."""
    found, path = checkpoint_facts(ctx)
    if not found:
        return
    for field, mine, theirs in contradictions(ctx["recipe"]["model"], found):
        yield field, dict(detail="%s is %s in the recipe, %s in %s" % (field, mine, theirs, path),
                          fix="correct %s to the checkpoint's value (or remove it: the live preflight reads it "
                              "from config.json), or point sparkops_model_path at the model the recipe is for" % field)


@rule("PLAN-8", stage="facts")
def engine_parser(ctx):
    check = _engine_check(ctx)[0]
    if not check:
        return
    for verdict in check.get("commands") or []:
        if isinstance(verdict, dict) and not verdict.get("ok"):
            yield "serving.args", dict(version=check["version"], node=verdict.get("node") or "a node",
                                       error=verdict.get("error") or "rejected")
