# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model recipes: schema validation and overrides. Pure Python."""

from __future__ import annotations

import copy
import difflib
import json
import re

from ansible_collections.sparkops.cluster.plugins.module_utils._checkpoint import field

try:
    from packaging.version import InvalidVersion, Version
except ImportError:  # ansible-core depends on it; the static preflight names it if missing (PLAN-12)
    Version = None

    class InvalidVersion(ValueError):
        """packaging's, when packaging is missing."""

EXECUTORS = ("ray", "mp")
INT4 = ("awq", "gptq", "autoround", "int4")
QUANTIZATIONS = ("bf16", "fp16", "fp8", "nvfp4", "awq", "gptq", "autoround", "int4", "none")
# field path -> (type, required, check, what a valid value looks like). A required field
# under an optional mapping (model.kv_cache.*) is required when the mapping is given.
_POSITIVE = (lambda v: v > 0, "a number above 0")
# What an architecture (config.json's model_type) is, as vLLM's model of it is built
# (vllm/model_executor/models/<name>.py): (moe, hybrid_gdn, vision). A recipe may leave these
# traits out for an architecture named here; for another it gives them.
TRAITS = ("moe", "hybrid_gdn", "vision")
ARCHITECTURES = {
    "qwen3_5_moe": (True, True, True),    # qwen3_5_moe.py: VL + hybrid GDN/attention + MoE
    "qwen3_5": (False, True, True),       # qwen3_5.py: the dense Qwen3.5
    "qwen3_next": (True, True, False),    # qwen3_next.py: hybrid GDN + MoE, text only
    "qwen3_vl_moe": (True, False, True),  # qwen3_vl_moe.py
    "qwen3_vl": (False, False, True),     # qwen3_vl.py
    "qwen3_moe": (True, False, False),    # qwen3_moe.py
    "minimax_m2": (True, False, False),   # minimax_m2.py
    "deepseek_v3": (True, False, False),  # deepseek_v2.py serves V3's model_type too
    "qwen3": (False, False, False),
    "qwen2": (False, False, False),
    "llama": (False, False, False),
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_LOCAL_PATH = re.compile(r"^/(?:[A-Za-z0-9_.@+-]+/)*[A-Za-z0-9_.@+-]+/?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/+-]*$")
# A recipe's name (its file's, without .yml): it names systemd units' descriptions, labels and
# files on the controller, so it is one safe word: no path, no space, no newline
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*\Z")
NAME_RULE = "lower-case letters, digits, '.', '_' and '-', starting with a letter or a digit"
_MODEL_ID = (lambda v: bool(_HUB_ID.match(v) or _LOCAL_PATH.match(v) and "/../" not in v + "/"),
             "a Hugging Face id (org/name) or an absolute path of the weights")
# [registry[:port]/]repo[:tag][@sha256:64 hex] (Docker's reference grammar, lower case repo)
_IMAGE_REF = re.compile(r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._/-][a-z0-9]+)*"
                        r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")
_IMAGE = (lambda v: bool(_IMAGE_REF.match(v)),
          "an image reference, repo:tag or repo@sha256:<64 hex digits> (a digest pins the bytes)")
_SERVED = (lambda v: bool(_NAME.match(v)), "a name of letters, digits and . _ - : / + (no spaces)")
# Ray with token authentication (RAY_AUTH_MODE=token, Ray 2.52): the least a built image gets
RAY_LEAST = (2, 52, 0)
_RAY_VERSION = re.compile(r"^([0-9]+)\.([0-9]+)\.([0-9]+)\Z")
_RAY = (lambda v: bool(_RAY_VERSION.match(v)) and tuple(int(x) for x in _RAY_VERSION.match(v).groups()) >= RAY_LEAST,
        "an exact Ray release, %d.%d.%d or later (token authentication), e.g. 2.60.0" % RAY_LEAST)
