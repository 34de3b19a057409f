# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: plan_node
short_description: One node's entry in the preflight's plan, with its rank
description:
  - Finds O(host) in the C(nodes) of a plan made by M(sparkops.cluster.preflight) and
    returns its entry (name, rails, command, env, ...) with C(rank), its index in the
    plan (0 is the head).
  - Fails naming the host and the plan's nodes when the host is not in the plan.
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
positional: host
options:
  _input:
    description: The plan.
    type: dict
    required: true
  host:
    description: The node.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: This node's first rail address
  ansible.builtin.debug:
    msg: "{{ (sparkops_plan | sparkops.cluster.plan_node(inventory_hostname)).rails[0].address }}"
"""

RETURN = r"""
_value:
  description: The node's entry of the plan with C(rank) added.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.sparkops.cluster.plugins.module_utils._planner import plan_node


def _plan_node(plan, host):
    try:
        return plan_node(plan, host)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule:
    def filters(self):
        return {"plan_node": _plan_node}
