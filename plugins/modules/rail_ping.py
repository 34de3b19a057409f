#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rail_ping
short_description: Unfragmented pings at the rails' MTU to every peer, all at once
description:
  - On each rail of this node, sends one unfragmented ping (iputils C(ping -M do)) whose
    packet fills the rail's MTU (payload MTU - 28) to the same rail's address of every
    peer, and reports each link. A link at MTU 9000 end to end answers; a peer, a switch
    port or this node at a smaller MTU does not (RoCE wants MTU 9000 on every hop, NVIDIA
    DGX Spark clustering guide).
  - All pings run at once, so one call takes about O(timeout) seconds whatever the number
    of peers. Each C(ping) may run O(timeout) + O(command_timeout) seconds before it is killed.
  - Each link gets O(count) packets 0.2 s apart and is up when one of them comes back. Pings
    started at the same moment lose a first reply now and then (seen here with iputils 20221126,
    1 in 20 of eight at once over loopback, always the first packet), so one packet alone
    would report a sound link as down.
  - Sends pings only; never reports C(changed). Crossed cables are for
    M(sparkops.cluster.rail_cabling), since a ping can come back over crossed ports.
version_added: 0.2.0
author: sparkops.cluster developers (@sparkops)
requirements:
  - iputils C(ping) (Debian and Ubuntu package C(iputils-ping)).
extends_documentation_fragment:
  - sparkops.cluster.attributes
  - sparkops.cluster.attributes.READ_ONLY
  - sparkops.cluster.attributes.COMMAND_TIMEOUT
options:
  rails:
    description: The rails of this node.
    type: list
    elements: dict
    required: true
    suboptions:
      name: {description: "Rail name, as in C(sparkops_rails).", type: str, required: true}
      netdev: {description: "Network interface of the rail on this node.", type: str, required: true}
      mtu: {description: "The rail's MTU; the ping's packet fills it.", type: int, required: true}
  peers:
    description:
      - The other nodes with their rails' addresses, as the P(sparkops.cluster.rail_peers#filter)
        filter returns them (the same value as the C(peers) of M(sparkops.cluster.rail_cabling)).
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
          address: {description: "The peer's IPv4 address on the rail.", type: str, required: true}
          netdev: {description: "The peer's interface of the rail; accepted as rail_peers returns it, not used.", type: str}
          mac: {description: "The MAC address of the peer's rail; accepted as rail_peers returns it, not used.", type: str}
  host:
    description: This node's name in the messages. Default, the system's host name.
    type: str
  timeout:
    description: Seconds each ping waits for its replies after the last packet (C(ping -W)).
    type: int
    default: 2
  count:
    description: Packets per link, 0.2 s apart (C(ping -c)); the link is up when one comes back.
    type: int
    default: 3
  fail_on_loss:
    description: Fail when a link does not answer. With C(false), return the findings in RV(failures) only.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Every peer answers an unfragmented jumbo ping on every rail
  sparkops.cluster.rail_ping:
    rails:
      - {name: rail1, netdev: enp1s0f1np1, mtu: 9000}
      - {name: rail2, netdev: enP2p1s0f1np1, mtu: 9000}
    peers:
      - host: spark-beta
        rails:
          - {name: rail1, address: 192.168.100.11}
          - {name: rail2, address: 192.168.101.11}

- name: The same, with the peers the inventory plans (the rails' facts gathered on every node)
  sparkops.cluster.rail_ping:
    rails: "{{ sparkops_rails | community.general.keep_keys(target=['name', 'netdev', 'mtu']) }}"
    peers: "{{ hostvars | sparkops.cluster.rail_peers(inventory_hostname, ansible_play_hosts) }}"
"""

RETURN = r"""
links:
  description: One entry per rail and peer.
  returned: always
  type: list
  elements: dict
  contains:
    rail: {description: "This node's rail.", type: str, returned: always, sample: rail1}
    netdev: {description: "This node's interface of the rail.", type: str, returned: always, sample: enp1s0f1np1}
    peer: {description: "The peer.", type: str, returned: always, sample: spark-beta}
    address: {description: "The peer's address pinged.", type: str, returned: always, sample: 192.168.100.11}
    size: {description: "The payload in bytes (the rail's MTU - 28).", type: int, returned: always, sample: 8972}
    ok: {description: "A reply came back.", type: bool, returned: always, sample: true}
    received: {description: "Replies received of the packets sent.", type: int, returned: always, sample: 3}
    problem:
      description: Why not, when not (no reply; this node's MTU below the rail's; ping's own error).
      type: str
      returned: always
      sample: null
failures:
  description: One sentence per rail whose pings did not all come back, naming the node, the peers and the fix.
  returned: always
  type: list
  elements: str
  sample: []
"""

import socket
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sparkops.cluster.plugins.module_utils import _command, _ping
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            rails=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True), netdev=dict(type="str", required=True),
                mtu=dict(type="int", required=True))),
            peers=dict(type="list", elements="dict", required=True, options=dict(
                host=dict(type="str", required=True),
                rails=dict(type="list", elements="dict", required=True, options=dict(
                    name=dict(type="str", required=True), address=dict(type="str", required=True),
                    netdev=dict(type="str"), mac=dict(type="str"))))),
            host=dict(type="str"),
            timeout=dict(type="int", default=2),
            count=dict(type="int", default=3),
            fail_on_loss=dict(type="bool", default=True),
            command_timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    p = module.params
    _command.require_positive(module, "timeout", "count", "command_timeout")
    for rail in p["rails"]:
        if not 576 <= rail["mtu"] <= 65535:
            module.fail_json(msg="rails: %s mtu %d is not an IPv4 MTU (576-65535)" % (rail["name"], rail["mtu"]))
    try:
        plan = _ping.probes(p["rails"], p["peers"])
    except ValueError as exc:
        module.fail_json(msg="peers: %s" % exc)
    ping = module.get_bin_path("ping", required=True)

    def probe_one(probe):
        argv = [ping, "-c", str(p["count"]), "-i", "0.2", "-W", str(p["timeout"]), "-M", "do", "-s", str(probe["size"]),
                "-I", probe["netdev"], probe["address"]]
        try:  # ping waits `timeout` seconds itself after its packets; the bound gives it command_timeout more
            _rc, out, err = _command.run(argv, p["timeout"] + 0.2 * p["count"] + p["command_timeout"])
        except (_command.CommandTimeout, OSError) as exc:
            return None, str(exc)
        try:
            return _ping.verdict(probe, _ping.parse(out + "\n" + err)), None
        except ToolOutputError as exc:
            return None, str(exc)

    links = []
    _command.guard()  # the pings run in threads: a stopped module still kills them
    with ThreadPoolExecutor(max_workers=min(32, max(1, len(plan)))) as pool:
        for link, error in pool.map(probe_one, plan):
            if error:
                module.fail_json(msg=error)
            links.append(link)
    failures = _ping.report(p["host"] or socket.gethostname(), links)
    result = dict(changed=False, links=links, failures=failures)
    if failures and p["fail_on_loss"]:
        module.fail_json(msg="; ".join(failures), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
