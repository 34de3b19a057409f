# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: bandwidth_rails
short_description: The rails argument of roce_bandwidth for one node
description:
  - From a node's inventory variables (C(sparkops_rails), C(sparkops_node_index) or
    C(sparkops_rail_addresses)), gives the C(rails) list of
    M(sparkops.cluster.roce_bandwidth); with O(peer), the client side against that peer.
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
positional: host
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  host:
    description: The node.
    type: str
    required: true
  peer:
    description: The server node, for the client side.
    type: str
  base_port:
    description: TCP port of the first rail; each next rail takes the next port.
    type: int
    default: 18515
"""

EXAMPLES = r"""
- name: Client side against the next node
  sparkops.cluster.roce_bandwidth:
    role: client
    rails: "{{ hostvars | sparkops.cluster.bandwidth_rails(inventory_hostname, peer='spark-beta') }}"
"""

RETURN = r"""
_value:
  description: List of {name, device, port} (and server_address on the client side).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.sparkops.cluster.plugins.module_utils._fabric import FabricError, bandwidth_rails
from ansible_collections.sparkops.cluster.plugins.module_utils._planner import check_rails


def _bandwidth_rails(hostvars, host, peer=None, base_port=18515):
    try:
        return bandwidth_rails(host, hostvars[host], peer, hostvars[peer] if peer else None, base_port)
    except FabricError as exc:
        raise AnsibleFilterError(str(exc))


def _rail_plan(hostvars, host):
    """Rails of one host with their addresses (the netplan role renders them)."""
    nodes, refusals = check_rails([host], hostvars)
    if refusals and not nodes:
        raise AnsibleFilterError(str(refusals[0]))
    return nodes[0]["rails"]


def _rail_peers(hostvars, host, hosts):
    """The other nodes' rails with address and MAC (from their network facts), for rail_cabling."""
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


def _rail_refusals(hostvars, hosts):
    """Every refusal of the rail variables of these hosts, as text (empty when sound)."""
    return [str(r) for r in check_rails(list(hosts), hostvars)[1]]


class FilterModule:
    def filters(self):
        return {"bandwidth_rails": _bandwidth_rails, "rail_plan": _rail_plan, "rail_refusals": _rail_refusals,
                "rail_peers": _rail_peers}
