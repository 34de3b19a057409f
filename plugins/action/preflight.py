# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin sparkops.cluster.preflight: runs on the controller only."""

from __future__ import annotations

import os

import yaml
from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.sparkops.cluster.plugins.module_utils import _bench, _planner, _recipe

RECIPES = os.path.join(os.path.dirname(__file__), "..", "..", "recipes")


def _load(path):
    try:
        with open(path) as fh:
            return yaml.safe_load(fh)
    except OSError as exc:
        raise AnsibleError("cannot read %s: %s" % (path, exc))


def node_env(hw, recipe, rails, head_rail_address, executor):
    """The environment of one node's engine container, derived from its rails."""
    env = dict(hw.get("env") or {})
    env.update({k: str(v) for k, v in recipe["serving"]["env"].items()})
    netdevs = [r["netdev"] for r in rails]
    env.update({
        "VLLM_HOST_IP": rails[0]["address"],
        "NCCL_SOCKET_IFNAME": "=" + ",".join(netdevs),
        "GLOO_SOCKET_IFNAME": netdevs[0],
        "TP_SOCKET_IFNAME": netdevs[0],
        "UCX_NET_DEVICES": ",".join("%s:1" % r["rdma_device"] for r in rails),
        "NCCL_IB_HCA": "=" + ",".join("%s:1" % r["rdma_device"] for r in rails),
    })
    if executor == "ray":
        env["RAY_ADDRESS"] = "%s:6379" % head_rail_address
    return env


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("recipe", "overrides", "hosts", "stage", "facts", "recipes_dir", "api_host", "api_port",
                             "head_only"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        hostvars = task_vars["hostvars"]
        hosts = args.get("hosts") or task_vars.get("ansible_play_hosts_all") or []
        stage = args.get("stage", "static")
        recipes_dir = args.get("recipes_dir") or RECIPES
        name = args.get("recipe")
        if not name or not isinstance(name, str):
            return dict(result, failed=True, msg="recipe: give the recipe name (a file of %s)" % os.path.normpath(recipes_dir))
        path = os.path.join(recipes_dir, "%s.yml" % name)
        if not os.path.exists(path):
            known = sorted(f[:-4] for f in os.listdir(recipes_dir) if f.endswith(".yml") and f not in ("hardware.yml", "known_failures.yml"))
            return dict(result, failed=True, msg="recipe %r not found in %s (known: %s)" % (name, os.path.normpath(recipes_dir), ", ".join(known)))
        overrides = args.get("overrides") or {}
        if not isinstance(overrides, dict):
            return dict(result, failed=True, msg="overrides (sparkops_recipe_overrides) must be a mapping, got %s" % type(overrides).__name__)
        try:
            recipe = _recipe.validate(_recipe.merge(_load(path), overrides), source=path)
            hardware = _load(os.path.join(recipes_dir, "hardware.yml"))
            if recipe["hardware"] not in hardware:
                raise AnsibleError("recipe %s: hardware %r is not a profile of hardware.yml (%s)"
                                   % (name, recipe["hardware"], ", ".join(sorted(hardware))))
            hw = hardware[recipe["hardware"]]
            if len(hosts) != recipe["nodes"]:
                raise AnsibleError("recipe %s plans %d node(s), the inventory gives %d (%s): adjust the inventory group "
                                   "or set sparkops_recipe_overrides.nodes" % (name, recipe["nodes"], len(hosts), ", ".join(hosts)))
        except (AnsibleError, _recipe.RecipeError) as exc:
            return dict(result, failed=True, msg=str(exc), refusals=[])

        nodes, refusals = _planner.check_rails(hosts, hostvars)
        if len(nodes) < len(hosts):  # no rail plan for some node: nothing more to plan
            return dict(result, failed=True, refusals=[dict(r) for r in refusals],
                        msg="preflight refused the inventory:\n- " + "\n- ".join(str(r) for r in refusals))
        refusals += _planner.check_recipe(recipe, hw)
        if stage == "dynamic":
            refusals += _planner.check_facts(args.get("facts") or {}, recipe, hw)
        head = nodes[0]["rails"][0]["address"]
        api_host, api_port = str(args.get("api_host") or "127.0.0.1"), int(args.get("api_port") or 8000)
        head_only = bool(args.get("head_only"))

        def command(rank, head_only):
            return _planner.engine_command(recipe, host=api_host, port=api_port, node_rank=rank,
                                           head_address=head, head_only=head_only)
        plan = {
            "recipe": recipe["name"],
            "model": recipe["model"]["id"],
            "served_model_name": recipe["serving"]["served_model_name"],
            "hardware": recipe["hardware"],
            "executor": recipe["engine"]["executor"],
            "image": recipe["engine"]["image"],
            "memory_per_gpu": _planner.memory_budget(recipe, hw),
            "expected_decode_tok_s": (recipe.get("expected") or {}).get("decode_tok_s"),
            "decode_bound": _bench.decode_bound(recipe, hw, 1 if head_only else recipe["parallelism"]["tensor"]),
            "head": hosts[0] if hosts else None,
            "head_address": head,
            "gpus_per_node": hw["gpus_per_node"],
            "api": {"host": api_host, "port": api_port},
            "head_only": head_only,
            "nodes": [{
                "name": n["name"],
                "rank": i,
                "rails": [{k: r[k] for k in ("name", "netdev", "rdma_device", "address", "subnet")} for r in n["rails"]],
                "env": node_env(hw, recipe, n["rails"], head, recipe["engine"]["executor"]),
                "command": command(i, head_only),
            } for i, n in enumerate(nodes)],
            # what production runs when the simulated cluster serves head-only
            "production_command": command(0, False) if head_only else None,
            "per_node_env_keys": list(_planner.PER_NODE_ENV),
        }
        result.update(changed=False, plan=plan, recipe=recipe, refusals=[dict(r) for r in refusals],
                      warnings=_planner.recipe_warnings(recipe, hw))
        if refusals and stage == "dynamic" and self._play_context.check_mode:
            # check mode changed nothing: the facts are the nodes' before host setup, which a real
            # run changes first (MTU, addresses); say what a run would refuse now, do not stop
            result["warnings"] = result["warnings"] + [
                "check mode: judged on the nodes as they are now, before host setup's changes; a real run "
                "would refuse if these remain: %s" % "; ".join(str(r) for r in refusals)]
        elif refusals:
            result.update(failed=True, msg="preflight (%s) refused the plan for %s:\n- %s" % (
                stage, recipe["name"], "\n- ".join(str(r) for r in refusals)))
        return result
