# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rail addresses of a node from its inventory variables. Pure Python."""

from __future__ import annotations

import ipaddress


# the rail variables' defaults (plugin_utils/_settings lists every variable with these)
DEFAULT_MTU = 9000
DEFAULT_HOST_OFFSET = 10
MTU_RANGE = (1280, 9216)  # IPv6's minimum; the largest frame ConnectX-7 and common switches take


class FabricError(ValueError):
    """A rail variable is missing or wrong; the message names the host and the variable."""


def rail_mtu(host, hv):
    """sparkops_rail_mtu of a host as an int (9000 when unset); a number written as text is
    read as the number."""
    raw = hv.get("sparkops_rail_mtu", DEFAULT_MTU)
    try:
        mtu = None if isinstance(raw, bool) else int(str(raw).strip())
    except ValueError:
        mtu = None
    if mtu is None or not MTU_RANGE[0] <= mtu <= MTU_RANGE[1]:
        raise FabricError("%s: sparkops_rail_mtu must be a whole number of bytes between %d and %d (9000 for RoCE "
                          "jumbo frames), got %r" % (host, MTU_RANGE[0], MTU_RANGE[1], raw))
    return mtu


def rail_plan(host, hv):
    """Rails of one host with their addresses and MTU.

    From sparkops_rail_addresses.<rail> when given, else subnet + sparkops_rail_host_offset
    (default 10) + sparkops_node_index; the MTU is sparkops_rail_mtu (default 9000).
    """
    mtu = rail_mtu(host, hv)
    rails = hv.get("sparkops_rails")
    if not isinstance(rails, list) or not rails:
        raise FabricError("%s: sparkops_rails must be a non-empty list of {name, netdev, rdma_device, subnet}" % host)
    explicit = hv.get("sparkops_rail_addresses") or {}
    if not isinstance(explicit, dict):
        raise FabricError("%s: sparkops_rail_addresses must be a mapping {rail name: address}, got %r" % (host, explicit))
    out = []
    for i, rail in enumerate(rails):
        missing = [k for k in ("name", "netdev", "rdma_device", "subnet") if not isinstance(rail, dict) or not rail.get(k)]
        if missing:
            raise FabricError("%s: sparkops_rails[%d] lacks %s" % (host, i, ", ".join(missing)))
        if rail["name"] in explicit:
            address = str(explicit[rail["name"]])
        else:
            index, offset = hv.get("sparkops_node_index"), hv.get("sparkops_rail_host_offset", DEFAULT_HOST_OFFSET)
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise FabricError("%s: sparkops_node_index must be an integer >= 0 (got %r), or give "
                                  "sparkops_rail_addresses.%s" % (host, index, rail["name"]))
            try:
                offset = int(str(offset).strip()) if not isinstance(offset, bool) else None
            except ValueError:
                offset = None
            if offset is None or offset < 0:
                raise FabricError("%s: sparkops_rail_host_offset must be a whole number >= 0 (the first host address "
                                  "of the rail subnets, default %d), got %r" % (
                                      host, DEFAULT_HOST_OFFSET, hv.get("sparkops_rail_host_offset")))
            try:
                address = str(ipaddress.ip_network(rail["subnet"], strict=False)[int(offset) + index])
            except (ValueError, IndexError) as exc:
                raise FabricError("%s: rail %s: cannot compute an address from subnet %s, offset %s, index %s: %s"
                                  % (host, rail["name"], rail["subnet"], offset, index, exc))
        out.append(dict(rail, address=address, mtu=mtu))
    return out


def _addresses(iface):
    ipv4 = iface.get("ipv4")
    found = [ipv4.get("address")] if isinstance(ipv4, dict) and ipv4.get("address") else []
    return found + [a.get("address") for a in iface.get("ipv4_secondaries") or [] if isinstance(a, dict) and a.get("address")]


