# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin sparkops.cluster.preflight: runs on the controller only.

Reads the files (recipe, hardware profiles, the table of known failures) and the
variables; the checks and the plan are module_utils/_rules and _plan.
"""

from __future__ import annotations

import os

from ansible.plugins.action import ActionBase

from ansible_collections.sparkops.cluster.plugins.module_utils import _plan, _recipe, _rules, _settings
from ansible_collections.sparkops.cluster.plugins.module_utils._fabric import rail_nodes
from ansible_collections.sparkops.cluster.plugins.plugin_utils._tables import TABLES, load_yaml, read_tables, recipes_dir, table_file


class Refused(Exception):
    """A refusal before any plan exists (unreadable recipe, settings, node count)."""

    def __init__(self, refusal):
        super().__init__(str(refusal))
        self.refusal = refusal


def read_recipe(table, name, directory, overrides, known_rows):
    """The recipe after overrides, validated; Refused (PLAN-4) naming the field and the fix."""
    def refuse(detail, fix):
        raise Refused(table.finding("PLAN-4", "sparkops_recipe", detail=detail, fix=fix))

    known = sorted(f[:-4] for f in os.listdir(directory) if f.endswith(".yml") and f not in TABLES) \
        if os.path.isdir(directory) else []
    if not isinstance(name, str) or not name.strip():
        refuse("no recipe given", "set sparkops_recipe to one of: %s" % ", ".join(known))
    if "/" in name or name + ".yml" in TABLES:
        refuse("%r is not a recipe name" % name, "set sparkops_recipe to one of: %s" % ", ".join(known))
    path = os.path.join(directory, name + ".yml")
    if not os.path.exists(path):
        refuse("recipe %r not found in %s" % (name, directory),
               "use one of %s, or add %s (sparkops_directory names your own directory)" % (", ".join(known), path))
    data, why = load_yaml(path, "recipe")
    if why:
        refuse(why, "fix the YAML of %s" % path)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        refuse("recipe %s must be a mapping of fields, got %s" % (path, got),
               "write the recipe as a mapping (see recipes/qwen397b.yml)")
    if not isinstance(overrides, dict):
        refuse("sparkops_recipe_overrides must be a mapping, got %s" % type(overrides).__name__,
               "give the overrides as a mapping of recipe fields")
    try:
        return _recipe.validate(_recipe.merge(data, overrides), source=path, known_rows=known_rows)
    except _recipe.RecipeError as exc:
        refuse(str(exc), "fix the recipe field(s) named, in %s or in sparkops_recipe_overrides" % path)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("recipe", "overrides", "hosts", "stage", "facts"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args, variables = self._task.args, task_vars or {}
        hostvars = variables["hostvars"]
        hosts = list(args.get("hosts") or variables.get("ansible_play_hosts_all") or [])
        stage = args.get("stage", "static")
        if stage not in ("static", "dynamic"):
            return dict(result, failed=True, msg="stage must be static or dynamic, got %r" % stage, refusals=[])
        try:
            settings = _settings.read(variables)
        except _settings.SettingError as exc:
            settings, settings_error = None, str(exc)
        else:
            settings_error = None
        directory = recipes_dir(settings)
        try:
            table, hardware = read_tables(directory)
        except _rules.TableError as exc:
            return dict(result, failed=True, refusals=[], msg="the table of the preflight is broken: %s" % exc)

        try:
            if settings_error:
                raise Refused(table.finding("PLAN-6", "settings", detail=settings_error))
            name = args.get("recipe") or settings["recipe"]
            recipe = read_recipe(table, name, directory, args.get("overrides", settings["recipe_overrides"]),
                                 set(table.rows))
            if recipe["hardware"] not in hardware or not isinstance(hardware[recipe["hardware"]], dict):
                raise Refused(table.finding("PLAN-4", "hardware", detail="hardware %r is not a profile of %s (%s)" % (
                    recipe["hardware"], table_file("hardware.yml", directory), ", ".join(sorted(hardware))),
                    fix="set the recipe's hardware to a profile name, or add the profile"))
            if len(hosts) != recipe["nodes"]:
                raise Refused(table.finding("PLAN-5", "nodes", planned=recipe["nodes"], given=len(hosts),
                                            hosts=", ".join(hosts) or "none"))
        except Refused as exc:
            return dict(result, failed=True, refusals=[dict(exc.refusal)],
                        msg="preflight (%s) refused the plan:\n- %s" % (stage, exc.refusal))
        hw = hardware[recipe["hardware"]]

        nodes, errors = rail_nodes(hosts, hostvars)
        refusals, warnings = _rules.run(table, "inventory", {"nodes": nodes, "errors": errors})
        if errors:  # no rail plan for some node: nothing more to plan
            return dict(result, failed=True, refusals=[dict(r) for r in refusals],
                        msg="preflight refused the inventory:\n- " + "\n- ".join(str(r) for r in refusals))
        found = _rules.run(table, "recipe", _plan.recipe_context(recipe, hw))
        refusals, warnings = refusals + found[0], warnings + found[1]
        if stage == "dynamic":
            found = _rules.run(table, "facts", {"facts": args.get("facts") or {}, "recipe": recipe, "hw": hw,
                                                "nodes": nodes})
            refusals, warnings = refusals + found[0], warnings + found[1]

        containers = {h: str(hostvars[h].get("sparkops_engine_container") or settings["engine_container"]) for h in hosts}
        plan = _plan.build(recipe, hw, nodes, settings, table.log_patterns(), containers)
        result.update(changed=False, plan=plan, recipe=recipe, refusals=[dict(r) for r in refusals],
                      warnings=[str(w) for w in warnings])
        if refusals and stage == "dynamic" and self._play_context.check_mode:
            # check mode changed nothing: the facts are the nodes' before host setup, which a real
            # run changes first (MTU, addresses); say what a run would refuse now, do not stop
            result["warnings"].append(
                "check mode: judged on the nodes as they are now, before host setup's changes; a real run "
                "would refuse if these remain: %s" % "; ".join(str(r) for r in refusals))
        elif refusals:
            result.update(failed=True, msg="preflight (%s) refused the plan for %s:\n- %s" % (
                stage, recipe["name"], "\n- ".join(str(r) for r in refusals)))
        return result
