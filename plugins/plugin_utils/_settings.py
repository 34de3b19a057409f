# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection-wide variables (inventory or extra vars), their types and defaults: the
one place they are defined. The preflight reads them into the plan (plan.settings); a
play that does not plan reads them with the sparkops.cluster.settings filter. The rail
variables (sparkops_rails, ...) are read by module_utils/_fabric. Pure Python.
"""

from __future__ import annotations

import os

# name: (type, default, description); None as default means "unset"
SETTINGS = {
    "sparkops_recipe": (str, None, "The recipe to plan (a file of the recipes directory, without .yml)."),
    "sparkops_recipe_overrides": (dict, {}, "Deep-merged into the recipe; null removes a field, a list replaces "
                                            "the whole list."),
    "sparkops_recipes_dir": (str, None, "Your own recipes directory, looked in before the collection's recipes/ "
                                        "(a recipe of yours shadows the collection's of the same name)."),
    "sparkops_data_dir": (str, None, "Your own data directory: a hardware.yml whose profiles are added to the "
                                     "collection's (yours shadow its of the same name) and a known_failures.yml whose "
                                     "rows are added to the collection's table."),
    "sparkops_api_host": (str, "127.0.0.1", "Address the OpenAI-compatible API binds to on the head."),
    "sparkops_api_port": (int, 8000, "Port of the API on the head."),
    "sparkops_ray_port": (int, 6379, "Port of Ray's GCS on the head."),
    "sparkops_ray_auth": (bool, True, "Ray's token authentication on every node (RAY_AUTH_MODE=token, Ray 2.52 or "
                                      "later): without it anyone who reaches a node can join the cluster or run jobs."),
    "sparkops_engine_container": (str, "sparkops-engine", "Name of the engine container on each node (may be "
                                                          "templated per node)."),
    "sparkops_model_path": (str, "", "Directory of the weights on every node: synced from the head and served "
                                     "instead of the hub id; empty serves model.id."),
    "sparkops_gpu_required": (bool, True, "Fail the facts step on a node without nvidia-smi."),
    "sparkops_reclaim_min_cached_gb": (float, 4.0, "Drop the page cache before an engine start only above this "
                                                   "many GiB of cache."),
    "sparkops_teardown_reboot": (bool, False, "Teardown reboots the nodes whose memory stays held by no process."),
    "sparkops_teardown_memory_wait": (int, 120, "Seconds teardown waits for a stopped engine's memory to come back."),
    "sparkops_persistent": (bool, False, "systemd units on every node start the engine containers and vllm serve "
                                         "after a boot, in the deploy's order; false removes them."),
    "sparkops_engine_keep_previous": (bool, True, "Before the engine moves to another image, every node keeps the one "
                                                  "it ran as REPOSITORY:sparkops-previous (the rollback image)."),
    "sparkops_engine_rollback": (bool, False, "Serve the rollback image (REPOSITORY:sparkops-previous) instead of the "
                                              "recipe's engine.image."),
    "sparkops_accept": (dict, {}, "Rows of data/known_failures.yml you accept for this plan, each with your reason "
                                  "({KF-31: 'tested with our image'}); their findings no longer stop the deploy and "
                                  "the plan records them."),
}
# Ray's fixed default ports (its documentation, "Configuring Ray", ports) and its default
# range of worker ports: the API must not take one of them
RAY_PORTS = {8265: "Ray's dashboard", 10001: "Ray's client server", 52365: "Ray's dashboard agent"}
RAY_WORKER_PORTS = (10002, 19999)
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
# settings that name a directory: given normalized (no trailing /, no ..)
PATHS = ("sparkops_recipes_dir", "sparkops_data_dir", "sparkops_model_path")


class SettingError(ValueError):
    """A collection variable has a value of the wrong kind; the message names it and the fix."""


def _coerce(name, kind, value):
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in _TRUE + _FALSE:
            return str(value).strip().lower() in _TRUE
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
    for name, (kind, default, _doc) in SETTINGS.items():
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