# A pip requirement the built image gets: name[extras] with exact or bounded versions, nothing
# else (it is written into a Dockerfile's RUN line): no URL, no option, no space
PIP_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[A-Za-z0-9._-]+(?:,[A-Za-z0-9._-]+)*\])?"
                             r"(?:(?:==|>=|<=|~=|!=|<|>)[A-Za-z0-9.*+!_-]+(?:,(?:==|>=|<=|~=|!=|<|>)[A-Za-z0-9.*+!_-]+)*)?\Z")
_SCHEMA = {
    "name": (str, True, (lambda v: bool(NAME.match(v)), NAME_RULE), "the recipe's file name"),
    "description": (str, False, None, "text"),
    "model": (dict, True, None, "a mapping: the model's facts"),
    "model.id": (str, True, _MODEL_ID, None),
    "model.size_gb": ((int, float), True, _POSITIVE, "size on disk in GB"),
    "model.architecture": (str, True, None, "the HF architecture family, e.g. qwen3_5_moe"),
    "model.moe": (bool, False, None, "true or false"),
    "model.hybrid_gdn": (bool, False, None, "true or false"),
    "model.vision": (bool, False, None, "true or false"),
    "model.shared_experts": (bool, False, None, "true or false: MoE layers with a shared expert (config "
                                                "shared_expert_intermediate_size)"),
    "model.active_params_b": ((int, float), False, _POSITIVE, "active parameters per token, billions"),
    "model.linear_num_value_heads": (int, False, _POSITIVE, "GDN value heads (config linear_num_value_heads)"),
    "model.attention_heads": (int, False, _POSITIVE, "attention heads (config num_attention_heads)"),
    "model.context_length": (int, False, _POSITIVE, "the model's context (config max_position_embeddings)"),
    "model.kv_cache": (dict, False, None, "a mapping {layers, kv_heads, head_dim} from the model's config"),
    "model.kv_cache.layers": (int, True, _POSITIVE, "layers that keep a KV cache (full-attention layers)"),
    "model.kv_cache.kv_heads": (int, True, _POSITIVE, "KV heads (config num_key_value_heads)"),
    "model.kv_cache.head_dim": (int, True, _POSITIVE, "head dimension (config head_dim)"),
    "model.allow_unpinned_remote_code": (bool, False, None, "true to run the hub's code of this model unpinned "
                                                            "(--trust-remote-code without --revision)"),
    "model.quantization": (str, True, (lambda v: v in QUANTIZATIONS, "one of " + ", ".join(QUANTIZATIONS)), None),
    "hardware": (str, True, None, "a profile of data/hardware.yml"),
    "nodes": (int, True, _POSITIVE, "the number of nodes"),
    "parallelism": (dict, True, None, "a mapping {tensor, pipeline, expert_parallel}"),
    "parallelism.tensor": (int, True, _POSITIVE, "tensor parallel size"),
    "parallelism.pipeline": (int, True, _POSITIVE, "pipeline parallel size"),
    "parallelism.expert_parallel": (bool, True, None, "true or false"),
    "engine": (dict, True, None, "a mapping: the engine image and its vLLM"),
    "engine.image": (str, True, _IMAGE, None),
    "engine.version": (str, True, None, "the vLLM version the image carries, e.g. 0.19.1"),
    "engine.min_version": (str, True, None, "the oldest vLLM that runs this architecture"),
    "engine.executor": (str, True, (lambda v: v in EXECUTORS, "ray or mp"), None),
    "engine.fixes": (list, False, None, "a list of upstream fixes the image carries"),
    "engine.disable_cudnn": (bool, False, None, "true or false"),
    "engine.build": (dict, False, None, "a mapping {ray, pip}: the serving image is built on the head from "
                                        "engine.image with Ray added (role engine_image)"),
    "engine.build.ray": (str, True, _RAY, None),
    "engine.build.pip": (list, False, None, "a list of pip requirements (name[extras]==version) the image gets too"),
    "serving": (dict, True, None, "a mapping: how the model is served"),
    "serving.served_model_name": (str, True, _SERVED, None),
    "serving.gpu_memory_utilization": (float, True, (lambda v: 0 < v < 1, "a fraction between 0 and 1"), None),
    "serving.max_model_len": (int, True, _POSITIVE, "context length in tokens"),
    "serving.concurrency": (int, False, _POSITIVE, "requests the KV cache must hold at max_model_len at once "
                                                   "(default 1)"),
    "serving.min_kv_cache_gib": ((int, float), True, _POSITIVE, "KV cache per GPU the plan must leave, GiB"),
    "serving.args": (list, True, None, "a list of --flag=value strings"),
    "serving.env": (dict, True, None, "a mapping of environment variables"),
    "expected": (dict, False, None, "a mapping {decode_tok_s, source}"),
    "expected.decode_tok_s": (list, False, None, "[low, high] decode tokens/s from the field reports"),
    "expected.source": (str, False, None, "where the figure comes from"),
    "known_bad": (list, False, None, "a list of {option, row}: an option known to fail for this recipe and the row of "
                                     "data/known_failures.yml that says why"),
}
_SECTIONS = {p for p, spec in _SCHEMA.items() if spec[0] is dict and p not in ("serving.env",)}


