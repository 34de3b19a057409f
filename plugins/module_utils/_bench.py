# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Serving benchmark arithmetic: streamed responses, per-level statistics, the
recipe's expected band and the memory-bandwidth bound. Pure Python."""

from __future__ import annotations

import json
import time

from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError

# bytes each weight takes when it is read for a token
BYTES_PER_PARAM = {"bf16": 2.0, "fp16": 2.0, "none": 2.0, "fp8": 1.0, "nvfp4": 0.5, "awq": 0.5, "gptq": 0.5,
                   "autoround": 0.5, "int4": 0.5}
# Two chunks closer than this arrived together (read from the socket in one go), not as
# two decode steps: a decode step of any real model takes longer.
BURST_GAP_S = 0.001
# deterministic prompt words; common words are one token in the large tokenizers
WORDS = ("the fabric carries tensor ranks across nodes while pipeline stages pass hidden states "
         "and every node reads its share of the weights for each token").split()


def prompt(words):
    """A deterministic prompt of about `words` words (close to as many tokens)."""
    return " ".join(WORDS[i % len(WORDS)] for i in range(max(1, int(words))))


class StreamDeadline(Exception):
    """A stream went on past its deadline (tokens, or only keep-alive comments)."""


def sse_payloads(lines, deadline=None, clock=time.monotonic):
    """JSON payloads of a server-sent event stream ("data: {...}" lines) until [DONE].

    With a deadline (a clock() value), every line read counts, comments and keep-alives
    included: a server that only sends ": ping" lines raises StreamDeadline.
    """
    for raw in lines:
        if deadline is not None and clock() > deadline:
            raise StreamDeadline()
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        line = line.strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            yield json.loads(data)
        except ValueError:
            raise ToolOutputError("vLLM API stream", "a data line is not JSON", line=data[:200])


def carries_token(payload):
    """Whether a chat completion chunk carries generated text (answer, reasoning or tool call)."""
    for choice in payload.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning") or delta.get("tool_calls"):
            return True
    return False


def record(started, token_times, usage, error=None):
    """One request's figures from its start time, the arrival time of each token chunk and
    the final usage (prompt_tokens, completion_tokens)."""
    usage = usage or {}
    out = {"error": error, "prompt_tokens": usage.get("prompt_tokens"),
           "completion_tokens": usage.get("completion_tokens", len(token_times)),
           "ttft": None, "itl": [], "decode_tok_s": None, "latency": None, "bursty": False}
    if token_times:
        out["ttft"] = token_times[0] - started
        out["latency"] = token_times[-1] - started
        out["itl"] = [b - a for a, b in zip(token_times, token_times[1:])]
        span = token_times[-1] - token_times[0]
        # Most chunks arriving together means the stream was held up (a CPU-starved
        # client or API server) and released at once: its span says nothing of the decode.
        out["bursty"] = bool(out["itl"]) and sum(1 for g in out["itl"] if g < BURST_GAP_S) * 2 > len(out["itl"])
        # chunks may carry several tokens: the usage count over the decode span
        if span > 0 and out["completion_tokens"] and out["completion_tokens"] > 1 and not out["bursty"]:
            out["decode_tok_s"] = (out["completion_tokens"] - 1) / span
    if error is None and not token_times:
        out["error"] = "the response carried no tokens"
    return out


def percentile(values, pct):
    """Linear-interpolated percentile (numpy's default method); None for no values."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    k = (len(vals) - 1) * pct / 100.0
    lo = int(k)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (k - lo)


def _ms(value):
    return None if value is None else round(value * 1000.0, 1)


def summarize(records, wall_s, concurrency, prompt_words):
    """Statistics of one load level."""
    ok = [r for r in records if r["error"] is None]
    errors = [r["error"] for r in records if r["error"] is not None]
    tokens = sum(r["completion_tokens"] or 0 for r in ok)
    decode = [r["decode_tok_s"] for r in ok if r["decode_tok_s"] is not None]
    itl = [x for r in ok for x in r["itl"]]
    prompts = [r["prompt_tokens"] for r in ok if r["prompt_tokens"] is not None]
    return {
        "concurrency": concurrency,
        "prompt_words": prompt_words,
        "prompt_tokens": round(sum(prompts) / len(prompts), 1) if prompts else None,
        "requests": len(records),
        "completed": len(ok),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
        "wall_s": round(wall_s, 3),
        "requests_per_s": round(len(ok) / wall_s, 3) if wall_s > 0 else None,
        "output_tok_s": round(tokens / wall_s, 2) if wall_s > 0 else None,
        "decode_tok_s": round(sum(decode) / len(decode), 2) if decode else None,
        "bursty_requests": sum(1 for r in ok if r["bursty"]),
        "ttft_ms": {"p50": _ms(percentile([r["ttft"] for r in ok], 50)),
                    "p99": _ms(percentile([r["ttft"] for r in ok], 99))},
        "itl_ms": {"p50": _ms(percentile(itl, 50)), "p99": _ms(percentile(itl, 99))},
    }


def decode_bound(recipe, hw, tensor_parallel):
    """The single-stream decode ceiling set by memory bandwidth: every token reads the
    active weights once, split over the tensor-parallel ranks (pipeline stages run one
    after another, so they do not raise it). None when the recipe lacks active_params_b."""
    model = recipe["model"]
    active_b = model.get("active_params_b")
    bandwidth = hw.get("memory_bandwidth_gbs")
    if not active_b or not bandwidth:
        return None
    per_param = BYTES_PER_PARAM.get(model["quantization"], 2.0)
    per_rank_gb = active_b * per_param / tensor_parallel
    return {
        "tok_s": round(bandwidth / per_rank_gb, 2),
        "basis": "%g B active params x %g bytes (%s) / TP %d = %.3g GB read per token per GPU at %g GB/s"
                 % (active_b, per_param, model["quantization"], tensor_parallel, per_rank_gb, bandwidth),
    }


def verdict(levels, band=None, bound=None):
    """Compare the single-stream decode speed (lowest concurrency, shortest prompt) with the
    recipe's expected band and the bandwidth bound."""
    if not levels:
        raise ValueError("no benchmark levels to judge")
    base = min(levels, key=lambda lv: (lv["concurrency"], lv["prompt_words"]))
    tok_s = base["decode_tok_s"]
    out = {"single_stream_decode_tok_s": tok_s, "concurrency": base["concurrency"], "prompt_words": base["prompt_words"],
           "expected_band": list(band) if band else None, "band_status": None, "bound_tok_s": None,
           "fraction_of_bound": None, "errors": sum(lv["errors"] for lv in levels),
           "peak_output_tok_s": max((lv["output_tok_s"] or 0) for lv in levels)}
    if band and tok_s is not None:
        low, high = band
        out["band_status"] = "below" if tok_s < low else "above" if tok_s > high else "within"
    if bound and tok_s is not None:
        out["bound_tok_s"] = bound["tok_s"]
        # three significant digits: a CPU engine at 8 tok/s of a 31,000 tok/s bound is 0.000257, not 0.0
        out["fraction_of_bound"] = float("%.3g" % (tok_s / bound["tok_s"]))
    return out


