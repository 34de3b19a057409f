# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A checkpoint's own facts, from its config.json (Hugging Face's format, as
transformers' save_pretrained writes it): what the preflight's rules need of a model,
read where the weights are instead of restated by hand in a recipe.

read() runs on a node (node_facts, on the head); facts() and contradictions() are pure
and run on the controller too. Vision-language checkpoints (Qwen3-VL, Qwen3.5) keep
the language model's fields under text_config; quantized ones describe themselves in
quantization_config (quant_method, and for compressed-tensors and ModelOpt the format).
"""

from __future__ import annotations

import errno
import json
import os
import stat

CONFIG = "config.json"
# a config.json is a few kB (Qwen3.5-397B's, with its 60 layer_types, under 10 kB)
MAX_CONFIG_BYTES = 1024 * 1024

# torch dtype -> bytes per value (transformers writes "dtype" since 4.56, "torch_dtype" before)
DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2, "float8_e4m3fn": 1}
# the recipe's quantization names by family: two names of one family are not a contradiction
# (AutoRound exports int4 weights in GPTQ's or AWQ's layout, and says so in quant_method)
FAMILIES = {
    "int4": ("awq", "gptq", "autoround", "int4"),
    "fp8": ("fp8",),
    "nvfp4": ("nvfp4",),
    "unquantized": ("bf16", "fp16", "none"),
}
# layer types that keep no KV cache (linear attention, state-space layers)
NO_KV_LAYERS = ("linear_attention", "mamba", "mamba2", "gated_delta_net")


class CheckpointError(ValueError):
    """config.json cannot be read as a model's configuration; the message says why."""


def read(model_dir, limit=MAX_CONFIG_BYTES):
    """(config mapping, None) of MODEL_DIR/config.json, or (None, why) when there is none or it
    cannot be read. A hub snapshot's config.json is a symlink into its blobs, so links are
    followed; what they reach must be a regular file of at most LIMIT bytes (a FIFO or a
    device would block the read)."""
    path = os.path.join(model_dir, CONFIG)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None, "%s has no %s (not a Hugging Face checkpoint?)" % (model_dir, CONFIG)
        return None, "%s: %s" % (path, exc.strerror)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "%s is not a regular file" % path
        if info.st_size > limit:
            return None, "%s is %d bytes, more than a model configuration (%d)" % (path, info.st_size, limit)
        raw = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    try:
        return parse(raw), None
    except CheckpointError as exc:
        return None, "%s: %s" % (path, exc)


def parse(raw):
    """config.json's bytes -> its mapping; CheckpointError when it is not a JSON object."""
    try:
        config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError("not JSON (%s)" % exc)
    if not isinstance(config, dict):
        raise CheckpointError("a JSON %s, not an object" % type(config).__name__)
    return config


