# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""RDMA device <-> netdev mapping: `ibdev2netdev` output and the sysfs tree.

Pure Python, no Ansible: the ibdev2netdev module and the unit tests use it.
"""

from __future__ import annotations

import fnmatch
import os
import re

from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from ansible_collections.sparkops.cluster.plugins.module_utils._fabric import rail_env

# rocep1s0f1 port 1 ==> enp1s0f1np1 (Up)
_PLAIN = re.compile(r"^(?P<device>\S+) port (?P<port>\d+) ==> (?P<netdev>\S+) \((?P<state>Up|Down)\)$")
# 0000:02:00.0 mlx5_0 (MT4115 - MT1523X04353) CX456A - ConnectX-4 QSFP fw 12.23.1020 port 1 (ACTIVE) ==> enp2s0f0 (Up)
_VERBOSE = re.compile(
    r"^(?P<pci>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]) (?P<device>\S+) "
    r"\((?P<hw>[^)]*)\)\s*(?P<description>.*?)\s*fw (?P<firmware>\S+) "
    r"port (?P<port>\d+) \((?P<port_state>[A-Z_]+)\s*\) ==> (?P<netdev>\S+) "
    r"\((?P<state>Up|Down)\)(?:\s+\((?P<tag>[^)]*)\))?$"
)
# DGX Spark: the two halves of one ConnectX-7 port sit on two PCIe domains and differ
# only by the domain prefix: rocep1s0f1 / roceP2p1s0f1, enp1s0f1np1 / enP2p1s0f1np1.
_DOMAIN_PREFIX = re.compile(r"^(roce|en)P\d+")


def parse_ibdev2netdev(text):
    """Parse `ibdev2netdev` or `ibdev2netdev -v` output into a list of ports.

    Blank lines are skipped; any other line that matches neither form raises
    ToolOutputError quoting it.
    """
    ports = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        m = _VERBOSE.match(line)
        verbose = m is not None
        if not verbose:
            m = _PLAIN.match(line)
        if m is None:
            raise ToolOutputError(
                "ibdev2netdev", "expected 'DEVICE port N ==> NETDEV (Up|Down)'", line, lineno)
        g = m.groupdict()
        entry = {
            "device": g["device"],
            "port": int(g["port"]),
            "netdev": g["netdev"],
            "state": g["state"],
            "up": g["state"] == "Up",
        }
        if verbose:
            hw = [part.strip() for part in g["hw"].split(" - ")]
            entry.update({
                "pci": g["pci"],
                "part_id": hw[0] or None,
                "board_id": (hw[1] if len(hw) > 1 and hw[1] not in ("", "NA") else None),
                "description": g["description"] or None,
                "firmware": g["firmware"],
                "port_state": g["port_state"],
            })
        ports.append(entry)
    return ports


def read_sysfs(root="/sys"):
    """The same port list from /sys/class/infiniband, for hosts without ibdev2netdev.

    Up/Down is the netdev's operstate, as ibdev2netdev reports it; port_state is the
    RDMA port state ("ACTIVE", "DOWN", ...).
    """
    base = os.path.join(root, "class", "infiniband")
    ports = []
    if not os.path.isdir(base):
        return ports
    for device in sorted(os.listdir(base)):
        dev_dir = os.path.join(base, device)
        net_dir = os.path.join(dev_dir, "device", "net")
        netdevs = sorted(os.listdir(net_dir)) if os.path.isdir(net_dir) else []
        ports_dir = os.path.join(dev_dir, "ports")
        port_ids = sorted((p for p in os.listdir(ports_dir) if p.isdigit()), key=int) if os.path.isdir(ports_dir) else []
        for port in port_ids:
            netdev = _port_netdev(root, net_dir, netdevs, port)
            port_state = _read(os.path.join(ports_dir, port, "state"))
            # "4: ACTIVE" -> "ACTIVE"
            port_state = port_state.split(":", 1)[-1].strip() if port_state else None
            oper = _read(os.path.join(root, "class", "net", netdev, "operstate")) if netdev else None
            up = oper == "up"
            ports.append({
                "device": device,
                "port": int(port),
                "netdev": netdev,
                "state": "Up" if up else "Down",
                "up": up,
                "port_state": port_state,
            })
    return ports


def _port_netdev(root, net_dir, netdevs, port):
    if len(netdevs) <= 1:
        return netdevs[0] if netdevs else None
    # several netdevs on one device (VPI dual port): dev_port is 0-based
    for netdev in netdevs:
        dev_port = _read(os.path.join(net_dir, netdev, "dev_port"))
        try:
            if dev_port is not None and str(int(dev_port, 0) + 1) == str(port):
                return netdev
        except ValueError:  # not a number: this netdev cannot be placed by it
            continue
    return netdevs[0]


def _read(path):
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace").strip()
    except OSError:
        return None


def with_mtu(ports, root="/sys"):
    """The ports, each with its netdev's MTU from sysfs (None when the netdev is not there) and
    its link (link(): speed, PCIe width and speed, firmware; and its GID table, gids())."""
    out = []
    for port in ports:
        raw = _read(os.path.join(root, "class", "net", port["netdev"], "mtu")) if port.get("netdev") else None
        facts = dict(link(port, root), gids=gids(port, root))
        out.append(dict(port, mtu=int(raw) if raw and raw.isdigit() else None, link=facts))
    return out


def _number(text):
    try:
        return float(text.split()[0]) if text else None
    except ValueError:
        return None


def _lanes(text):
    number = _number(text)
    return int(number) if number and number > 0 else None


def link(port, root="/sys"):
    """What sysfs says of a port's link (Linux's formats: net/core/net-sysfs.c speed_show, Mb/s, -1
    when unknown; drivers/pci/pci-sysfs.c, "32.0 GT/s PCIe" and a lane count): the negotiated
    Ethernet speed, the PCIe link's width and speed against their maximum, and the adapter's
    firmware (/sys/class/infiniband/DEV/fw_ver). A value sysfs does not give is None."""
    net = os.path.join(root, "class", "net", port.get("netdev") or "-")
    pci = os.path.join(net, "device")
    speed = _number(_read(os.path.join(net, "speed")))
    return {
        "speed_mbps": int(speed) if speed and speed > 0 else None,
        "pcie_width": _lanes(_read(os.path.join(pci, "current_link_width"))),
        "pcie_max_width": _lanes(_read(os.path.join(pci, "max_link_width"))),
        "pcie_speed_gts": _number(_read(os.path.join(pci, "current_link_speed"))),
        "pcie_max_speed_gts": _number(_read(os.path.join(pci, "max_link_speed"))),
        "firmware": _read(os.path.join(root, "class", "infiniband", port.get("device") or "-", "fw_ver")) or None,
    }


def gids(port, root="/sys"):
    """The port's GID table as sysfs shows it (drivers/infiniband/core/sysfs.c: gids/N is the GID
    in eight colon-separated groups, gid_attrs/types/N "RoCE v2" or "IB/RoCE v1"): [{index, gid,
    type}] of the entries in use (a zero GID is an empty slot)."""
    base = os.path.join(root, "class", "infiniband", port.get("device") or "-", "ports", str(port.get("port") or 1))
    try:
        names = os.listdir(os.path.join(base, "gids"))
    except OSError:
        return []
    out = []
    for name in sorted((n for n in names if n.isdigit()), key=int):
        gid = _read(os.path.join(base, "gids", name))
        if gid and gid.replace(":", "").strip("0"):
            out.append({"index": int(name), "gid": gid, "type": _read(os.path.join(base, "gid_attrs", "types", name))})
    return out


def gid_of_ipv4(address):
    """The RoCE v2 GID of an IPv4 address, as sysfs prints it: the IPv4-mapped IPv6 address in
    eight groups of four hex digits (192.168.100.10 -> 0000:...:ffff:c0a8:640a)."""
    octets = [int(o) for o in address.split(".")]
    return "0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x" % tuple(octets)


def select(ports, devices=None, netdevs=None):
    """Keep the ports whose device and netdev match the shell patterns given."""
    def match(value, patterns):
        return not patterns or any(fnmatch.fnmatchcase(value or "", p) for p in patterns)
    return [p for p in ports if match(p["device"], devices) and match(p["netdev"], netdevs)]


def physical_port(name):
    """The key shared by the two halves of one DGX Spark port (domain prefix removed)."""
    return _DOMAIN_PREFIX.sub(lambda m: m.group(1), name)


def summarize(ports):
    """What the roles need from a port list: up devices and the NCCL/UCX values."""
    up = [p for p in ports if p["up"]]
    env = rail_env([{"netdev": p["netdev"], "rdma_device": p["device"], "port": p["port"]} for p in up])
    halves = {}
    for p in ports:
        halves.setdefault(physical_port(p["device"]), []).append(p)
    warnings = []
    for key, members in sorted(halves.items()):
        states = [m["up"] for m in members]
        if len(members) > 1 and any(states) and not all(states):
            warnings.append(
                "only %s of the %d halves of port %s is up (%s); full bandwidth needs both"
                % (", ".join(m["device"] for m in members if m["up"]), len(members), key,
                   ", ".join("%s %s" % (m["device"], m["state"]) for m in members)))
    return {
        "ports": ports,
        "up_devices": [p["device"] for p in up],
        "up_netdevs": [p["netdev"] for p in up],
        # the same values the plan gives the engine (module_utils/_fabric.rail_env)
        "nccl_ib_hca": env.get("NCCL_IB_HCA"),
        "nccl_socket_ifname": env.get("NCCL_SOCKET_IFNAME"),
        "gloo_socket_ifname": env.get("GLOO_SOCKET_IFNAME"),
        "ucx_net_devices": env.get("UCX_NET_DEVICES"),
        "half_ports": warnings,
    }
