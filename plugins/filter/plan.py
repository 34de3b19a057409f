# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# Each filter's documentation is in the .yml file of its name beside this one.

from ansible.errors import AnsibleFilterError

from ansible_collections.sparkops.cluster.plugins.plugin_utils import _plan, _rules, _settings
from ansible_collections.sparkops.cluster.plugins.module_utils._fabric import FabricError, rail_plan
from ansible_collections.sparkops.cluster.plugins.plugin_utils._tables import data_dirs, read_tables


def _plan_node(plan, host):
    try:
        return _plan.plan_node(plan, host)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def _settings_of(variables):
    """The collection variables of a host, defaults filled (a play that does not plan)."""
    try:
        return _settings.read(variables)
    except _settings.SettingError as exc:
        raise AnsibleFilterError(str(exc))


def _node_env(hostvars, host, hardware):
    """A node's engine environment without a recipe: the hardware profile's set and the
    per-node values of its rails (what the fabric check's all-reduce runs with)."""
    try:
        settings = _settings.read(hostvars[host])
        profiles = read_tables(data_dirs(settings))[1]
        rails = rail_plan(host, hostvars[host]) if hostvars[host].get("sparkops_rails") is not None else []
    except (_settings.SettingError, _rules.TableError, FabricError) as exc:
        raise AnsibleFilterError(str(exc))
    if hardware not in profiles:
        raise AnsibleFilterError("hardware %r is not a profile of hardware.yml (%s)" % (hardware, ", ".join(sorted(profiles))))
    return _plan.node_env(profiles[hardware], rails)


def _hardware(name, directory=None):
    """A hardware profile of hardware.yml: a data directory's (sparkops_data_dir), else the collection's."""
    try:
        profiles = read_tables(data_dirs({"data_dir": directory}))[1]
    except _rules.TableError as exc:
        raise AnsibleFilterError(str(exc))
    if name not in profiles:
        raise AnsibleFilterError("hardware %r is not a profile of hardware.yml (%s)" % (name, ", ".join(sorted(profiles))))
    return profiles[name]


class FilterModule:
    def filters(self):
        return {"plan_node": _plan_node, "settings": _settings_of, "node_env": _node_env, "hardware": _hardware}
