#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rail_cabling
short_description: Find crossed, missing and conflicting RoCE rail cables with ARP
description:
  - On each rail of this node, asks every peer's address on the same rail with an ARP
    request (iputils C(arping)) and compares the MAC address of the answer with the
    peer's port of that rail. A rail answered by the peer's port of another rail is
    C(crossed), meaning port 1 of one node is cabled to port 2 of the other (KF-16, NVIDIA
    connect-two-sparks guide). A ping cannot see this, because Linux answers ARP for any of
    its addresses on any port, so the ping can come back over the crossed ports.
  - Where the same-rail port does not answer, the peer's other addresses are asked on
    that rail too (a node with C(arp_ignore=1) answers only for the receiving port's
    address), so a crossed cable is named even then.
  - Asks for as many answers as the peer has rails, so that on a switch where both ports
    of a peer answer (ARP flux) the right port is not missed.
  - All requests run at once; a run takes about O(timeout) seconds, twice when some
    same-rail port does not answer. Each C(arping) may run O(timeout) + O(command_timeout)
    seconds before it is killed.
  - Sends ARP requests only; never reports C(changed).
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
requirements:
  - iputils C(arping) (Debian and Ubuntu package C(iputils-arping)); root or C(CAP_NET_RAW).
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.attributes.READ_ONLY
  - sparkops.cluster.attributes.COMMAND_TIMEOUT
options:
  rails:
    description: The rails of this node. Their MAC addresses are read from sysfs.
    type: list
    elements: dict
    required: true
    suboptions:
      name: {description: "Rail name, as in C(sparkops_rails).", type: str, required: true}
      netdev: {description: "Network interface of the rail on this node.", type: str, required: true}
  peers:
    description: The other nodes with their rails' addresses and MAC addresses.
    type: list
    elements: dict
    required: true
    suboptions:
      host: {description: "The peer's name, used in the messages.", type: str, required: true}
      rails:
        description: The peer's rails.
        type: list
        elements: dict
        required: true
        suboptions:
          name: {description: "Rail name.", type: str, required: true}
          netdev: {description: "The peer's interface of the rail (for the messages).", type: str, required: true}
          address: {description: "The peer's IPv4 address on the rail.", type: str, required: true}
          mac: {description: "MAC address of the peer's interface of the rail.", type: str, required: true}
  host:
    description: This node's name in the messages. Default, the system's host name.
    type: str
  timeout:
    description: Seconds each C(arping) waits for answers.
    type: int
    default: 1
  fail_on_miscabling:
    description: Fail when a link is not C(ok). With C(false), return the findings in RV(failures) only.
    type: bool
    default: true
  sysfs_root:
    description: Root of the sysfs tree the MAC addresses are read from.
    type: path
    default: /sys
"""

EXAMPLES = r"""
- name: Every rail reaches the same rail of every peer
  sparkops.cluster.rail_cabling:
    rails:
      - {name: rail1, netdev: enp1s0f1np1}
      - {name: rail2, netdev: enP2p1s0f1np1}
    peers:
      - host: spark-beta
        rails:
          - {name: rail1, netdev: enp1s0f1np1, address: 192.168.100.11, mac: "4c:bb:47:2c:10:71"}
          - {name: rail2, netdev: enP2p1s0f1np1, address: 192.168.101.11, mac: "4c:bb:47:2c:10:75"}
"""

RETURN = r"""
macs:
  description: MAC address of each rail of this node, by netdev.
  returned: always
  type: dict
  sample: {enp1s0f1np1: "4c:bb:47:2c:0f:e9"}
