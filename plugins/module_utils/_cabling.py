# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which port of which peer is on the wire of each rail: iputils `arping` output and the
cabling diagnosis built on it. Pure Python.

A rail is cabled right when the peer's port of the same rail answers an ARP request sent
on it. A ping alone cannot tell: with a crossed cable (port 1 of one node in port 2 of
the other, KF-16) Linux answers ARP for any of its
addresses on any port (arp_ignore=0), so the ping to the same-rail address can still
come back over the wrong ports. The MAC address of the answer tells the ports apart.
"""

from __future__ import annotations

import re

from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError

_HEADER = re.compile(r"^ARPING (?P<target>\S+)(?: from (?P<source>\S+))? (?P<netdev>\S+)$")
# A request from the target counts as a response too (a node asking us at the same time):
# it was sent by the target's port on this wire, so its MAC tells the same.
_REPLY = re.compile(r"^(?:Unicast|Broadcast) (?:reply|request) from (?P<address>\S+) \[(?P<mac>[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})\]")
_RECEIVED = re.compile(r"^Received (?P<n>\d+) response")


def parse_arping(text):
    """One iputils arping run: {target, source, netdev, macs, received}.

    macs: the MAC addresses of the target's replies (and requests), lower case, in the order
    they came, without repeats.
    Raises ToolOutputError when the output has no ARPING header or the reply count
    differs from the replies listed.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    head = _HEADER.match(lines[0]) if lines else None
    if not head:
        raise ToolOutputError("arping", "no 'ARPING <target> from <source> <netdev>' header; "
                              "is this iputils arping (package iputils-arping)?", lines[0] if lines else "", 1)
    macs, replies, received = [], 0, None
    for line in lines[1:]:
        reply = _REPLY.match(line)
        if reply:
            replies += 1
            mac = reply.group("mac").lower()
            if mac not in macs:
                macs.append(mac)
            continue
        count = _RECEIVED.match(line)
        if count:
            received = int(count.group("n"))
    if received is not None and received != replies:
        raise ToolOutputError("arping", "'Received %d response(s)' but %d reply line(s)" % (received, replies))
    return {"target": head.group("target"), "source": head.group("source"), "netdev": head.group("netdev"),
            "macs": macs, "received": replies}


def _links(rails, peers):
    """(rail, peer, the peer's port of the same rail) for every rail and peer."""
    for rail in rails:
        for peer in peers:
            same = [p for p in peer["rails"] if p["name"] == rail["name"]]
            if not same:
                raise ValueError("%s has no rail %s" % (peer["host"], rail["name"]))
            yield rail, peer, same[0]


def first_probes(rails, peers):
    """On each rail, an ARP request for each peer's address on the same rail."""
    return [{"netdev": rail["netdev"], "address": port["address"], "count": len(peer["rails"])}
            for rail, peer, port in _links(rails, peers)]


def second_probes(rails, peers, seen):
    """Where the same-rail port did not answer: ARP requests on that rail for the peer's other
    addresses (a node with arp_ignore=1 answers only for the address of the receiving port).

    seen: {(netdev, address): [mac, ...]} from the probes run so far.
    """
    out = []
    for rail, peer, port in _links(rails, peers):
        if port["mac"].lower() in seen.get((rail["netdev"], port["address"]), []):
            continue
        out.extend({"netdev": rail["netdev"], "address": other["address"], "count": len(peer["rails"])}
                   for other in peer["rails"] if other["name"] != rail["name"]
                   and (rail["netdev"], other["address"]) not in seen)
    return out


def diagnose(host, rails, peers, seen):
    """Every link of this node with its state: ok, crossed, conflict or no_answer.

    Returns (links, failures): links as dicts, failures as sentences that name the node,
    the rail, the port and the fix. When all links of the node are crossed and it has two
    peers or more, the first sentence says that this node's cables are the swapped ones.
    With one peer a crossed cable has no single end to blame.
    """
    links, failures = [], []
    for rail, peer, port in _links(rails, peers):
        macs = []
        for other in peer["rails"]:
            macs.extend(m for m in seen.get((rail["netdev"], other["address"]), []) if m not in macs)
        by_mac = dict((p["mac"].lower(), p) for p in peer["rails"])
        where = "%s %s (%s)" % (host, rail["name"], rail["netdev"])
        link = {"rail": rail["name"], "netdev": rail["netdev"], "peer": peer["host"], "peer_rail": None, "macs": macs}
        links.append(link)
        if port["mac"].lower() in macs:
            link.update(state="ok", peer_rail=port["name"])
        elif any(m in by_mac for m in macs):
            found = [by_mac[m] for m in macs if m in by_mac][0]
            link.update(state="crossed", peer_rail=found["name"])
            failures.append("%s is cabled to %s's %s port (%s, %s), not to its %s port (%s)"
                            % (where, peer["host"], found["name"], found["netdev"], found["mac"].lower(), port["name"],
                               port["netdev"]))
        elif macs:
            link.update(state="conflict")
            failures.append(
                "%s: %s's %s address %s is answered by %s, which is no port of %s (%s): another machine holds the "
                "address, or the rail is bridged to another network"
                % (where, peer["host"], port["name"], port["address"], ", ".join(macs), peer["host"],
                   ", ".join(p["mac"].lower() for p in peer["rails"])))
        else:
            link.update(state="no_answer")
            failures.append(
                "%s: no port of %s answers ARP on this rail (asked for %s): no link, a cable in another node, "
                "or a switch port in another VLAN"
                % (where, peer["host"], ", ".join(p["address"] for p in peer["rails"])))
    crossed = [ln for ln in links if ln["state"] == "crossed"]
    if crossed:
        failures.append("Crossed cables: cable the same port on both nodes (KF-16, NVIDIA connect-two-sparks guide)")
    if len(peers) >= 2 and links and len(crossed) == len(links):
        # had another node its cables swapped, only the links to that node would be crossed
        failures.insert(0, "%s: every rail reaches every peer on another rail: this node's cables are swapped. Swap "
                           "them back, or swap the netdev names of its rails in its host_vars" % host)
    return links, failures