class RecipeError(ValueError):
    """A recipe field is missing or wrong; the message names it and the fix."""


_get = field  # (present, value) of a dotted field


def _unknown_keys(recipe):
    """Keys the schema does not know, at the top and in every section, each with the
    closest known key when one is close (a typo)."""
    out = []
    for section in [""] + sorted(_SECTIONS):
        data = recipe if not section else _get(recipe, section)[1]
        if not isinstance(data, dict):
            continue
        prefix = section + "." if section else ""
        known = {p[len(prefix):].split(".")[0] for p in _SCHEMA if p.startswith(prefix) and p != section}
        for key in sorted(set(map(str, data)) - known):
            close = difflib.get_close_matches(key, sorted(known), n=1)
            out.append("%s%s is not a recipe field (%s)" % (
                prefix, key, "did you mean %s%s?" % (prefix, close[0]) if close else
                "known: " + ", ".join(prefix + k for k in sorted(known))))
    return out


def _env_errors(env, where="serving.env"):
    out = []
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            out.append("%s key %r is not an environment variable name (letters, digits, _; not starting with a digit)"
                       % (where, key))
        elif isinstance(value, (dict, list)) or value is None:
            out.append("%s.%s must be a string or a number, got %r (quote it: '1')" % (where, key, value))
    return out


def _traits(model):
    """Fill the traits (moe, hybrid_gdn, vision) a recipe leaves out from its architecture;
    the errors for an architecture the table does not know whose traits are not given."""
    arch = model.get("architecture")
    missing = [t for t in TRAITS if t not in model]
    if not missing or not isinstance(arch, str):
        return []
    if arch not in ARCHITECTURES:
        return ["model.%s is missing: architecture %r is not one whose traits the collection knows (%s); give "
                "model.%s (true or false)" % (missing[0], arch, ", ".join(sorted(ARCHITECTURES)),
                                              ", model.".join(missing))]
    model.update((t, v) for t, v in zip(TRAITS, ARCHITECTURES[arch]) if t in missing)
    return []


