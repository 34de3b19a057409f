# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: scrape_targets
short_description: The cluster's Prometheus scrape targets, as file_sd target groups per job
description:
  - From the preflight's plan, the Prometheus C(file_sd) target groups of each job - C(node) (the node exporter of
    every node, on its first rail's address), C(vllm) (vLLM's C(/metrics) on the head's API port) and C(ray) (the
    metrics export port of every node's Ray, with the Ray executor only) - each target labelled with its C(node),
    C(rank) and C(recipe).
  - The monitoring role writes one JSON file per job for its Prometheus on the head; a Prometheus you already run
    reads the same files (C(file_sd_configs)).
version_added: 0.3.0
author: sparkops.cluster developers (@sparkops)
positional: node_exporter_port, ray_metrics_port, bind
options:
  _input:
    description: The plan (C(sparkops_plan)).
    type: dict
    required: true
  node_exporter_port:
    description: The node exporters' port.
    type: int
    default: 9100
  ray_metrics_port:
    description: Ray's metrics export port on every node.
    type: int
    default: 6382
  bind:
    description: Where the node exporters listen, C(rail) or C(loopback) (a single host only).
    type: str
    default: rail
"""

EXAMPLES = r"""
- name: The node exporters' targets
  ansible.builtin.copy:
    content: "{{ (sparkops_plan | sparkops.cluster.scrape_targets).node | to_nice_json }}"
    dest: /etc/sparkops/prometheus/targets/node.json
    mode: "0644"
"""

RETURN = r"""
_value:
  description: "{node: [target groups], vllm: [...], ray: [...]}, each group {targets: [host:port], labels: {...}}."
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.sparkops.cluster.plugins.plugin_utils._monitoring import TargetsError
from ansible_collections.sparkops.cluster.plugins.plugin_utils._monitoring import scrape_targets as _targets


def _scrape_targets(plan, node_exporter_port=9100, ray_metrics_port=6382, bind="rail"):
    try:
        return _targets(plan, int(node_exporter_port), int(ray_metrics_port), str(bind))
    except TargetsError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule:
    def filters(self):
        return {"scrape_targets": _scrape_targets}
