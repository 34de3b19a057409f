# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: benchmark_verdict
short_description: Judge a serving benchmark against the recipe's expected band and the bandwidth bound
description:
  - Takes the levels measured by M(sparkops.cluster.serving_benchmark) and compares the
    single-stream decode speed (lowest concurrency, shortest prompt) with the recipe's
    C(expected.decode_tok_s) band and with the memory-bandwidth bound of the plan
    (C(plan.decode_bound) of M(sparkops.cluster.preflight)).
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
positional: band, bound
options:
  _input:
    description: The levels (the C(level) of each serving_benchmark result).
    type: list
    elements: dict
    required: true
  band:
    description: "[low, high] decode tok/s the field reports measured, or null."
    type: list
    elements: float
  bound:
    description: The plan's C(decode_bound) (tok_s, basis), or null.
    type: dict
"""

EXAMPLES = r"""
- name: Judge the sweep
  ansible.builtin.set_fact:
    verdict: "{{ sweep.results | map(attribute='level') | sparkops.cluster.benchmark_verdict(plan.expected_decode_tok_s, plan.decode_bound) }}"
"""

RETURN = r"""
_value:
  description: >-
    single_stream_decode_tok_s, expected_band, band_status (within, below, above or null),
    bound_tok_s, fraction_of_bound, errors, peak_output_tok_s, summary (one line) and
    table (the levels as aligned text lines).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.sparkops.cluster.plugins.module_utils import _bench


def _verdict(levels, band=None, bound=None):
    try:
        out = _bench.verdict(list(levels), band, bound)
    except (ValueError, KeyError, TypeError) as exc:
        raise AnsibleFilterError("benchmark_verdict: %s (give the 'level' of each serving_benchmark result)" % exc)
    out["summary"] = _bench.describe(out)
    out["table"] = _bench.table(levels)
    return out


class FilterModule:
    def filters(self):
        return {"benchmark_verdict": _verdict}
