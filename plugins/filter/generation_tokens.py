# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: generation_tokens
short_description: The tokens a vLLM server has generated, from its /metrics page
description:
  - Sums C(vllm:generation_tokens_total) over its series (one per model and engine) in the
    Prometheus text of vLLM's C(/metrics). Read twice, it tells whether the engine generates
    (a C(/health) can stay green through a decode deadlock) and at what rate.
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
options:
  _input:
    description: The text of C(/metrics).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Tokens generated so far
  ansible.builtin.debug:
    msg: "{{ metrics.content | sparkops.cluster.generation_tokens }}"
"""

RETURN = r"""
_value:
  description: The sum (a float), or null when the page has no such counter.
  type: float
"""

from ansible_collections.sparkops.cluster.plugins.module_utils._status import generation_tokens


def _generation_tokens(metrics):
    return generation_tokens(metrics)


class FilterModule:
    def filters(self):
        return {"generation_tokens": _generation_tokens}
