# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# Each filter's documentation is in the .yml file of its name beside this one (a
# DOCUMENTATION string here would be shown for all of them).

from ansible.errors import AnsibleFilterError

from ansible_collections.sparkops.cluster.plugins.plugin_utils import _rules
from ansible_collections.sparkops.cluster.plugins.module_utils._fabric import (
    FabricError, bandwidth_rails, fabric_report, rail_nodes, rail_plan, rail_state)
from ansible_collections.sparkops.cluster.plugins.plugin_utils._tables import read_tables


def _bandwidth_rails(hostvars, host, peer=None, base_port=18515):
    try:
        return bandwidth_rails(host, hostvars[host], peer, hostvars[peer] if peer else None, base_port)
    except FabricError as exc:
        raise AnsibleFilterError(str(exc))


def _rail_plan(hostvars, host):
    """Rails of one host with their addresses and MTU (the netplan role renders them); []
    for a host without sparkops_rails (a single host needs none: rail_refusals names a
    host of several without them)."""
    if hostvars[host].get("sparkops_rails") is None:
        return []
    try:
        return rail_plan(host, hostvars[host])
    except FabricError as exc:
        raise AnsibleFilterError(str(exc))


def _rail_peers(hostvars, host, hosts):
    """The other nodes' rails with address and MAC (from their network facts): the peers of
    rail_cabling and of rail_ping."""
    out = []
    for peer in hosts:
        if peer == host:
            continue
        facts = hostvars[peer].get("ansible_facts") or {}
        rails = []
        for rail in _rail_plan(hostvars, peer):
            mac = (facts.get(rail["netdev"].replace("-", "_")) or {}).get("macaddress")
            if not mac:
                raise AnsibleFilterError("%s: no MAC address of rail %s (%s) in the facts: gather the network facts "
                                         "of every node first (ansible.builtin.setup, gather_subset network)"
                                         % (peer, rail["name"], rail["netdev"]))
            rails.append({"name": rail["name"], "netdev": rail["netdev"], "address": rail["address"], "mac": mac})
        out.append({"host": peer, "rails": rails})
    return out


def _rail_state(facts, host, rails):
    """This node's rails as its network facts show them, and what is wrong with each."""
    if not isinstance(facts, dict):
        raise AnsibleFilterError("rail_state: give the node's ansible_facts (gather_subset network), got %r" % (facts,))
    return rail_state(host, rails, facts)


def _rail_refusals(hostvars, hosts):
    """Every refusal of the rail variables of these hosts, as text (empty when sound); the
    same rules and words as the preflight's inventory stage."""
    try:
        table = read_tables()[0]
    except _rules.TableError as exc:
        raise AnsibleFilterError(str(exc))
    nodes, errors = rail_nodes(list(hosts), hostvars)
    return [str(r) for r in _rules.run(table, "inventory", {"nodes": nodes, "errors": errors}).refusals]


def _fabric_report(nodes, allreduce=None, min_busbw_gbs=None, busbw_reference=""):
    """The fabric check's summary lines and the links below threshold."""
    if not isinstance(nodes, list):
        raise AnsibleFilterError("fabric_report: give a list of per-node results, got %r" % (nodes,))
    return fabric_report(nodes, allreduce or None, None if min_busbw_gbs is None else float(min_busbw_gbs),
                         busbw_reference or "")


class FilterModule:
    def filters(self):
        return {"bandwidth_rails": _bandwidth_rails, "rail_plan": _rail_plan, "rail_refusals": _rail_refusals,
                "rail_peers": _rail_peers, "rail_state": _rail_state, "fabric_report": _fabric_report}
