# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: ray_state
short_description: Whether a Ray cluster has every expected node and GPU
description:
  - Reads the JSON of C(ray.nodes()) (as printed by the engine_container role in the head's
    engine container) and compares it with the nodes the plan expects.
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
positional: expected, gpus_per_node
options:
  _input:
    description: Output of C(print(json.dumps(ray.nodes()))).
    type: str
    required: true
  expected:
    description: Mapping of each node's Ray address (its first rail address) to its inventory name.
    type: dict
    required: true
  gpus_per_node:
    description: GPUs each node must bring.
    type: int
    default: 1
"""

EXAMPLES = r"""
- name: Fail naming the nodes that did not join
  ansible.builtin.assert:
    that: state.whole
    fail_msg: "Ray is missing {{ state.missing | join(', ') }}"
  vars:
    state: "{{ ray_nodes.stdout | sparkops.cluster.ray_state({'192.168.100.10': 'spark-alpha'}, 1) }}"
"""

RETURN = r"""
_value:
  description: nodes, gpus, missing (names), dead (names), unexpected (addresses), whole (bool), summary.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from ansible_collections.sparkops.cluster.plugins.module_utils._ray import cluster_state


def _ray_state(nodes_json, expected, gpus_per_node=1):
    try:
        return cluster_state(str(nodes_json), dict(expected), int(gpus_per_node))
    except ToolOutputError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule:
    def filters(self):
        return {"ray_state": _ray_state}