links:
  description: One entry per rail and peer.
  returned: always
  type: list
  elements: dict
  contains:
    rail: {description: "This node's rail.", type: str, returned: always, sample: rail1}
    netdev: {description: "This node's interface of the rail.", type: str, returned: always, sample: enp1s0f1np1}
    peer: {description: "The peer.", type: str, returned: always, sample: spark-beta}
    state:
      description: C(ok), C(crossed) (the peer's port of another rail is on this wire), C(conflict)
        (a MAC that is no port of the peer answers) or C(no_answer).
      type: str
      returned: always
      sample: ok
    peer_rail: {description: "The peer's rail whose port answered on this wire, or null.", type: str, returned: always, sample: rail1}
    macs: {description: "Every MAC that answered on this wire for the peer's addresses.", type: list, elements: str, returned: always}
failures:
  description: One sentence per link that is not C(ok), naming the node, rail, port and fix.
  returned: always
  type: list
  elements: str
  sample: []
probes:
  description: Number of C(arping) runs.
  returned: always
  type: int
  sample: 6
"""

import ipaddress
import os
import re
import socket
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sparkops.cluster.plugins.module_utils import _cabling, _command
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError

MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def bad_peer_fields(peers):
    """Every peer rail whose mac or address is not one, named (before any probe)."""
    out = []
    for peer in peers:
        for rail in peer["rails"]:
            where = "peers: %s rail %s" % (peer["host"], rail["name"])
            if not MAC.match(rail["mac"].strip().lower()):
                out.append("%s: mac %r is not a MAC address (six hex pairs separated by colons, e.g. 4c:bb:47:2c:10:71)"
                           % (where, rail["mac"]))
            try:
                ipaddress.IPv4Address(rail["address"])
            except ValueError:
                out.append("%s: address %r is not an IPv4 address" % (where, rail["address"]))
    return out


def _read_mac(root, netdev):
    try:
        with open(os.path.join(root, "class", "net", netdev, "address")) as f:
            return f.read().strip().lower()
    except (IOError, OSError):
        return None


def main():
    port = dict(name=dict(type="str", required=True), netdev=dict(type="str", required=True),
                address=dict(type="str", required=True), mac=dict(type="str", required=True))
    module = AnsibleModule(
        argument_spec=dict(
            rails=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True), netdev=dict(type="str", required=True))),
            peers=dict(type="list", elements="dict", required=True, options=dict(
                host=dict(type="str", required=True),
                rails=dict(type="list", elements="dict", required=True, options=port))),
            host=dict(type="str"),
            timeout=dict(type="int", default=1),
            fail_on_miscabling=dict(type="bool", default=True),
            sysfs_root=dict(type="path", default="/sys"),
            command_timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    p = module.params
    _command.require_positive(module, "timeout", "command_timeout")
    problems = bad_peer_fields(p["peers"])
    if problems:
        module.fail_json(msg="; ".join(problems))
    rails = []
    for rail in p["rails"]:
        mac = _read_mac(p["sysfs_root"], rail["netdev"])
        if not mac:
            module.fail_json(msg="rails: %s (%s) is not an interface of this node" % (rail["name"], rail["netdev"]))
        rails.append(dict(rail, mac=mac))
    try:
        plan = _cabling.first_probes(rails, p["peers"])
    except ValueError as exc:  # a peer lacks one of this node's rails
        module.fail_json(msg="peers: %s" % exc)

    arping = module.get_bin_path("arping")
    version = "".join(_command.run_module_tool(module, [arping, "-V"], p["command_timeout"], ok=None)[1:]) if arping else ""
    if "iputils" not in version:
        module.fail_json(msg="iputils arping is needed (%s): install the package iputils-arping"
                         % ("found %s, which is another arping" % arping if arping else "no arping on the PATH"))

    def probe_one(probe):
        argv = [arping, "-c", str(probe["count"]), "-w", str(p["timeout"]), "-I", probe["netdev"], probe["address"]]
        try:  # arping waits `timeout` seconds itself; the bound gives it command_timeout more
            rc, out, err = _command.run(argv, p["timeout"] + p["command_timeout"])
        except (_command.CommandTimeout, OSError) as exc:
            return probe, None, str(exc)
        if rc not in (0, 1):  # 1: fewer answers than asked for
            return probe, None, "%s failed (rc=%d): %s" % (" ".join(argv), rc, (err or out).strip())
        try:
            return probe, _cabling.parse_arping(out), None
        except ToolOutputError as exc:
            return probe, None, str(exc)

    seen, count = {}, 0
    _command.guard()  # the probes run in threads: a stopped module still kills them
    with ThreadPoolExecutor(max_workers=16) as pool:
        while plan:
            count += len(plan)
            for probe, parsed, error in pool.map(probe_one, plan):
                if error:
                    module.fail_json(msg=error)
                seen[(probe["netdev"], probe["address"])] = parsed["macs"]
            plan = _cabling.second_probes(rails, p["peers"], seen)

    links, failures = _cabling.diagnose(p["host"] or socket.gethostname(), rails, p["peers"], seen)
    result = dict(changed=False, macs=dict((r["netdev"], r["mac"]) for r in rails), links=links,
                  failures=failures, probes=count)
    if failures and p["fail_on_miscabling"]:
        module.fail_json(msg="; ".join(failures), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