def validate(recipe, source="recipe", known_rows=None):
    """Raise RecipeError listing every bad field of the recipe (known_rows: the table's ids)."""
    if not isinstance(recipe, dict):
        raise RecipeError("%s: expected a mapping, got %s" % (source, type(recipe).__name__))
    errors = []
    for path, (kind, required, check, what) in _SCHEMA.items():
        parent = path.rpartition(".")[0]
        if parent and not isinstance(_get(recipe, parent)[1], dict):
            continue  # the parent is missing or not a mapping: named once, for the parent
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
        if isinstance(value, str) and not value.strip():
            errors.append("%s must not be empty (set it to %s)" % (path, what or check[1]))
            continue
        if check and not check[0](value):
            errors.append("%s must be %s, got %r" % (path, check[1], value))
    errors += _unknown_keys(recipe)
    errors += _traits(recipe.get("model") if isinstance(recipe.get("model"), dict) else {})
    known_bad = recipe.get("known_bad")
    for i, bad in enumerate(known_bad if isinstance(known_bad, list) else []):
        if not isinstance(bad, dict) or set(bad) != {"option", "row"} or not all(isinstance(bad[k], str) for k in bad):
            errors.append("known_bad[%d] must be a mapping with the strings option (a --flag or --flag=value) and row "
                          "(an id of data/known_failures.yml), got %r" % (i, bad))
        elif known_rows is not None and bad["row"] not in known_rows:
            errors.append("known_bad[%d].row %s is not a row of data/known_failures.yml" % (i, bad["row"]))
        else:
            try:
                parse_args([bad["option"]])
            except RecipeError as exc:
                errors.append("known_bad[%d].option: %s" % (i, exc))
    serving = recipe.get("serving") if isinstance(recipe.get("serving"), dict) else {}
    if isinstance(serving.get("args"), list):
        try:
            args_dict(serving["args"])
        except RecipeError as exc:
            errors.append(str(exc))
    if isinstance(serving.get("env"), dict):
        errors += _env_errors(serving["env"])
    present, pip = _get(recipe, "engine.build.pip")
    for i, req in enumerate(pip if present and isinstance(pip, list) else []):
        if not isinstance(req, str) or not PIP_REQUIREMENT.match(req):
            errors.append("engine.build.pip[%d] must be a pip requirement, name[extras] with versions (e.g. "
                          "'nvidia-nccl-cu13==2.30.3'; no URL, option or space), got %r" % (i, req))
    for field in ("engine.version", "engine.min_version"):
        present, version = _get(recipe, field)
        if present and isinstance(version, str):
            try:
                parse_version(version)
            except RecipeError:
                errors.append("%s must be a version as vLLM prints it (PEP 440: 0.19.1, 0.19.1rc1, 0.20.0rc1.dev12, "
                              "0.19.1+cu130), got %r" % (field, version))
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


# The short aliases of `vllm serve` (vLLM 0.32.0's argument parser defines them so)
SHORT_FLAGS = {
    "-q": "--quantization", "-pp": "--pipeline-parallel-size", "-tp": "--tensor-parallel-size",
    "-n": "--nnodes", "-r": "--node-rank", "-dcp": "--decode-context-parallel-size",
    "-pcp": "--prefill-context-parallel-size", "-dp": "--data-parallel-size", "-dpn": "--data-parallel-rank",
    "-dpr": "--data-parallel-start-rank", "-dpl": "--data-parallel-size-local", "-dpa": "--data-parallel-address",
    "-dpp": "--data-parallel-rpc-port", "-dpb": "--data-parallel-backend", "-dph": "--data-parallel-hybrid-lb",
    "-dpe": "--data-parallel-external-lb", "-dpm": "--data-parallel-multi-port-external-lb",
    "-ep": "--enable-expert-parallel", "-sc": "--speculative-config", "-cc": "--compilation-config",
    "-ac": "--attention-config", "-asc": "--api-server-count",
}


def flag_name(text):
    """The flag as vLLM's parser reads it: underscores become dashes up to the first dot
    ('--tensor_parallel_size' -> '--tensor-parallel-size', '--compilation_config.cudagraph_mode'
    -> '--compilation-config.cudagraph_mode'); a short alias becomes its long flag."""
    if text in SHORT_FLAGS:
        return SHORT_FLAGS[text]
    name, dot, rest = text[2:].partition(".")
    return "--" + name.replace("_", "-") + dot + rest


def _split(item):
    """(flag, value or True) of one '--flag', '--flag=value' or '--flag value' item."""
    eq, space = item.find("="), re.search(r"\s", item)
    if eq > 0 and (space is None or eq < space.start()):
        return item[:eq], item[eq + 1:]
    if space:
        return item[:space.start()], item[space.start():].strip()
    return item, True


