# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model recipes: schema validation and overrides. Pure Python."""

from __future__ import annotations

import copy
import re

EXECUTORS = ("ray", "mp")
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:\.?(rc|dev|post)(\d+))?(?:\+[\w.]+)?$")
QUANTIZATIONS = ("bf16", "fp16", "fp8", "nvfp4", "awq", "gptq", "autoround", "int4", "none")
# field path -> (type, required, check, what a valid value looks like)
_POSITIVE = (lambda v: v > 0, "a number above 0")
_SCHEMA = {
    "name": (str, True, None, "the recipe's file name"),
    "description": (str, False, None, "text"),
    "model.id": (str, True, None, "a model id or a path"),
    "model.size_gb": ((int, float), True, _POSITIVE, "size on disk in GB"),
    "model.architecture": (str, True, None, "the HF architecture family, e.g. qwen3_5_moe"),
    "model.moe": (bool, True, None, "true or false"),
    "model.hybrid_gdn": (bool, True, None, "true or false"),
    "model.vision": (bool, True, None, "true or false"),
    "model.active_params_b": ((int, float), False, _POSITIVE, "active parameters per token, billions"),
    "model.linear_num_value_heads": (int, False, _POSITIVE, "GDN value heads (config linear_num_value_heads)"),
    "model.quantization": (str, True, (lambda v: v in QUANTIZATIONS, "one of " + ", ".join(QUANTIZATIONS)), None),
    "hardware": (str, True, None, "a profile of recipes/hardware.yml"),
    "nodes": (int, True, _POSITIVE, "the number of nodes"),
    "parallelism.tensor": (int, True, _POSITIVE, "tensor parallel size"),
    "parallelism.pipeline": (int, True, _POSITIVE, "pipeline parallel size"),
    "parallelism.expert_parallel": (bool, True, None, "true or false"),
    "engine.image": (str, True, None, "the engine container image"),
    "engine.version": (str, True, None, "the vLLM version the image carries, e.g. 0.19.1"),
    "engine.min_version": (str, True, None, "the oldest vLLM that runs this architecture"),
    "engine.executor": (str, True, (lambda v: v in EXECUTORS, "ray or mp"), None),
    "engine.fixes": (list, False, None, "a list of upstream fixes the image carries"),
    "engine.disable_cudnn": (bool, False, None, "true or false"),
    "serving.served_model_name": (str, True, None, "the name clients ask for"),
    "serving.gpu_memory_utilization": (float, True, (lambda v: 0 < v < 1, "a fraction between 0 and 1"), None),
    "serving.max_model_len": (int, True, _POSITIVE, "context length in tokens"),
    "serving.min_kv_cache_gib": ((int, float), True, _POSITIVE, "KV cache per GPU the plan must leave, GiB"),
    "serving.args": (list, True, None, "a list of --flag=value strings"),
    "serving.env": (dict, True, None, "a mapping of environment variables"),
    "expected.decode_tok_s": (list, False, None, "[low, high] decode tokens/s from the field reports"),
    "expected.source": (str, False, None, "where the figure comes from"),
    "known_bad": (list, False, None, "a list of {option, row}: an option known to fail for this recipe and the row of "
                                     "recipes/known_failures.yml that says why"),
}


class RecipeError(ValueError):
    """A recipe field is missing or wrong; the message names it and the fix."""


