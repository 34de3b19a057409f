#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: preflight
short_description: Refuse known-bad serving plans before touching a node
description:
  - Loads a model recipe (C(recipes/NAME.yml)), applies O(overrides), validates it
    against the recipe schema and checks the plan against the rules drawn from the
    field reports (C(recipes/known_failures.yml)). Each refusal names the option, the
    reason, the fix and the upstream source.
  - O(stage=static) uses only the recipe and the inventory (rail addresses, subnets,
    MTU), so it works while the nodes are down. O(stage=dynamic) also checks gathered
    node facts (O(facts)), that is driver versions, rails up, memory balance, leaked
    memory, loopback hostnames and model presence.
  - Returns the plan, per node rail addresses, environment and the exact engine command.
  - Runs on the controller only (action plugin); never changes anything.
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.attributes.READ_ONLY
options:
  recipe:
    description: Recipe name (file name without C(.yml)).
    type: str
    required: true
  overrides:
    description: Deep-merged into the recipe (for example another image, or the tiny model of the simulated cluster).
    type: dict
    default: {}
  hosts:
    description: Nodes of the plan in rank order; the first is the head. Defaults to the play's hosts.
    type: list
    elements: str
  stage:
    description: Which rules to run.
    type: str
    choices: [static, dynamic]
    default: static
  facts:
    description:
      - Per host facts for O(stage=dynamic), each a mapping with driver_version, rails_up,
        rail_mtu, mem_available, reboot_required, reboot_reason, hostname_loopback, model_bytes.
    type: dict
    default: {}
  recipes_dir:
    description: Directory of the recipes; defaults to the collection's C(recipes/).
    type: path
  api_host:
    description: Address the API server binds to, in the engine command. Keep the default unless the API must be reachable from other machines.
    type: str
    default: 127.0.0.1
  api_port:
    description: Port of the API server, in the engine command.
    type: int
    default: 8000
  head_only:
    description:
      - Plan one engine on the head with TP=PP=1 and vLLM's default executor, the
        followers running none. For the simulated cluster, whose CPU build of vLLM refuses
        the Ray executor; the plan then also holds C(production_command).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Refuse a known-bad plan in seconds
  sparkops.cluster.preflight:
    recipe: qwen397b
  run_once: true
  register: preflight
"""

RETURN = r"""
plan:
  description: >-
    The plan (memory per GPU, head, per node rails, environment and engine command, the
    expected decode band and C(decode_bound), the single-stream decode ceiling set by
    memory bandwidth).
  returned: success or refusal
  type: dict
refusals:
  description: Every refused point (rule, option, reason, fix, source).
  returned: always
  type: list
  elements: dict
recipe:
  description: The recipe after overrides.
  returned: when the recipe is valid
  type: dict
warnings:
  description: Points that do not refuse the plan.
  returned: when the recipe is valid
  type: list
  elements: str
"""