def parse_args(args):
    """[(flag, value)] of a list of engine arguments, read the way vLLM's argument parser
    reads them: dashes or underscores, short aliases (-tp), '--flag=value', '--flag value'
    in one item, or '--flag' followed by its value as the next item; -O3 is
    --optimization-level 3. value is True for a bare flag, otherwise the text given.

    Raises RecipeError naming an item that is not a flag and follows no flag.
    """
    out = []
    for i, item in enumerate(args):
        if not isinstance(item, str) or not item.strip():
            raise RecipeError("serving.args[%d] must be a --flag or --flag=value string, got %r" % (i, item))
        item = item.strip()
        if re.match(r"^-O=?\d$", item):
            out.append(("--optimization-level", item[-1]))
            continue
        flag, value = _split(item) if item.startswith("-") else (None, item)
        if flag and (flag.startswith("--") and len(flag) > 2 and not flag.startswith("---") or flag in SHORT_FLAGS):
            out.append((flag_name(flag), value))
        elif flag is None and out and out[-1][1] is True:
            out[-1] = (out[-1][0], item)  # the value of the flag before it
        elif flag:
            raise RecipeError("serving.args[%d] %r is not a flag of `vllm serve` (write --flag=value)" % (i, item))
        else:
            raise RecipeError("serving.args[%d] %r is neither a --flag nor the value of one (write --flag=value)"
                              % (i, item))
    return out


def _value(value):
    """A flag's value as vLLM reads it: a JSON object as a mapping, else the text (True for a bare flag)."""
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return parsed if isinstance(parsed, dict) else value
    return value


def _merge_into(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge_into(dst[k], v)
        else:
            dst[k] = v


def args_dict(args):
    """{flag: value} of parse_args as vLLM ends up with it: '--no-X' sets --X to False, a
    dotted flag ('--compilation-config.cudagraph_mode=none') and a JSON object value merge
    into one mapping, a flag given twice keeps its last value."""
    out = {}
    for flag, value in parse_args(args):
        name, _dot, path = flag.partition(".")
        if name.startswith("--no-") and value is True and not path:
            out["--" + name[len("--no-"):]] = False
            continue
        value = _value(value)
        if path:
            for key in reversed(path.split(".")):
                value = {key.replace("-", "_"): value}
        if isinstance(value, dict) and isinstance(out.get(name), dict):
            _merge_into(out[name], value)
        else:
            out[name] = value
    return out


def same_value(wanted, given):
    """Whether a flag's value (args_dict) is the one wanted: a bare flag (True) matches any
    value but False; a mapping matches when each of its keys matches; text compares without
    case (vLLM's enum options take either case)."""
    if wanted is True:
        return given is not False and given is not None
    if isinstance(wanted, dict):
        return isinstance(given, dict) and all(k in given and same_value(v, given[k]) for k, v in wanted.items())
    if isinstance(given, (dict, bool)) or given is None:
        return False
    return str(wanted).strip().lower() == str(given).strip().lower()


def parse_version(text):
    """A vLLM or Ray version as it prints it, read by PEP 440 (packaging, ansible-core's own
    dependency): '0.19.1rc1' sorts before '0.19.1', '0.20.0rc1.dev12' before '0.20.0rc1',
    '0.19.1+cu130' is 0.19.1 built locally. Raises RecipeError naming the text."""
    if Version is None:
        raise RecipeError("reading version %r needs the Python package packaging on the controller: "
                          "pip install packaging" % (text,))
    try:
        return Version(str(text).strip())
    except InvalidVersion:
        raise RecipeError("version %r is not a version as vLLM prints it (PEP 440, e.g. 0.19.1, 0.19.1rc1, "
                          "0.20.0rc1.dev12+g1234abc)" % (text,))


def release(version):
    """MAJOR.MINOR.PATCH of a parsed version, as a tuple (0.19 is 0.19.0): what an image tag names."""
    return (tuple(version.release) + (0, 0, 0))[:3]
