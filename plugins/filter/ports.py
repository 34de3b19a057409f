# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# Each filter's documentation is in the .yml file of its name beside this one.

import ipaddress

from ansible.errors import AnsibleFilterError

from ansible_collections.sparkops.cluster.plugins.module_utils._fabric import FabricError, rail_plan
from ansible_collections.sparkops.cluster.plugins.plugin_utils import _ports
from ansible_collections.sparkops.cluster.plugins.plugin_utils._tables import load_yaml


def _firewall_plan(hostvars, host, hosts, conditions=None, rail_sources=None):
    """What the host firewall of one node lets in: the management network's TCP ports (from the
    port table and the node's ansible_port), this node's rail interfaces, and the addresses the
    rails accept (every node's rail addresses, and rail_sources)."""
    if host not in hosts:
        raise AnsibleFilterError("firewall_plan: %s is not one of the nodes %s" % (host, ", ".join(hosts)))
    rows, why = load_yaml(_ports.TABLE, "the port table")
    try:
        if why:
            raise _ports.PortTableError(why)
        rows = _ports.check(rows)
        mine, sources = [], set()
        for node in hosts:
            if hostvars[node].get("sparkops_rails") is None:
                continue  # a single host without rails
            rails = rail_plan(node, hostvars[node])
            sources.update(r["address"] for r in rails)
            if node == host:
                mine = [r["netdev"] for r in rails]
        for address in rail_sources or []:
            try:
                sources.add(str(ipaddress.ip_network(str(address), strict=False)))
            except ValueError:
                raise AnsibleFilterError("firewall_rail_sources: %r is not an address or a network" % (address,))
        facts = dict({"always": True}, **(conditions or {}))
        values = {"ansible_port": hostvars[host].get("ansible_port") or 22}
        tcp = _ports.management_ports(rows, values, facts, head=host == hosts[0])
    except (_ports.PortTableError, FabricError) as exc:
        raise AnsibleFilterError(str(exc))
    return {"management_tcp": tcp, "rails": mine,
            "rail_sources": sorted(sources, key=lambda a: ipaddress.ip_network(a, strict=False))}


class FilterModule:
    def filters(self):
        return {"firewall_plan": _firewall_plan}