def _int(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _quantization(config, text):
    """(the recipe's name for the checkpoint's quantization or None when unknown, what the
    checkpoint says)."""
    q = config.get("quantization_config") or text.get("quantization_config")
    if not isinstance(q, dict):
        dtype = config.get("dtype") or config.get("torch_dtype") or text.get("dtype") or text.get("torch_dtype")
        return {"bfloat16": "bf16", "float16": "fp16", "float32": "none"}.get(dtype), "unquantized %s" % dtype
    method = str(q.get("quant_method") or "").lower()
    said = "quant_method %s" % (method or "unset")
    if method in ("awq", "gptq", "fp8", "mxfp4"):
        return (method if method != "mxfp4" else None), said
    if method in ("auto-round", "autoround", "intel/auto-round"):
        return "autoround", said
    if method == "modelopt":
        algo = str(q.get("quant_algo") or (q.get("quantization") or {}).get("quant_algo") or "").upper()
        return {"NVFP4": "nvfp4", "FP8": "fp8"}.get(algo), "%s, quant_algo %s" % (said, algo or "unset")
    if method == "compressed-tensors":
        fmt = str(q.get("format") or "").lower()
        said = "%s, format %s" % (said, fmt or "unset")
        if "nvfp4" in fmt:
            return "nvfp4", said
        if "float-quantized" in fmt or "fp8" in fmt:
            return "fp8", said
        groups = q.get("config_groups") if isinstance(q.get("config_groups"), dict) else {}
        bits = {(g.get("weights") or {}).get("num_bits") for g in groups.values() if isinstance(g, dict)}
        if "pack-quantized" in fmt and bits == {4}:
            return "int4", said
    return None, said


def facts(config):
    """The facts the rules read, from a config mapping: {architecture, layers, attention_heads,
    kv_heads, head_dim, kv_layers, hidden_size, context_length, moe, shared_experts, hybrid_gdn,
    vision, linear_num_value_heads, quantization, quantization_said, dtype_bytes}. A fact the
    configuration does not give is None (never guessed)."""
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config

    def get(*keys):
        """The first of keys the language model's config gives, else the outer config's."""
        for where in (text, config):
            for k in keys:
                if where.get(k) is not None:
                    return where[k]
        return None

    architecture = config.get("model_type")
    if isinstance(architecture, str) and architecture.endswith("_text"):
        architecture = architecture[:-len("_text")]  # a language model cut out of a VL checkpoint
    layers, heads = _int(get("num_hidden_layers")), _int(get("num_attention_heads"))
    hidden = _int(get("hidden_size"))
    head_dim = _int(get("head_dim")) or (hidden // heads if hidden and heads and hidden % heads == 0 else None)
    layer_types = get("layer_types")
    layer_types = [str(t) for t in layer_types] if isinstance(layer_types, list) else None
    if layer_types and layers and len(layer_types) == layers:
        kv_layers = sum(1 for t in layer_types if t not in NO_KV_LAYERS)
        hybrid = any(t in NO_KV_LAYERS for t in layer_types)
    elif _int(get("full_attention_interval")) and layers:
        interval = get("full_attention_interval")
        kv_layers, hybrid = layers // interval, interval > 1
    else:
        kv_layers, hybrid = layers, (False if layers else None)
    experts = _int(get("num_experts", "num_local_experts", "n_routed_experts"))
    shared = get("shared_expert_intermediate_size", "shared_intermediate_size", "n_shared_experts")
    quantization, said = _quantization(config, text)
    dtype = get("dtype", "torch_dtype")
    return {
        "architecture": architecture if isinstance(architecture, str) and architecture else None,
        "layers": layers,
        "attention_heads": heads,
        "kv_heads": _int(get("num_key_value_heads")) or heads,
        "head_dim": head_dim,
        "kv_layers": kv_layers,
        "hidden_size": hidden,
        "context_length": _int(get("max_position_embeddings")),
        "moe": bool(experts),
        # MoE without a known shared-expert field: unknown, not "none"
        "shared_experts": (None if experts and shared is None else
                           bool(experts) and isinstance(shared, int) and not isinstance(shared, bool) and shared > 0),
        "hybrid_gdn": hybrid,
        "vision": isinstance(config.get("vision_config"), dict),
        "linear_num_value_heads": _int(get("linear_num_value_heads")),
        "quantization": quantization,
        "quantization_said": said,
        "dtype_bytes": DTYPE_BYTES.get(dtype) if isinstance(dtype, str) else None,
    }


def family(quantization):
    return next((name for name, members in FAMILIES.items() if quantization in members), quantization)


# recipe field -> the checkpoint's fact (model.kv_cache.* under the mapping)
FIELDS = (
    ("architecture", "architecture"),
    ("attention_heads", "attention_heads"),
    ("kv_cache.kv_heads", "kv_heads"),
    ("kv_cache.head_dim", "head_dim"),
    ("kv_cache.layers", "kv_layers"),
    ("context_length", "context_length"),
    ("moe", "moe"),
    ("shared_experts", "shared_experts"),
    ("hybrid_gdn", "hybrid_gdn"),
    ("vision", "vision"),
    ("linear_num_value_heads", "linear_num_value_heads"),
    ("quantization", "quantization"),
)


def field(model, path):
    """(present, value) of a dotted field of a mapping ('kv_cache.layers'); the recipe's schema
    reads its fields the same way."""
    value = model
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return False, None
        value = value[key]
    return True, value


def contradictions(model, found):
    """[(recipe field, the recipe's value, the checkpoint's value)] where a fact the recipe gives
    (model.*) is not what the checkpoint says. Facts the checkpoint does not give are not judged;
    quantization is compared by family (int4, fp8, nvfp4, unquantized)."""
    out = []
    for path, key in FIELDS:
        present, mine = field(model, path)
        theirs = found.get(key)
        if not present or mine is None or theirs is None:
            continue
        if key == "quantization":
            if family(mine) != family(theirs):
                out.append(("model." + path, mine, "%s (%s)" % (theirs, found.get("quantization_said"))))
        elif mine != theirs:
            out.append(("model." + path, mine, theirs))
    return out


def complete(model, found):
    """The recipe's model facts with those it omits taken from the checkpoint (a new mapping)."""
    out = dict(model)
    for path, key in FIELDS:
        if found.get(key) is None or field(model, path)[0] and field(model, path)[1] is not None:
            continue
        if path.startswith("kv_cache."):
            continue  # the mapping is given whole, below
        out[path] = found[key]
    if not isinstance(model.get("kv_cache"), dict) and all(found.get(k) for k in ("kv_layers", "kv_heads", "head_dim")):
        out["kv_cache"] = {"layers": found["kv_layers"], "kv_heads": found["kv_heads"], "head_dim": found["head_dim"]}
    return out
