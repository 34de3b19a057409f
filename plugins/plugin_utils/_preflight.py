# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight's judgement on the controller: read the recipe and the tables, run the
rules of every stage over every door to a setting, build the plan. The action plugin
sparkops.cluster.preflight is a thin wrapper of judge(); the tests call it directly."""

from __future__ import annotations

import json
import os
import re

from ansible_collections.sparkops.cluster.plugins.plugin_utils import _plan, _recipe, _rules, _secrets, _settings
from ansible_collections.sparkops.cluster.plugins.module_utils._checkpoint import complete
from ansible_collections.sparkops.cluster.plugins.module_utils._fabric import node_addresses, rail_nodes
from ansible_collections.sparkops.cluster.plugins.plugin_utils._tables import data_dirs, load_yaml, read_tables, recipe_dirs, recipes

# Docker's rule for a container name (daemon/names: [a-zA-Z0-9][a-zA-Z0-9_.-])
CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z")
# Secrets a user may give, with the least length the preflight takes (SEC-8): the Ray token the
# role makes is 64 hex digits; an API key of a few characters is guessed
SECRET_LENGTHS = (("engine_container_auth_token", 32), ("vllm_serve_api_key", 20))
# Role variables whose mapping is added to the engine's environment (the roles combine
# them over the plan's): each is a door to the same settings as serving.env
ROLE_ENV = ("engine_container_env", "vllm_serve_env")


def _ansible_version():
    from ansible.release import __version__
    return __version__


class Refused(Exception):
    """A refusal before any plan exists (unreadable recipe, settings, node count)."""

    def __init__(self, refusal):
        super().__init__(str(refusal))
        self.refusal = refusal


def read_recipe(table, name, dirs, overrides, known_rows):
    """(the recipe after overrides, validated; the recipe file as written; its path; the paths of
    the recipes of that name it shadows). The recipe is looked for in `dirs` in order (the user's
    recipes directory, then the collection's). Refused (PLAN-4) names the field and the fix."""
    def refuse(detail, fix):
        raise Refused(table.finding("PLAN-4", "sparkops_recipe", detail=detail, fix=fix))

    found, shadowed = recipes(dirs)
    where = " or ".join(dirs)
    one_of = "set sparkops_recipe to one of: %s" % ", ".join(sorted(found))
    if not isinstance(name, str) or not name.strip():
        refuse("no recipe given", one_of)
    if not _recipe.NAME.match(name):
        refuse("%r is not a recipe name (%s)" % (name, _recipe.NAME_RULE), one_of)
    if name not in found:
        refuse("recipe %r not found in %s" % (name, where),
               "use one of %s, or add %s.yml to %s (sparkops_recipes_dir names your own directory)"
               % (", ".join(sorted(found)), name, dirs[0]))
    path = found[name]
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
        recipe = _recipe.validate(_recipe.merge(data, overrides), source=path, known_rows=known_rows)
    except _recipe.RecipeError as exc:
        refuse(str(exc), "fix the recipe field(s) named, in %s or in sparkops_recipe_overrides" % path)
    if recipe["name"] != name:
        refuse("recipe %s is named %r inside; a recipe's name is its file's name" % (path, recipe["name"]),
               "set name: %s in %s (or rename the file)" % (name, path))
    return recipe, data, path, shadowed.get(name, [])


def env_variants(hw, recipe, hosts, hostvars):
    """[(env, doors)]: the engine environment the user controls, one per distinct set of
    role environment variables across the hosts (usually one: group vars). doors names,
    for each key a role variable set, that variable (and the hosts when they differ).
    Raises SettingError naming a role variable that is not a mapping of variables."""
    groups, errors = {}, []
    for host in hosts:
        role_env, doors = {}, {}
        for var in ROLE_ENV:
            value = hostvars[host].get(var)
            if value is None:
                continue
            if not isinstance(value, dict):
                errors.append("%s of %s must be a mapping of environment variables, got %r" % (var, host, value))
                continue
            errors += ["%s (%s)" % (e, host) for e in _recipe._env_errors(value, var)]
            role_env.update(value)
            doors.update({str(k): var for k in value})
        key = json.dumps({str(k): str(v) for k, v in role_env.items()}, sort_keys=True)
        groups.setdefault(key, (role_env, doors, []))[2].append(host)
    if errors:
        raise _settings.SettingError("; ".join(sorted(set(errors))))
    out = []
    for role_env, doors, group in groups.values():
        where = " on %s" % ", ".join(group) if len(groups) > 1 else ""
        out.append((_plan.user_env(hw, recipe["serving"]["env"], role_env),
                    {k: "%s.%s%s" % (var, k, where) for k, var in doors.items()}))
    return out


def _accepted_rows(table, accept):
    """Refused (PLAN-6) when sparkops_accept names a row that does not exist or cannot be accepted."""
    for row_id in sorted(accept, key=str):
        if row_id not in table:
            raise Refused(table.finding("PLAN-6", "sparkops_accept", detail="sparkops_accept.%s is not a row of the "
                                        "table of known failures (rows: KF-*, PLAN-*, INV-*, SEC-*)" % row_id))
        if not table.acceptable(row_id):
            raise Refused(table.finding("PLAN-6", "sparkops_accept", detail="%s (%s) cannot be accepted: it is a hard "
                                        "limit (arithmetic, the recipe's schema, the inventory's addresses or "
                                        "security), which no reason waives; fix what it names instead" % (
                                            row_id, table.rows[row_id]["title"])))


# What the roles need in the Python that runs ansible-playbook: (module, its package on PyPI, why)
CONTROLLER_MODULES = (
    ("packaging", "packaging", "the preflight reads vLLM's and Ray's versions by PEP 440 (packaging.version)"),
    ("netaddr", "netaddr", "the netplan role renders the rails' prefixes with ansible.utils' ipaddr filter"),
    ("jmespath", "jmespath", "the engine_container role reads Docker's container list with community.general's "
                             "json_query filter"),
)
# meta/runtime.yml's requires_ansible
ANSIBLE_CORE_FLOOR = (2, 17)


def controller_problems(core_version, have=None):
    """[(what is missing, how to install it)] on the controller: ansible-core below the floor,
    a Python module the roles need. have(module) tells whether a module can be imported."""
    import importlib.util
    have = have or (lambda name: importlib.util.find_spec(name) is not None)
    out = []
    release = tuple(int(x) for x in (core_version.split(".") + ["0", "0"])[:2] if x.isdigit())
    if len(release) == 2 and release < ANSIBLE_CORE_FLOOR:
        out.append(("ansible-core %s is older than the collection's floor %d.%d (meta/runtime.yml)"
                    % ((core_version,) + ANSIBLE_CORE_FLOOR), "pip install 'ansible-core>=%d.%d'" % ANSIBLE_CORE_FLOOR))
    for module, package, why in CONTROLLER_MODULES:
        if not have(module):
            out.append(("the controller's Python has no %s module (%s)" % (module, why), "pip install %s" % package))
    return out


def _limited(variables, hosts):
    """What --limit left of the target group, for the node-count refusal ('' without --limit)."""
    limit = variables.get("ansible_limit")
    if not limit:
        return ""
    target = str(variables.get("sparkops_target") or "sparkops_nodes")
    group = list((variables.get("groups") or {}).get(target) or [])
    return "; --limit %s leaves %d of the %d node(s) of group %s" % (limit, len(hosts), len(group), target)


def _shown(plan):
    """A refused plan as it is shown: the value of every secret of its environments (the nodes',
    the overrides' serving.env) replaced (SEC-3 refused the plan for them)."""
    settings = dict(plan["settings"])
    overrides = settings.get("recipe_overrides")
    if isinstance(overrides, dict) and isinstance(overrides.get("serving"), dict):
        serving = overrides["serving"]
        settings["recipe_overrides"] = dict(overrides, serving=dict(serving, env=_secrets.mask(serving.get("env"))))
    return dict(plan, settings=settings, nodes=[dict(n, env=_secrets.mask(n["env"])) for n in plan["nodes"]])


def _checkpoint_read(facts, hosts):
    """What the head read of the checkpoint (node_facts' checkpoint: path, facts or note), or a
    note saying why there is nothing to judge."""
    read = ((facts or {}).get(hosts[0]) or {}).get("checkpoint") if hosts else None
    if not isinstance(read, dict):
        return {"path": None, "facts": None, "note": "no checkpoint read: sparkops_model_path is not set (the engine "
                                                     "loads model.id from the hub)"}
    return {"path": read.get("path"), "facts": read.get("facts") if isinstance(read.get("facts"), dict) else None,
            "note": read.get("note")}


def _unique(findings):
    seen, out = set(), []
    for f in findings:
        if str(f) not in seen:
            seen.add(str(f))
            out.append(f)
    return out


def judge(variables, hostvars, hosts, stage="static", facts=None, recipe_name=None, overrides=None,
          check_mode=False, render=None):
    """The preflight's result (the action's return): plan, recipe, refusals (structured),
    warnings (text), accepted, not_judged; failed and msg when the plan is refused.

    variables: a host's variables (the collection settings); hostvars: every host's;
    hosts: the plan's nodes in rank order; facts: {host: facts} of the dynamic stage;
    render: renders a variable's value as Ansible would (_settings.read).
    """
    if stage not in ("static", "dynamic"):
        return dict(failed=True, msg="stage must be static or dynamic, got %r" % stage, refusals=[])
    try:
        settings = _settings.read(variables, render=render)
    except _settings.SettingError as exc:
        settings, settings_error = None, str(exc)
    else:
        settings_error = None
    try:
        table, hardware, profile_files = read_tables(data_dirs(settings))
    except _rules.TableError as exc:
        return dict(failed=True, refusals=[], msg="the table of the preflight is broken: %s" % exc)

    try:
        missing = controller_problems(_ansible_version())
        if missing:
            raise Refused(table.finding("PLAN-12", "controller", detail="; ".join(m[0] for m in missing),
                                        install=" and ".join(m[1] for m in missing)))
        if settings_error:
            raise Refused(table.finding("PLAN-6", "settings", detail=settings_error))
        old = _settings.renamed(list(variables) + [k for h in hosts for k in hostvars[h]])
        if old:
            raise Refused(table.finding("PLAN-6", "settings", detail=(
                "variables of roles renamed in sparkops.cluster 0.2.0 would be ignored (ray_cluster is now "
                "engine_container, vllm_container is vllm_serve and its benchmark the role benchmark): rename %s"
                % ", ".join(old))))
        accept = settings["accept"]
        _accepted_rows(table, accept)
        overrides = settings["recipe_overrides"] if overrides is None else overrides
        recipe, base, recipe_path, shadowed = read_recipe(table, recipe_name or settings["recipe"],
                                                          recipe_dirs(settings), overrides, set(table.rows))
        hw = hardware.get(recipe["hardware"])
        if not isinstance(hw, dict):
            raise Refused(table.finding("PLAN-4", "hardware", detail="hardware %r is not a profile of %s (%s)" % (
                recipe["hardware"], " or ".join(os.path.join(d, "hardware.yml") for d in data_dirs(settings)),
                ", ".join(sorted(hardware))),
                fix="set the recipe's hardware to a profile name, or add the profile (sparkops_data_dir names "
                    "your own hardware.yml)"))
        if len(hosts) != recipe["nodes"]:
            raise Refused(table.finding("PLAN-5", "nodes", planned=recipe["nodes"], given=len(hosts),
                                        hosts=", ".join(hosts) or "none", limited=_limited(variables, hosts)))
        try:
            variants = env_variants(hw, recipe, hosts, hostvars)
        except _settings.SettingError as exc:
            raise Refused(table.finding("PLAN-6", "environment", detail=str(exc)))
        for name, least in SECRET_LENGTHS:
            given = str(hostvars[hosts[0]].get(name) or "") if hosts else ""
            if given and len(given) < least:
                raise Refused(table.finding("SEC-8", name, length=len(given), least=least))
        containers = {h: str(hostvars[h].get("sparkops_engine_container") or settings["engine_container"]) for h in hosts}
        bad = ["%s: %r" % (h, c) for h, c in sorted(containers.items()) if not CONTAINER_NAME.match(c)]
        if bad:
            raise Refused(table.finding("PLAN-6", "sparkops_engine_container", detail=(
                "sparkops_engine_container must be a Docker container name (a letter or digit, then letters, digits, "
                "'_', '.', '-'; it names systemd units and files), got %s" % "; ".join(bad))))
    except Refused as exc:
        return dict(failed=True, refusals=[dict(exc.refusal)], msg="preflight (%s) refused the plan:\n- %s"
                    % (stage, exc.refusal))

    nodes, errors = rail_nodes(hosts, hostvars)
    found = _rules.run(table, "inventory", {"nodes": nodes, "errors": errors, "hw": hw, "hw_name": recipe["hardware"],
                                            "addresses": node_addresses(hosts, hostvars)}, accept)
    if errors:  # no rail plan for some node: nothing more to plan
        return dict(failed=True, refusals=[dict(r) for r in found.refusals],
                    msg="preflight refused the inventory:\n- " + "\n- ".join(str(r) for r in found.refusals))
    checkpoint = None
    if stage == "dynamic":
        # the head's config.json (node_facts): the rules judge the model served, its facts
        # the recipe omits taken from it; PLAN-13 refuses the ones the recipe gives otherwise
        checkpoint = _checkpoint_read(facts, hosts)
        if checkpoint.get("facts"):
            recipe = dict(recipe, model=complete(recipe["model"], checkpoint["facts"]))
    for env, doors in variants:
        found.add(_rules.run(table, "recipe", _plan.recipe_context(
            recipe, hw, env=env, env_doors=doors, base=base, overrides=overrides, hw_name=recipe["hardware"],
            api_host=settings["api_host"], model_local=bool(settings["model_path"])), accept))
    if stage == "dynamic":
        ctx = {"facts": facts or {}, "recipe": recipe, "hw": hw, "hw_name": recipe["hardware"], "nodes": nodes,
               "image": _plan.served_image(recipe, settings["engine_rollback"]),
               "envs": [env for env, _doors in variants], "ray_auth": settings["ray_auth"],
               "api": {"host": settings["api_host"], "port": settings["api_port"]},
               "version": _recipe.parse_version(recipe["engine"]["version"]), "version_text": recipe["engine"]["version"]}
        found.add(_rules.run(table, "facts", ctx, accept))
    refusals, warnings, accepted = _unique(found.refusals), _unique(found.warnings), _unique(found.accepted)
    skipped = list({s["rule"]: s for s in found.skipped}.values())

    plan = _plan.build(recipe, hw, nodes, settings, table.log_patterns(), containers)
    if checkpoint is not None:
        plan["checkpoint"] = checkpoint
    plan.update(warnings=[dict(w) for w in warnings], accepted=[dict(a) for a in accepted], not_judged=skipped,
                sources={"recipe": recipe_path, "hardware": profile_files.get(recipe["hardware"]),
                         "table_rows_added": sorted(table.extra)},
                notes=["recipe %s of %s shadows %s" % (recipe["name"], recipe_path, " and ".join(shadowed))]
                if shadowed else [])
    # the recipe as shown: a secret in serving.env is refused (SEC-3), and its value is never printed
    shown = dict(recipe, serving=dict(recipe["serving"], env=_secrets.mask(recipe["serving"]["env"])))
    result = dict(changed=False, plan=plan, recipe=shown, refusals=[dict(r) for r in refusals],
                  accepted=[dict(a) for a in accepted], not_judged=skipped,
                  warnings=[str(w) for w in warnings] + ["accepted (sparkops_accept: %s): %s" % (a["accepted"], a)
                                                         for a in accepted])
    if refusals and stage == "dynamic" and check_mode:
        # check mode changed nothing: the facts are the nodes' before host setup, which a real
        # run changes first (MTU, addresses); say what a run would refuse now, do not stop
        result["warnings"].append(
            "check mode: judged on the nodes as they are now, before host setup's changes; a real run "
            "would refuse if these remain: %s" % "; ".join(str(r) for r in refusals))
    elif refusals:
        # a refused plan runs nowhere: its environments are shown without the value of any secret (SEC-3's)
        result["plan"] = _shown(plan)
        result.update(failed=True, msg="preflight (%s) refused the plan for %s:\n- %s%s" % (
            stage, recipe["name"], "\n- ".join(str(r) for r in refusals),
            "\n(a row you have checked for your setup can be accepted: sparkops_accept: {%s: 'your reason'})"
            % refusals[0]["rule"] if all(table.acceptable(r["rule"]) for r in refusals) else ""))
    return result