def describe(v):
    """One line for the operator."""
    if v["single_stream_decode_tok_s"] is None:
        return ("no single-stream decode speed measured (%d errors; or the stream came in bursts: see bursty_requests)"
                % v["errors"])
    text = "single-stream decode %.1f tok/s" % v["single_stream_decode_tok_s"]
    if v["band_status"]:
        text += ", %s the expected %g-%g tok/s" % (v["band_status"], v["expected_band"][0], v["expected_band"][1])
    else:
        text += ", no expected band in the recipe"
    if v["fraction_of_bound"] is not None:
        text += ", %.3g%% of the memory-bandwidth bound %.1f tok/s" % (100 * v["fraction_of_bound"], v["bound_tok_s"])
    return text + "; peak output %.1f tok/s; %d errors" % (v["peak_output_tok_s"], v["errors"])


def table(levels):
    """The sweep as aligned text lines, one per level."""
    def f(value, fmt):
        return "-" if value is None else fmt % value
    names = ("concurrency", "prompt_tok", "decode_tok/s", "output_tok/s", "req/s", "TTFT p50/p99 ms",
             "ITL p50/p99 ms", "errors", "bursty")
    head = "%11s %10s %12s %12s %7s %16s %16s %6s %6s" % names
    rows = [head]
    for lv in sorted(levels, key=lambda lv: (lv["prompt_words"], lv["concurrency"])):
        rows.append("%11d %10s %12s %12s %7s %16s %16s %6d %6d" % (
            lv["concurrency"], f(lv["prompt_tokens"], "%.0f"), f(lv["decode_tok_s"], "%.1f"),
            f(lv["output_tok_s"], "%.1f"), f(lv["requests_per_s"], "%.2f"),
            "%s/%s" % (f(lv["ttft_ms"]["p50"], "%.0f"), f(lv["ttft_ms"]["p99"], "%.0f")),
            "%s/%s" % (f(lv["itl_ms"]["p50"], "%.1f"), f(lv["itl_ms"]["p99"], "%.1f")), lv["errors"],
            lv.get("bursty_requests", 0)))
    return rows


PLOT_FIELDS = {"concurrency": int, "prompt_words": int, "output_tok_s": float, "decode_tok_s": float, "ttft_ms": dict}


def plot_levels(levels):
    """The benchmark levels the plot needs, checked and with numbers as numbers.

    Raises ValueError naming levels[i].field and what it must be; numbers given as
    strings (a Jinja-templated value) are converted. Rates may be null (nothing measured).
    """
    if not isinstance(levels, list) or not levels:
        raise ValueError("levels is empty: nothing to plot (give the 'level' of each serving_benchmark result)")
    out = []
    for i, level in enumerate(levels):
        if not isinstance(level, dict):
            raise ValueError("levels[%d] must be a mapping (the 'level' of a serving_benchmark result), got %r" % (i, level))
        clean = dict(level)
        for key, kind in PLOT_FIELDS.items():
            if key not in level:
                raise ValueError("levels[%d] lacks %s: give the 'level' of each serving_benchmark result" % (i, key))
            value = level[key]
            if value is None and key in ("output_tok_s", "decode_tok_s", "ttft_ms"):
                continue
            if kind is dict:
                if not isinstance(value, dict):
                    raise ValueError("levels[%d].%s must be a mapping with p50 and p99, got %r" % (i, key, value))
                continue
            try:
                number = kind(value) if not isinstance(value, bool) else None
            except (TypeError, ValueError):
                number = None
            if number is None or (kind is int and float(value) != number) or number < (1 if kind is int else 0):
                raise ValueError("levels[%d].%s must be %s, got %r" % (
                    i, key, "a whole number of at least 1" if kind is int else "a number of at least 0", value))
            clean[key] = number
        out.append(clean)
    return out
