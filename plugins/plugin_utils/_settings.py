# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's variables (inventory or extra vars): every one, its type, default and
meaning, in one registry. Pure Python.

Each is read by one stage (Setting.scope):
- plan: the static preflight reads them into the plan (plan.settings, read() below); a play
  that does not plan reads them with the sparkops.cluster.settings filter;
- host: per host, the rail variables, read into the rail plan by module_utils/_fabric (the
  nodes' code shares those readers), whose defaults are the ones named here;
- a playbook's name: read by that playbook itself (playbooks/flow/target.yml reads
  sparkops_target before any plan exists; status.yml, sparkops_status_json).
docs/reference.md's inventory table is markdown() of this registry, and the role argument specs that
take one of these variables give it the same type and default (tests/unit/test_settings.py).
"""

from __future__ import annotations

import collections
import os

from ansible_collections.sparkops.cluster.plugins.module_utils._fabric import DEFAULT_HOST_OFFSET, DEFAULT_MTU, MTU_RANGE

Setting = collections.namedtuple("Setting", "kind default doc scope")
_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", dict: "dict", list: "list"}
REQUIRED = object()  # a default that means "no default: give it"

SETTINGS = collections.OrderedDict([
    ("sparkops_target", Setting(str, "sparkops_nodes", "The inventory group of the nodes; its first host is the head.",
                                "flow/target.yml")),
    ("sparkops_rails", Setting(list, REQUIRED, "The RoCE rails, each `{name, netdev, rdma_device, subnet}` "
                               "(`ibdev2netdev` names the ports); a GB10 node has two, the halves of its 200G port. "
                               "A plan of one host (one 8-GPU machine) needs none.", "host")),
    ("sparkops_node_index", Setting(int, None, "The node's address on each rail is the subnet's address number "
                                    "`sparkops_rail_host_offset` + this index; give it or `sparkops_rail_addresses`.",
                                    "host")),
    ("sparkops_rail_host_offset", Setting(int, DEFAULT_HOST_OFFSET, "The first host address of the rail subnets.",
                                          "host")),
    ("sparkops_rail_addresses", Setting(dict, None, "The node's address per rail (`{rail1: 192.168.100.11, ...}`), "
                                        "instead of an index.", "host")),
    ("sparkops_rail_mtu", Setting(int, DEFAULT_MTU, "The MTU of every rail (%d-%d; RoCE wants 9000)." % MTU_RANGE,
                                  "host")),
    ("sparkops_recipe", Setting(str, None, "The recipe to plan (a file of the recipes directory, without .yml); "
                                "each `deploy_<recipe>` playbook sets it.", "plan")),
    ("sparkops_recipe_overrides", Setting(dict, {}, "Deep-merged into the recipe: mappings merge, null removes a "
                                          "field, a list replaces the whole list.", "plan")),
    ("sparkops_recipes_dir", Setting(str, None, "Your own recipes directory, looked in before the collection's "
                                     "`recipes/` (a recipe of yours shadows the collection's of the same name, and "
                                     "the plan notes it).", "plan")),
    ("sparkops_data_dir", Setting(str, None, "Your own data directory: a `hardware.yml` whose profiles are added to "
                                  "the collection's and a `known_failures.yml` whose rows, of ids of your own, are "
                                  "added to its table.", "plan")),
    ("sparkops_api_host", Setting(str, "127.0.0.1", "Where the API binds on the head: a loopback address (the static "
                                  "preflight refuses another, SEC-2; publish it through a proxy).", "plan")),
    ("sparkops_api_port", Setting(int, 8000, "The API's port on the head.", "plan")),
    ("sparkops_ray_port", Setting(int, 6379, "Ray's GCS port on the head's first rail.", "plan")),
    ("sparkops_ray_auth", Setting(bool, True, "Ray's token authentication on every node (Ray 2.52 or later): "
                                  "without it anyone who reaches a node can join the cluster or run jobs.", "plan")),
    ("sparkops_engine_container", Setting(str, "sparkops-engine", "The engine container's name on each node (may be "
                                          "templated per node).", "plan")),
    ("sparkops_model_path", Setting(str, "", "The weights' directory on every node: synced from the head, checked "
                                    "by SHA-256, served read only instead of the hub id, its `config.json` read by the "
                                    "live preflight; empty serves `model.id`.", "plan")),
    ("sparkops_gpu_required", Setting(bool, True, "Fail the facts step on a node without `nvidia-smi`.", "plan")),
    ("sparkops_reclaim_min_cached_gb", Setting(float, 4.0, "Drop the page cache before an engine starts only above "
                                               "this many GiB of cache.", "plan")),
    ("sparkops_teardown_reboot", Setting(bool, False, "Teardown reboots the nodes whose memory stays held by no "
                                         "process.", "plan")),
    ("sparkops_teardown_memory_wait", Setting(int, 120, "Seconds teardown waits for a stopped engine's memory to "
                                              "come back.", "plan")),
    ("sparkops_monitoring", Setting(bool, False, "Node exporters on every node and a Prometheus on the head's "
                                    "loopback scraping the nodes, vLLM and Ray (role `monitoring`); the scrape "
                                    "targets also as file_sd JSON for a Prometheus you run; false stops what it "
                                    "turned on.", "plan")),
    ("sparkops_watchdog", Setting(bool, False, "A timer on every node that checks its engine rank and kernel log, "
                                  "and a real completion probe on the head; incidents name the known failure (role "
                                  "`watchdog`); false removes the timer.", "plan")),
    ("sparkops_persistent", Setting(bool, False, "systemd units on every node start the engine containers and "
                                    "`vllm serve` after a boot, in the deploy's order; false removes them.", "plan")),
    ("sparkops_engine_keep_previous", Setting(bool, True, "Before the engine moves to another image, every node "
                                              "keeps the one it ran as `REPOSITORY:sparkops-previous`.", "plan")),
    ("sparkops_engine_rollback", Setting(bool, False, "Serve that kept image instead of the recipe's "
                                         "`engine.image`.", "plan")),
    ("sparkops_status_json", Setting(str, None, "`status.yml` also writes its report as JSON to this path on the "
                                     "controller.", "status.yml")),
    ("sparkops_accept", Setting(dict, {}, "Rows of `data/known_failures.yml` you accept for your plan, each with "
                                "your reason (`{KF-31: \"tested on our image\"}`); the plan records them. Hard rows "
                                "(`accept: false`: arithmetic, the recipe's schema, the inventory's addresses, "
                                "security) cannot be accepted.", "plan")),
])
# what read() puts in the plan
PLANNED = [name for name, s in SETTINGS.items() if s.scope == "plan"]

# Ray's fixed default ports (its documentation, "Configuring Ray", ports) and its default
# range of worker ports: the API must not take one of them
RAY_PORTS = {8265: "Ray's dashboard", 10001: "Ray's client server", 52365: "Ray's dashboard agent"}
RAY_WORKER_PORTS = (10002, 19999)
# the one reading of on/off words (settings, engine flags' values, environment switches)
ON, OFF = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
# settings that name a directory: given normalized (no trailing /, no ..)
PATHS = ("sparkops_recipes_dir", "sparkops_data_dir", "sparkops_model_path")


# Roles renamed in 0.2.0 by what they own (docs/architecture.md), with their variables: a
# variable of an old name would be ignored by the new role, so the preflight refuses it.
# (old prefix, new prefix, new role), the longest old prefix first
RENAMED = (("vllm_container_benchmark_", "benchmark_", "benchmark"),
           ("vllm_container_", "vllm_serve_", "vllm_serve"),
           ("ray_cluster_", "engine_container_", "engine_container"))
RENAMED_NAMES = {"ray_cluster_container_name": "engine_container_name"}  # not by prefix alone


def renamed(names):
    """['old_name -> new_name', ...] for the names of variables of a renamed role."""
    out = []
    for name in sorted(set(n for n in names if isinstance(n, str))):
        if name in RENAMED_NAMES:
            out.append("%s -> %s" % (name, RENAMED_NAMES[name]))
            continue
        for old, new, _role in RENAMED:
            if name.startswith(old):
                out.append("%s -> %s%s" % (name, new, name[len(old):]))
                break
    return out


class SettingError(ValueError):
    """A collection variable has a value of the wrong kind; the message names it and the fix."""


def _coerce(name, kind, value):
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in ON + OFF:
            return str(value).strip().lower() in ON
    elif kind in (int, float):
        if not isinstance(value, bool):
            try:
                number = float(str(value).strip())
                if kind is int and number == int(number):
                    return int(number)
                if kind is float:
                    return number
            except ValueError:
                pass
    elif kind is str:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    elif isinstance(value, kind):
        return value
    raise SettingError("%s must be %s, got %r" % (
        name, {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
               dict: "a mapping"}[kind], value))


def _port_errors(api, ray):
    out = []
    for name, port in (("sparkops_api_port", api), ("sparkops_ray_port", ray)):
        if isinstance(port, int) and not 1 <= port <= 65535:
            out.append("%s must be a TCP port (1-65535), got %d" % (name, port))
    if not isinstance(api, int) or not isinstance(ray, int):
        return out
    if api == ray:
        out.append("sparkops_api_port %d is sparkops_ray_port too: give the API another port (8000)" % api)
    elif api in RAY_PORTS:
        out.append("sparkops_api_port %d is %s port: give the API another port (8000)" % (api, RAY_PORTS[api]))
    elif RAY_WORKER_PORTS[0] <= api <= RAY_WORKER_PORTS[1]:
        out.append("sparkops_api_port %d is in Ray's worker port range %d-%d: give the API another port (8000)"
                   % ((api,) + RAY_WORKER_PORTS))
    return out


def read(variables, render=None):
    """{name without the sparkops_ prefix: value} from a host's variables, defaults filled,
    values coerced (a number written as text is the number). Raises SettingError listing
    every variable of the wrong kind.

    render(name, value): the value as Ansible renders it (a template of a variable of the
    inventory, of -e or of a vault), for callers that get the variables unrendered (an
    action plugin's task vars); it raises SettingError naming what it could not render."""
    out, errors = {}, []
    for name in PLANNED:
        kind, default = SETTINGS[name].kind, SETTINGS[name].default
        value = variables.get(name, default) if hasattr(variables, "get") else default
        try:
            raw, value = value, render(name, value) if render and value is not None else value
            if value is None:
                value = default
            try:
                value = value if value is None else _coerce(name, kind, value)
                if name in PATHS and value:  # '{{ inventory_dir }}/../recipes' is the directory it names
                    value = os.path.normpath(os.path.expanduser(value))
                out[name[len("sparkops_"):]] = value
            except SettingError as exc:
                if raw is value or raw == value:
                    raise
                raise SettingError("%s (rendered from %r)" % (exc, raw))
        except SettingError as exc:
            errors.append(str(exc))
    errors += _port_errors(out.get("api_port"), out.get("ray_port"))
    accept = out.get("accept")
    for key, why in sorted((accept or {}).items(), key=str):
        if not isinstance(why, str) or not why.strip():
            errors.append("sparkops_accept.%s must give your reason as text, got %r" % (key, why))
    if errors:
        raise SettingError("; ".join(errors))
    return out


def on(value):
    """A switch as the engine reads it: an absent flag (None) and False are off, a bare flag
    (True) is on, and a value is off when it is empty or one of OFF ('--enforce-eager=false',
    VLLM_USE_DEEP_GEMM=0), on otherwise."""
    if value is None or value is False:
        return False
    return value is True or str(value).strip().lower() not in OFF + ("",)


def _default_text(setting):
    if setting.default is REQUIRED:
        return "required (but for a single host)"
    if setting.default is None or setting.default == "":
        return "none"
    if isinstance(setting.default, bool):
        return "`%s`" % str(setting.default).lower()
    if isinstance(setting.default, float) and setting.default == int(setting.default):
        return "`%d`" % setting.default
    return "`%s`" % (setting.default if setting.default != {} else "{}")


def markdown():
    """docs/reference.md's inventory table, from the registry."""
    lines = ["| variable | type | default | read by | what |", "|---|---|---|---|---|"]
    stage = {"plan": "the preflight, into the plan", "host": "the rail plan, per host"}
    for name, setting in SETTINGS.items():
        reader = stage.get(setting.scope, "`playbooks/%s`" % setting.scope)
        lines.append("| `%s` | %s | %s | %s | %s |" % (
            name, _TYPE_NAMES[setting.kind], _default_text(setting), reader, setting.doc))
    return "\n".join(lines) + "\n"
