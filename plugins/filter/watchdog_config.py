# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: watchdog_config
short_description: The watchdog program's configuration for one node, from the plan
description:
  - From the preflight's plan, what the watchdog of one node checks - its engine container, the vLLM processes the
    plan runs there (C(vllm serve), a rank's worker), the known-failures rows that name incidents (their kernel
    patterns and watch findings) - and on the head the completion probe through the API.
  - The watchdog role writes it as JSON for C(sparkops-watchdog.py).
version_added: 0.3.0
author: sparkops.cluster developers (@sparkops)
positional: host, options
options:
  _input:
    description: The plan (C(sparkops_plan)).
    type: dict
    required: true
  host:
    description: The node (its inventory name, a node of the plan).
    type: str
    required: true
  options:
    description:
      - The role's settings - C(period_s), C(probe_timeout), C(probe_prompt), C(probe_max_tokens), C(confirm_runs),
        C(log_lines), C(command_timeout), C(incident_dir), C(state_file), C(state_dir), C(key_file), C(restart_unit)
        (empty for no restart) and C(restart_max).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: The watchdog's configuration
  ansible.builtin.copy:
    content: "{{ sparkops_plan | sparkops.cluster.watchdog_config(inventory_hostname, __watchdog_options) | to_nice_json }}"
    dest: /etc/sparkops/watchdog.json
    mode: "0600"
"""

RETURN = r"""
_value:
  description: "The program's configuration: host, container, serves, executor, world, rows, probe, restart, ..."
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.sparkops.cluster.plugins.plugin_utils._monitoring import TargetsError
from ansible_collections.sparkops.cluster.plugins.plugin_utils._monitoring import watchdog_config as _config


def _watchdog_config(plan, host, options):
    try:
        return _config(plan, str(host), dict(options))
    except (TargetsError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("watchdog_config: %s" % exc)


class FilterModule:
    def filters(self):
        return {"watchdog_config": _watchdog_config}