def rail_state(host, rails, facts):
    """Each rail of a node as the node's network facts show it now, and what is wrong.

    rails: rail_plan() entries; facts: the node's ansible_facts (network subset), or the
    ansible_facts of a registered setup result (keys prefixed ansible_). A rail
    may be missing, down, at another MTU, or without its address (no IPv4 at all while
    networkd is still configuring it): each is a normal state of a real node and is
    named with the fix, never an error. Returns {rails: [...], problems: [...],
    differs: whether applying the netplan file would change something}.
    """
    def fact(key):  # ansible_facts keys, or a registered setup result's (ansible_ prefixed)
        return facts.get(key, facts.get("ansible_" + key))

    interfaces = fact("interfaces") or []
    out, differs = [], False
    for rail in rails:
        iface = fact(rail["netdev"].replace("-", "_").replace(".", "_"))
        where = "%s: rail %s (%s)" % (host, rail["name"], rail["netdev"])
        want = "%s/%s" % (rail["address"], rail["subnet"].split("/")[-1]) if rail.get("subnet") else rail["address"]
        state = dict(name=rail["name"], netdev=rail["netdev"], present=False, up=False, mtu=None, addresses=[],
                     speed=None, problems=[])
        out.append(state)
        if rail["netdev"] not in interfaces or not isinstance(iface, dict):
            state["problems"].append("%s is not an interface of this node (it has %s): fix sparkops_rails, or check "
                                     "the ConnectX driver (ip link)" % (where, ", ".join(sorted(interfaces)) or "none"))
            differs = True
            continue
        state.update(present=True, up=bool(iface.get("active")), mtu=iface.get("mtu"), addresses=_addresses(iface),
                     speed=iface.get("speed"))
        if not state["up"]:
            state["problems"].append("%s is down (no carrier): check its cable, the same port on both nodes, and "
                                     "`ip link show %s`" % (where, rail["netdev"]))
        if state["mtu"] != rail["mtu"]:
            differs = True
            state["problems"].append("%s has MTU %s, not %d: apply the netplan role (setup_hosts.yml) on this node"
                                     % (where, state["mtu"], rail["mtu"]))
        if rail["address"] not in state["addresses"]:
            differs = True
            state["problems"].append("%s has %s, not %s: %s" % (
                where, "address " + ", ".join(state["addresses"]) if state["addresses"] else "no IPv4 address", want,
                "another configuration owns this port; remove it, then apply the netplan role" if state["addresses"]
                else "networkd has not configured it yet or the netplan file is not applied; apply the netplan "
                     "role, then see `networkctl status %s`" % rail["netdev"]))
    return {"rails": out, "problems": [p for r in out for p in r["problems"]], "differs": differs}


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


def rail_env(rails):
    """The interfaces and devices NCCL, Gloo, TP sockets and UCX use, from a node's rails
    ({netdev, rdma_device, port}; the first rail carries Gloo and the TP sockets).
    '=' makes NCCL match the names exactly, so a prefix cannot catch another port."""
    if not rails:
        return {}
    netdevs = [r["netdev"] for r in rails]
    hca = ["%s:%d" % (r["rdma_device"], r.get("port", 1)) for r in rails]
    return {
        "NCCL_SOCKET_IFNAME": "=" + ",".join(netdevs),
        "GLOO_SOCKET_IFNAME": netdevs[0],
        "TP_SOCKET_IFNAME": netdevs[0],
        "UCX_NET_DEVICES": ",".join(hca),
        "NCCL_IB_HCA": "=" + ",".join(hca),
    }


def rail_nodes(hosts, hostvars):
    """The rail plan of every host in order ([{name, rails, mtu}]) and, for the hosts whose
    variables give none, the reason ({host: message}). A single host needs no rails: with
    sparkops_rails unset its rails are [] (its GPUs talk over NVLink or PCIe)."""
    nodes, errors = [], {}
    for host in hosts:
        if len(hosts) == 1 and hostvars[host].get("sparkops_rails") is None:
            nodes.append({"name": host, "rails": [], "mtu": None})
            continue
        try:
            rails = rail_plan(host, hostvars[host])
            nodes.append({"name": host, "rails": rails, "mtu": rails[0]["mtu"]})
        except FabricError as exc:
            errors[host] = str(exc)
    return nodes, errors


def node_addresses(hosts, hostvars):
    """{host: (the address Ansible reaches it at, its port or None)}: ansible_host, else the
    inventory name."""
    out = {}
    for host in hosts:
        hv = hostvars[host]
        out[host] = (str(hv.get("ansible_host") or host), hv.get("ansible_port"))
    return out


# under this share of its link's speed, with its PCIe link as wide as its slot, a rail is not
# slow but degraded (NVIDIA/dgx-spark-playbooks PR#108: 13 Gb/s on a 200G link at Gen5 x4)
DEGRADED_SHARE = 0.25