def _get(data, path):
    cur = data
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def validate(recipe, source="recipe", known_rows=None):
    """Raise RecipeError listing every bad field of the recipe (known_rows: the table's ids)."""
    if not isinstance(recipe, dict):
        raise RecipeError("%s: expected a mapping, got %s" % (source, type(recipe).__name__))
    errors = []
    for path, (kind, required, check, what) in _SCHEMA.items():
        present, value = _get(recipe, path)
        if not present:
            if required:
                errors.append("%s is missing (set it to %s)" % (path, what or check[1]))
            continue
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            errors.append("%s must be %s, got %r" % (path, what or check[1], value))
            continue
        if check and not check[0](value):
            errors.append("%s must be %s, got %r" % (path, check[1], value))
    known_bad = recipe.get("known_bad")
    for i, bad in enumerate(known_bad if isinstance(known_bad, list) else []):
        if not isinstance(bad, dict) or set(bad) != {"option", "row"} or not all(isinstance(bad[k], str) for k in bad):
            errors.append("known_bad[%d] must be a mapping with the strings option (a --flag or --flag=value) and row "
                          "(an id of recipes/known_failures.yml), got %r" % (i, bad))
        elif known_rows is not None and bad["row"] not in known_rows:
            errors.append("known_bad[%d].row %s is not a row of recipes/known_failures.yml" % (i, bad["row"]))
    args = (recipe.get("serving") or {}).get("args")
    if isinstance(args, list):
        try:
            parse_args(args)
        except RecipeError as exc:
            errors.append(str(exc))
    for field in ("engine.version", "engine.min_version"):
        present, version = _get(recipe, field)
        if present and isinstance(version, str) and not _VERSION.match(version):
            errors.append("%s must be MAJOR.MINOR[.PATCH][rcN] (e.g. 0.19.1 or 0.19.1rc1), got %r" % (field, version))
    unknown = set(recipe) - {p.split(".")[0] for p in _SCHEMA}
    if unknown:
        errors.append("unknown top-level field(s) %s (known: %s)" % (
            ", ".join(sorted(unknown)), ", ".join(sorted({p.split(".")[0] for p in _SCHEMA}))))
    if errors:
        raise RecipeError("%s %s: %s" % (source, recipe.get("name", "?"), "; ".join(errors)))
    return recipe


def merge(recipe, overrides):
    """Deep-merge user overrides (dicts merge, null removes the field, anything else replaces) into a copy."""
    out = copy.deepcopy(recipe)

    def walk(dst, src):
        for k, v in src.items():
            if v is None:
                dst.pop(k, None)
            elif isinstance(v, dict) and isinstance(dst.get(k), dict):
                walk(dst[k], v)
            else:
                dst[k] = copy.deepcopy(v)
    walk(out, overrides or {})
    return out


def flag_name(text):
    """The flag as vLLM's parser reads it: '--tensor_parallel_size' -> '--tensor-parallel-size'."""
    return "--" + text[2:].replace("_", "-")


def parse_args(args):
    """[(flag, value)] of a list of engine arguments, read the way vLLM's argument parser
    reads them: dashes or underscores, '--flag=value', '--flag value' in one item, or
    '--flag' followed by its value as the next item. value is True for a bare flag.

    Raises RecipeError naming an item that is not a flag and follows no flag.
    """
    out = []
    for i, item in enumerate(args):
        if not isinstance(item, str) or not item.strip():
            raise RecipeError("serving.args[%d] must be a --flag or --flag=value string, got %r" % (i, item))
        item = item.strip()
        if item.startswith("--"):
            eq, space = item.find("="), re.search(r"\s", item)
            if eq > 0 and (space is None or eq < space.start()):
                flag, value = item[:eq], item[eq + 1:]
            elif space:
                flag, value = item[:space.start()], item[space.start():].strip()
            else:
                flag, value = item, True
            if len(flag) < 3:
                raise RecipeError("serving.args[%d] %r is not a --flag" % (i, item))
            out.append((flag_name(flag), value))
        elif out and out[-1][1] is True:
            out[-1] = (out[-1][0], item)  # the value of the flag before it
        else:
            raise RecipeError("serving.args[%d] %r is neither a --flag nor the value of one (write --flag=value)"
                              % (i, item))
    return out


def args_dict(args):
    """{flag: value} of parse_args (the last value of a flag given twice)."""
    return dict(parse_args(args))


def parse_version(text):
    """'0.19.1rc1' -> (0, 19, 1, -1, 1): release candidates sort before the release."""
    m = _VERSION.match(str(text))
    if not m:
        raise RecipeError("engine version %r is not MAJOR.MINOR[.PATCH][rcN]" % (text,))
    tag = {"dev": -2, "rc": -1, None: 0, "post": 1}[m.group(4)]
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0), tag, int(m.group(5) or 0))
