# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model weights on every node: a manifest of a model directory with its symlinks
resolved (a Hugging Face cache keeps snapshots as links into blobs/), and the
comparison of each node's manifest with the head's. Pure Python (os and hashlib)."""

from __future__ import annotations

import hashlib
import os

CHUNK = 8 * 1024 * 1024


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def manifest(root, checksum=True):
    """Every file under root, symlinks followed, as {relpath: {size, sha256, link}}.

    link is the symlink target when the path (or a directory above it) is a link: a
    copy that keeps such links gives the receiving node links into a cache it does not
    have (spark-vllm-docker PR #408). Dangling links are listed apart.
    """
    root = os.path.abspath(root)
    files, dangling = {}, []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if not os.path.exists(path):
                dangling.append({"path": rel, "target": os.readlink(path) if os.path.islink(path) else None})
                continue
            real = os.path.realpath(path)
            entry = {"size": os.path.getsize(path), "sha256": sha256(path) if checksum else None,
                     "link": real if real != os.path.join(os.path.realpath(root), rel) else None}
            files[rel] = entry
    return {"root": root, "files": files, "dangling": dangling,
            "total_bytes": sum(f["size"] for f in files.values()), "count": len(files)}


def compare(head, node):
    """What differs between the head's manifest and a node's: missing, differ (size or
    checksum), extra files and dangling links on the node. Empty lists: the same weights."""
    hf, nf = head["files"], node["files"]
    differ = []
    for rel in sorted(set(hf) & set(nf)):
        a, b = hf[rel], nf[rel]
        if a["size"] != b["size"]:
            differ.append("%s (%d B on the head, %d B here)" % (rel, a["size"], b["size"]))
        elif a["sha256"] and b["sha256"] and a["sha256"] != b["sha256"]:
            differ.append("%s (checksum differs)" % rel)
    return {"missing": sorted(set(hf) - set(nf)), "differ": differ, "extra": sorted(set(nf) - set(hf)),
            "dangling": [d["path"] for d in node.get("dangling") or []]}


def in_sync(diff):
    return not (diff["missing"] or diff["differ"] or diff["dangling"])


def describe(host, diff):
    parts = []
    for key, what in (("missing", "missing"), ("differ", "different"), ("dangling", "dangling links")):
        items = diff[key]
        if items:
            parts.append("%d %s (%s%s)" % (len(items), what, ", ".join(items[:3]), ", ..." if len(items) > 3 else ""))
    return "%s: %s" % (host, "; ".join(parts) if parts else "same weights as the head")
