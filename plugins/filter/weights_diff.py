# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.sparkops.cluster.plugins.module_utils import _sync


def _weights_diff(node, head, host="node"):
    try:
        diff = _sync.compare(head, node)
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError("weights_diff: give the 'manifest' of model_manifest results (%s)" % exc)
    diff["in_sync"] = _sync.in_sync(diff)
    diff["summary"] = _sync.describe(host, diff)
    return diff


def _verified_copy(head, streamed=None, itemized=None):
    """The head's checksums of the files a verified rsync transfer wrote on a node: those the
    streams sent (model_copy, --ignore-times: every listed file) and those the exact pass
    itemized as written."""
    if not isinstance(head, dict):
        raise AnsibleFilterError("verified_copy: give the head's 'manifest' of model_manifest, got %s" % type(head).__name__)
    return _sync.verified_copy(head, list(streamed or []) + _sync.itemized_received(itemized))


def _relay_plan(order, head, diffs, relay=True):
    """Who sends each node its files (model_sync's relay or fan-out): _sync.relay_plan."""
    if not isinstance(order, (list, tuple)) or not isinstance(diffs, dict):
        raise AnsibleFilterError("relay_plan: give the nodes in play order and {node: weights_diff result}")
    try:
        return _sync.relay_plan(list(order), head, diffs, relay=bool(relay))
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError("relay_plan: give weights_diff results for the nodes (%s)" % exc)


class FilterModule:
    def filters(self):
        return {"weights_diff": _weights_diff, "verified_copy": _verified_copy, "relay_plan": _relay_plan}
