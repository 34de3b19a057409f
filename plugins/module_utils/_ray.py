# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is the Ray cluster whole? From `ray.nodes()` as JSON. Pure Python."""

from __future__ import annotations

import json

from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError


def cluster_state(nodes_json, expected, gpus_per_node):
    """expected: {rail address: inventory name}. Returns nodes and GPUs alive, the
    expected nodes missing (by name), dead nodes, and whether the cluster is whole."""
    try:
        start = nodes_json.index("[")
        nodes = json.loads(nodes_json[start:])
    except ValueError as exc:
        raise ToolOutputError("ray.nodes()", "expected a JSON list: %s" % exc, nodes_json.strip()[-200:] or None)
    alive = {}
    dead = []
    for n in nodes:
        try:
            address, is_alive = n["NodeManagerAddress"], n["Alive"]
        except (KeyError, TypeError):
            raise ToolOutputError("ray.nodes()", "a node without NodeManagerAddress/Alive", str(n)[:200])
        if is_alive:
            alive[address] = float((n.get("Resources") or {}).get("GPU", 0))
        else:
            dead.append(address)
    missing = sorted(name for address, name in expected.items() if address not in alive)
    gpus = sum(alive.values())
    want = len(expected) * gpus_per_node
    return {
        "nodes": len(alive),
        "gpus": gpus,
        "missing": missing,
        "dead": sorted(expected.get(a, a) for a in set(dead) - set(alive)),
        "unexpected": sorted(a for a in alive if a not in expected),
        "whole": not missing and gpus >= want,
        "summary": "%d/%d nodes, %g/%d GPU%s" % (
            len(alive), len(expected), gpus, want, "; missing: " + ", ".join(missing) if missing else ""),
    }
