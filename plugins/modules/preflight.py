#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: preflight
short_description: Refuse known-bad serving plans before touching a node, and make the plan
description:
  - Loads a model recipe (C(NAME.yml) of your own directory C(sparkops_recipes_dir) when it has one, else of
    the collection's C(recipes/)), applies O(overrides), validates it against the recipe schema
    and checks the plan against the rules of C(data/known_failures.yml), the one table of
    what is refused, warned about and recognised in engine logs (plus the rows of your own
    C(known_failures.yml) in C(sparkops_data_dir)). Each refusal names the
    rule (the row's id), the option, the reason, the fix and the public source.
  - Engine flags are read as vLLM's own parser reads them (dashes or underscores, short
    aliases such as C(-tp), C(--flag value) in one item, dotted and JSON C(--compilation-config)),
    and every environment rule looks at every door to a variable - the hardware profile's set,
    the recipe's C(serving.env) and the role variables C(engine_container_env) and
    C(vllm_serve_env) of each node.
  - Rows of severity C(refuse) stop the plan, rows of severity C(warn) are reported. A row whose
    report pins vLLM versions is not judged outside them (C(not_judged) says so). A row you
    have checked for your setup can be accepted with C(sparkops_accept) (row id to your
    reason); the plan records it in C(accepted).
  - O(stage=static) uses only the recipe, the collection variables and the inventory (rail
    addresses, subnets, MTU), so it works while the nodes are down. O(stage=dynamic) also
    checks gathered node facts (O(facts)) - driver versions, rails up and their MTU, memory
    balance, memory held by no process, loopback hostnames. In check mode the dynamic
    stage warns instead of refusing (the facts are the nodes' before host setup's changes).
  - Returns the plan - per node rank, engine container, rails, the container's environment
    and the exact engine command - which the roles read (the deploy flow sets it as
    C(sparkops_plan)). The collection variables (C(sparkops_api_host), C(sparkops_api_port),
    C(sparkops_ray_port), C(sparkops_engine_container), C(sparkops_model_path), ...; every one in
    docs/reference.md) are read from the host's variables, checked, and returned
    in C(plan.settings).
  - Runs on the controller only (action plugin); never changes anything.
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.attributes.READ_ONLY
options:
  recipe:
    description: Recipe name (file name without C(.yml)); default C(sparkops_recipe).
    type: str
  overrides:
    description:
      - Deep-merged into the recipe (dicts merge, null removes a field, a list replaces the whole
        list); default C(sparkops_recipe_overrides).
    type: dict
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
      - Per host facts for O(stage=dynamic), each what M(sparkops.cluster.node_facts) returns as
        RV(sparkops.cluster.node_facts#module:preflight) (driver_version, rails_up, rail_mtu,
        mem_available, reboot_required, reboot_reason, hostname_loopback, gloo_socket_ifname,
        docker_gpus, checkpoint), with engine_check on the head.
      - Unset, each host's variable C(sparkops_node_facts), which the deploy's facts step sets.
    type: dict
"""

EXAMPLES = r"""
- name: Refuse a known-bad plan in seconds
  sparkops.cluster.preflight:
    recipe: qwen397b
  run_once: true
  register: preflight

- name: Every node's engine command
  ansible.builtin.debug:
    msg: "{{ preflight.plan.nodes | map(attribute='command') }}"
"""

RETURN = r"""
plan:
  description: >-
    The plan - recipe, model, model_path, served_model_name, hardware, executor, image,
    memory_per_gpu, expected_decode_tok_s, decode_bound (the single-stream decode ceiling set
    by memory bandwidth), head, head_address, gpus_per_node, api, ray (address, port),
    nodes (name, rank, container, address, rails, env, command),
    per_node_env_keys, log_patterns (the table's rows with log patterns), settings,
    warnings, accepted and not_judged (as below).
  returned: when the recipe, the settings and the inventory's rails could be read
  type: dict
refusals:
  description: >-
    Every refused point, of every class (recipe file and fields, settings, node count,
    inventory, recipe rules, facts) - rule (the row id of data/known_failures.yml),
    option, reason, fix, sources, severity, title.
  returned: always
  type: list
  elements: dict
  sample:
    - rule: KF-1
      option: --enable-expert-parallel
      reason: expert parallel deadlocks on hybrid GDN/Mamba models (qwen3_5_moe) during graph capture or the profile run
      fix: drop --enable-expert-parallel (and data parallel with experts); use tensor or pipeline parallel
      sources: ["vllm-project/vllm#41862 (EP Deadlock with Hybrid GDN/Mamba Architecture)"]
      severity: refuse
      title: Expert parallel deadlocks on hybrid GDN/Mamba models
recipe:
  description: The recipe after overrides.
  returned: when the recipe is valid
  type: dict
warnings:
  description: Points that do not refuse the plan (rows of severity warn, and the accepted ones).
  returned: when the recipe is valid
  type: list
  elements: str
accepted:
  description: Findings of the rows named in C(sparkops_accept), each with C(accepted), the reason given.
  returned: when the recipe is valid
  type: list
  elements: dict
not_judged:
  description: Rows not judged for this plan (rule, title, note), e.g. outside the vLLM versions of their report.
  returned: when the recipe is valid
  type: list
  elements: dict
"""
