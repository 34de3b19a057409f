# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: status_report
short_description: The cluster's health in one table, from what playbooks/status.yml read
description:
  - Turns the results the status playbook registered on each node (network facts, GPU and
    memory facts, the engine container) and on the head (Ray's node list, the API's health,
    models, one completion, two reads of C(/metrics)) into one row per node, the cluster's
    lines, a verdict and one sentence per problem naming the node and the fix.
  - An unreachable node, a failed read, an absent container or a silent API is reported,
    never an error of the filter.
version_added: 0.2.0
author: sparkops.cluster developers (@sparkops)
positional: nodes, ray, serving, now
options:
  _input:
    description: The plan (M(sparkops.cluster.preflight)'s C(plan)).
    type: dict
    required: true
  nodes:
    description: Per node name, its registered results C(net), C(gpu), C(memory), C(engine).
    type: dict
    required: true
  ray:
    description: The registered result of C(ray_nodes.py) in the head's engine container.
    type: dict
    required: true
  serving:
    description: >-
      C(vllm_serve_status) as the vllm_serve role's status entry point sets it - the
      registered results C(health), C(models), C(completion), C(metrics_before),
      C(metrics_after), C(window_s) (seconds between the two metrics reads), C(url), and
      C(benchmark) (C(file) and C(content) of the newest benchmark result), or empty.
    type: dict
    required: true
  now:
    description: The controller's time, ISO 8601 UTC (for the engines' uptimes).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Print the report
  ansible.builtin.debug:
    msg: "{{ (sparkops_plan | sparkops.cluster.status_report(nodes, ray, serving)).lines }}"
"""

RETURN = r"""
_value:
  description: healthy (bool), problems (list), nodes (rows), ray, serving, benchmark, lines (the table).
  type: dict
"""

from ansible_collections.sparkops.cluster.plugins.module_utils._status import report


def _status_report(plan, nodes, ray, serving, now=""):
    return report(plan, nodes, ray, serving, now or None)


class FilterModule:
    def filters(self):
        return {"status_report": _status_report}
