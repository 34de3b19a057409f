# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The jumbo-frame ping matrix of the rails: the probes, iputils `ping` output, and the
report. Pure Python.

A rail at MTU 9000 end to end carries an unfragmented (-M do) ping of 9000 - 28 bytes of
payload (20 of IPv4 header, 8 of ICMP) to the same rail of every peer. A switch port, a
peer or this node at a smaller MTU drops it, or this node refuses to send it.
"""

from __future__ import annotations

import re

from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError

HEADERS = 28  # IPv4 (20) + ICMP (8): the payload of a ping that fills an MTU is MTU - 28

_STATS = re.compile(r"^(?P<sent>\d+) packets transmitted, (?P<received>\d+) received")
_LOCAL = re.compile(r"^ping: local error: message too long, mtu=(?P<mtu>\d+)")
_ERROR = re.compile(r"^ping: (?P<error>.+)$")


def probes(rails, peers):
    """[{rail, netdev, size, peer, address}]: one ping per rail of this node and peer, to the
    peer's address on the same rail. rails: [{name, netdev, mtu}]; peers: [{host, rails:
    [{name, address}]}]. Raises ValueError naming a peer that lacks one of the rails."""
    out = []
    for rail in rails:
        for peer in peers:
            theirs = [r for r in peer["rails"] if r["name"] == rail["name"]]
            if not theirs:
                raise ValueError("%s has no rail %s" % (peer["host"], rail["name"]))
            out.append({"rail": rail["name"], "netdev": rail["netdev"], "size": int(rail["mtu"]) - HEADERS,
                        "peer": peer["host"], "address": theirs[0]["address"]})
    return out


def parse(text):
    """One iputils ping run: {sent, received, local_mtu, error}.

    local_mtu: the MTU this node gave for a payload it refused to send unfragmented;
    error: ping's own message when it printed one (an interface it has no such device for).
    Raises ToolOutputError when there is neither a statistics line nor an error of ping's."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    out = {"sent": None, "received": None, "local_mtu": None, "error": None}
    for line in lines:
        m = _STATS.match(line)
        if m:
            out["sent"], out["received"] = int(m.group("sent")), int(m.group("received"))
            continue
        m = _LOCAL.match(line)
        if m:
            out["local_mtu"] = int(m.group("mtu"))
            continue
        m = _ERROR.match(line)
        if m and out["error"] is None:
            out["error"] = m.group("error")
    if out["sent"] is None and out["error"] is None:
        raise ToolOutputError("ping", "no 'N packets transmitted, M received' line and no error of ping's; "
                              "is this iputils ping?", lines[-1] if lines else "", len(lines))
    return out


def verdict(probe, parsed):
    """The probe's link: {rail, netdev, peer, address, size, ok, problem}."""
    link = dict(probe, ok=bool(parsed["received"]), received=parsed["received"] or 0, problem=None)
    if link["ok"]:
        return link
    if parsed["local_mtu"] is not None:
        link["problem"] = "this node would not send it unfragmented: its %s has MTU %d" % (
            probe["netdev"], parsed["local_mtu"])
    elif parsed["error"]:
        link["problem"] = parsed["error"]
    else:
        link["problem"] = "no reply"
    return link


def report(host, links):
    """One sentence per rail whose pings did not all come back, naming the peers and the fix."""
    out = []
    by_rail = {}
    for link in links:
        if not link["ok"]:
            by_rail.setdefault((link["rail"], link["size"]), []).append(link)
    for (rail, size), bad in sorted(by_rail.items()):
        out.append("%s: no unfragmented %d-byte ping on %s to %s. Check MTU %d at both ends (and on the switch "
                   "ports between them) and the cabling." % (
                       host, size, rail, "; ".join("%s (%s: %s)" % (b["peer"], b["address"], b["problem"])
                                                   for b in bad), size + HEADERS))
    return out