def _diagnosis(node, client):
    """Why a rail of this node's measurement fell below its threshold, where its link tells."""
    out = []
    links = {link.get("name"): link for link in node.get("links") or []}
    ports = {p.get("netdev"): p.get("link") or {} for p in node.get("ports") or [] if isinstance(p, dict)}
    failed = " ".join(client.get("failures") or [])
    for rail in client.get("rails") or []:
        if "rail %s:" % rail.get("name") not in failed:
            continue
        link = links.get(rail.get("name")) or {}
        pcie = ports.get(link.get("netdev")) or {}
        width, slot, speed = pcie.get("pcie_width"), pcie.get("pcie_max_width"), link.get("speed")
        if width and slot and width < slot:
            out.append("%s: rail %s (%s) runs PCIe x%d of its slot's x%d: update the BIOS of %s (2026-04 or later), "
                       "then power-cycle it (KF-36)" % (
                           node["name"], rail["name"], link.get("netdev"), width, slot, node["name"]))
        elif speed and speed > 0 and rail.get("average_gbps") is not None and \
                rail["average_gbps"] < DEGRADED_SHARE * speed / 1000.0:
            out.append("%s: rail %s (%s) carried %s Gb/s on a %s Mb/s link%s: a degraded start; power-cycle %s (a full "
                       "power off, not a reboot) and run validate_fabric again (KF-38)" % (
                           node["name"], rail["name"], link.get("netdev"), rail["average_gbps"], speed,
                           " at PCIe x%d" % width if width else "", node["name"]))
    return out


def fabric_report(nodes, allreduce=None, min_busbw_gbs=None, busbw_reference=""):
    """The fabric check's summary: one line per rail port (speed, MTU), per ring link (Gb/s
    per rail, aggregate, share of line rate) and for the all-reduce, and every link below
    its threshold.

    nodes: [{name, peer, links: [{name (the rail), netdev, speed, mtu}], client: a
    roce_bandwidth result or None, ports: ibdev2netdev's ports (their link: PCIe width)}];
    allreduce: the bench's JSON or None; min_busbw_gbs its threshold and busbw_reference the public
    measurement of the same collective it is set against (both said in the all-reduce's line).
    Returns {lines, below}. A rail below its threshold is
    diagnosed where its link says why: a PCIe link narrower than its slot (KF-36: the BIOS), or
    a healthy-looking link carrying under a quarter of its speed (KF-38: a degraded start).
    """
    lines, below = [], []
    for node in nodes:
        for link in node.get("links") or []:
            speed = link.get("speed")
            lines.append("%s %s %s: link %s Mb/s, MTU %s" % (node["name"], link["name"], link["netdev"],
                                                             speed if speed not in (None, -1) else "unknown",
                                                             link.get("mtu")))
    for node in nodes:
        client = node.get("client") or {}
        where = "%s -> %s" % (node["name"], node["peer"])
        if client.get("rails"):
            share = client.get("line_rate_share")
            lines.append("%s: %s, aggregate %s Gb/s%s" % (
                where, ", ".join("%s %s Gb/s" % (r["name"], r["average_gbps"]) for r in client["rails"]),
                client.get("aggregate_gbps"), " (%.1f%% of line rate)" % (share * 100) if share is not None else ""))
        below += ["%s: %s" % (where, f) for f in client.get("failures") or []]
        below += _diagnosis(node, client)
    if allreduce:
        lines.append("all-reduce: %s ranks (%s node(s)), %s, %d MiB: bus bandwidth %s GB/s, sum %s%s" % (
            allreduce.get("world_size"), allreduce.get("nodes", allreduce.get("world_size")), allreduce.get("backend"),
            (allreduce.get("size_bytes") or 0) // 2 ** 20, allreduce.get("busbw_gbs"),
            "correct" if allreduce.get("correct") else "WRONG",
            "" if min_busbw_gbs is None else "; threshold %s GB/s (all-reduce)%s" % (
                min_busbw_gbs, "; reference: %s" % busbw_reference if busbw_reference else "")))
        if min_busbw_gbs is not None and (allreduce.get("busbw_gbs") or 0) < min_busbw_gbs:
            below.append("all-reduce bus bandwidth %.3f GB/s is below %.3f GB/s"
                         % (allreduce.get("busbw_gbs") or 0, min_busbw_gbs))
        if not allreduce.get("correct"):
            below.append("all-reduce returned a wrong sum")
    lines.append("below threshold: " + "; ".join(below) if below else "every link meets its threshold")
    return {"lines": lines, "below": below}
