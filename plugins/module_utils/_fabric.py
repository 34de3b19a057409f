# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rail addresses of a node from its inventory variables. Pure Python."""

from __future__ import annotations

import ipaddress


class FabricError(ValueError):
    """A rail variable is missing or wrong; the message names the host and the variable."""


def rail_plan(host, hv):
    """Rails of one host with their addresses.

    From sparkops_rail_addresses.<rail> when given, else subnet + sparkops_rail_host_offset
    (default 10) + sparkops_node_index.
    """
    rails = hv.get("sparkops_rails")
    if not isinstance(rails, list) or not rails:
        raise FabricError("%s: sparkops_rails must be a non-empty list of {name, netdev, rdma_device, subnet}" % host)
    explicit = hv.get("sparkops_rail_addresses") or {}
    out = []
    for i, rail in enumerate(rails):
        missing = [k for k in ("name", "netdev", "rdma_device", "subnet") if not isinstance(rail, dict) or not rail.get(k)]
        if missing:
            raise FabricError("%s: sparkops_rails[%d] lacks %s" % (host, i, ", ".join(missing)))
        if rail["name"] in explicit:
            address = str(explicit[rail["name"]])
        else:
            index, offset = hv.get("sparkops_node_index"), hv.get("sparkops_rail_host_offset", 10)
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise FabricError("%s: sparkops_node_index must be an integer >= 0 (got %r), or give "
                                  "sparkops_rail_addresses.%s" % (host, index, rail["name"]))
            try:
                address = str(ipaddress.ip_network(rail["subnet"], strict=False)[int(offset) + index])
            except (ValueError, IndexError) as exc:
                raise FabricError("%s: rail %s: cannot compute an address from subnet %s, offset %s, index %s: %s"
                                  % (host, rail["name"], rail["subnet"], offset, index, exc))
        out.append(dict(rail, address=address))
    return out


def bandwidth_rails(host, hv, peer=None, peer_hv=None, base_port=18515):
    """roce_bandwidth `rails` for this host: server side (peer None) or client of `peer`."""
    mine = rail_plan(host, hv)
    theirs = rail_plan(peer, peer_hv) if peer else None
    out = []
    for i, rail in enumerate(mine):
        entry = {"name": rail["name"], "device": rail["rdma_device"], "port": base_port + i}
        if theirs:
            entry["server_address"] = theirs[i]["address"]
        out.append(entry)
    return out
