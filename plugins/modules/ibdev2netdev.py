#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ibdev2netdev
short_description: Map RDMA devices and ports to their network interfaces
description:
  - Runs C(ibdev2netdev) (plain or C(-v) form) and returns every RDMA device and port
    with its netdev and state, plus the values the roles derive from them
    (C(NCCL_IB_HCA), C(NCCL_SOCKET_IFNAME), C(GLOO_SOCKET_IFNAME), C(UCX_NET_DEVICES)).
  - When C(ibdev2netdev) is not installed it reads the same mapping from sysfs
    (C(/sys/class/infiniband/*/device/net/*) and the port state files) and says so in
    RV(source).
  - On a DGX Spark each 200G ConnectX-7 port appears as two netdevs on two PCIe
    domains (C(rocep1s0f1)/C(roceP2p1s0f1)); both halves must be up for full
    bandwidth. A port with one half down is reported in RV(half_ports) and as a warning.
  - Each port comes with its netdev's MTU, read from sysfs.
  - Never reports C(changed).
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.attributes.READ_ONLY
  - sparkops.cluster.attributes.COMMAND_TIMEOUT
options:
  verbose:
    description: Run C(ibdev2netdev -v) and also return PCI address, part, firmware and RDMA port state.
    type: bool
    default: false
  devices:
    description: Keep only RDMA devices matching one of these shell patterns (for example C(roce*)).
    type: list
    elements: str
    default: []
  netdevs:
    description: Keep only ports whose netdev matches one of these shell patterns (for example C(enp1s0f1*)).
    type: list
    elements: str
    default: []
  source:
    description:
      - Where to read the mapping. C(auto) uses the tool when installed, else sysfs.
    type: str
    choices: [auto, tool, sysfs]
    default: auto
  require_up:
    description: Fail unless at least this many of the selected ports are up.
    type: int
    default: 0
  sysfs_root:
    description: Root of the sysfs tree, for the sysfs source and the netdevs' MTU (read from sysfs whatever the source).
    type: path
    default: /sys
"""

EXAMPLES = r"""
- name: Read the RoCE rails
  sparkops.cluster.ibdev2netdev:
    devices: ["roce*"]
    require_up: 2
  register: rdma

- name: Use the derived NCCL value
  ansible.builtin.debug:
    msg: "NCCL_IB_HCA={{ rdma.nccl_ib_hca }}"
"""

RETURN = r"""
source:
  description: Where the mapping came from.
  returned: always
  type: str
  sample: ibdev2netdev
ports:
  description: Every selected RDMA port.
  returned: always
  type: list
  elements: dict
  contains:
    device: {description: "RDMA device name.", type: str, returned: always, sample: rocep1s0f1}
    port: {description: "RDMA port number.", type: int, returned: always, sample: 1}
    netdev: {description: "Network interface of the port.", type: str, returned: always, sample: enp1s0f1np1}
    state: {description: "C(Up) or C(Down) (the netdev's link).", type: str, returned: always, sample: Up}
    up: {description: "Whether the netdev is up.", type: bool, returned: always, sample: true}
    mtu: {description: "The netdev's MTU (from sysfs), or null when it cannot be read.", type: int, returned: always, sample: 9000}
    link:
      description:
        - The port's link as sysfs shows it, each null where sysfs has no value - C(speed_mbps) (the netdev's
          negotiated speed), C(pcie_width) and C(pcie_max_width) (lanes), C(pcie_speed_gts) and
          C(pcie_max_speed_gts), C(firmware) (the adapter's C(fw_ver)), C(gids) (the port's GID table in use, each
          C(index), C(gid) and C(type), C(RoCE v2) or C(IB/RoCE v1)).
      type: dict
      returned: always
      sample: {speed_mbps: 200000, pcie_width: 4, pcie_max_width: 4, pcie_speed_gts: 32.0, pcie_max_speed_gts: 32.0, firmware: 28.45.4028}
    port_state: {description: "RDMA port state (C(-v) form and sysfs).", type: str, returned: when known, sample: ACTIVE}
    pci: {description: "PCI address (C(-v) form).", type: str, returned: with verbose, sample: "0000:01:00.1"}
    firmware: {description: "Firmware version (C(-v) form).", type: str, returned: with verbose, sample: 28.45.4028}
up_devices:
  description: RDMA devices whose netdev is up.
  returned: always
  type: list
  elements: str
  sample: [rocep1s0f1, roceP2p1s0f1]
up_netdevs:
  description: Netdevs of the up ports.
  returned: always
  type: list
  elements: str
  sample: [enp1s0f1np1, enP2p1s0f1np1]
nccl_ib_hca:
  description: C(NCCL_IB_HCA) value naming exactly the up ports (C(=) means exact match), or null.
  returned: always
  type: str
  sample: "=rocep1s0f1:1,roceP2p1s0f1:1"
nccl_socket_ifname:
  description: C(NCCL_SOCKET_IFNAME) value naming exactly the up netdevs, or null.
  returned: always
  type: str
  sample: "=enp1s0f1np1,enP2p1s0f1np1"
gloo_socket_ifname:
  description: The first up netdev, for C(GLOO_SOCKET_IFNAME) and C(TP_SOCKET_IFNAME), or null.
  returned: always
  type: str
  sample: enp1s0f1np1
ucx_net_devices:
  description: C(UCX_NET_DEVICES) value for the up ports, or null.
  returned: always
  type: str
  sample: "rocep1s0f1:1,roceP2p1s0f1:1"
half_ports:
  description: Ports with one half down (half bandwidth).
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sparkops.cluster.plugins.module_utils._command import require_positive
from ansible_collections.sparkops.cluster.plugins.module_utils._nodefacts import rdma


def main():
    module = AnsibleModule(
        argument_spec=dict(
            verbose=dict(type="bool", default=False),
            devices=dict(type="list", elements="str", default=[]),
            netdevs=dict(type="list", elements="str", default=[]),
            source=dict(type="str", choices=["auto", "tool", "sysfs"], default="auto"),
            require_up=dict(type="int", default=0),
            sysfs_root=dict(type="path", default="/sys"),
            command_timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    p = module.params
    require_positive(module, "command_timeout")
    source, result = rdma(module, p["source"], p["devices"], p["netdevs"], p["verbose"], p["sysfs_root"],
                          p["command_timeout"])
    up = len(result["up_devices"])
    if up < p["require_up"]:
        module.fail_json(
            msg="%d RDMA port(s) up, require_up is %d (selected: %s; source %s). Check cabling, "
                "`ip link` and the netplan rails." % (
                    up, p["require_up"],
                    ", ".join("%s:%d->%s %s" % (x["device"], x["port"], x["netdev"], x["state"]) for x in result["ports"])
                    or "none", source),
            source=source, **result)
    module.exit_json(changed=False, source=source, **result)


if __name__ == "__main__":
    main()
