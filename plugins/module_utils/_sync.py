# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model weights on every node: a manifest of a model directory with its symlinks
resolved (a Hugging Face cache keeps snapshots as links into blobs/), and the
comparison of each node's manifest with the head's. Pure Python (os and hashlib)."""

from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor

CHUNK = 8 * 1024 * 1024
# files hashed at once by default: one per CPU this process may run on, at most this many
# (SHA-256 of one file runs on one core, about 0.9 GB/s; an NVMe reads several GB/s)
MAX_JOBS = 16


def default_jobs():
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_JOBS, cpus))


def sha256(path):
    h = hashlib.sha256()
    # O_NONBLOCK: should the file have become a named pipe since it was listed, open()
    # returns at once instead of waiting for a writer
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def manifest(root, checksum=True, jobs=None):
    """Every file under root, symlinks followed, as {relpath: {size, sha256, link}}.

    The checksums are computed `jobs` files at a time (threads: hashlib releases the GIL
    while it hashes), the largest files first; default_jobs() when None.

    link is the symlink target when the path (or a directory above it) is a link: a
    copy that keeps such links gives the receiving node links into a cache it does not
    have (spark-vllm-docker PR #408). Dangling links are listed apart.
    """
    root = os.path.abspath(root)
    files, dangling, skipped, paths = {}, [], [], {}
    seen_dirs = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        # a directory reached again (a symlink loop, or two links to one directory) is
        # walked once: its files are not listed twice, and the walk ends
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen_dirs:
            skipped.append({"path": os.path.relpath(dirpath, root), "kind": "directory seen before (symlink loop)"})
            dirnames[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            try:
                st = os.stat(path)
            except OSError:  # dangling link, or a link loop (ELOOP)
                dangling.append({"path": rel, "target": os.readlink(path) if os.path.islink(path) else None})
                continue
            if not stat.S_ISREG(st.st_mode):
                # a named pipe would block the checksum forever; sockets and devices are no weights
                skipped.append({"path": rel, "kind": _kind(st.st_mode)})
                continue
            real = os.path.realpath(path)
            files[rel] = {"size": st.st_size, "sha256": None,
                          "link": real if real != os.path.join(os.path.realpath(root), rel) else None}
            paths[rel] = path
    if checksum and files:
        order = sorted(files, key=lambda r: (-files[r]["size"], r))
        with ThreadPoolExecutor(max_workers=min(jobs or default_jobs(), len(order))) as pool:
            for rel, digest in zip(order, pool.map(sha256, [paths[r] for r in order])):
                files[rel]["sha256"] = digest
    return {"root": root, "files": files, "dangling": dangling, "skipped": skipped,
            "total_bytes": sum(f["size"] for f in files.values()), "count": len(files)}


def safe_model_path(path, roots, ismount=os.path.ismount):
    """The model directory resolved (symlinks and .. followed), or ValueError naming why
    `rsync --delete` must not make it identical to the head's: empty, relative, not below
    one of roots (the allow-list, itself resolved), one of the roots itself, or a mount
    point (a whole file system)."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError("model_sync_path is empty: set sparkops_model_path to the model's own directory, e.g. "
                         "/var/lib/sparkops/models/NAME")
    if not os.path.isabs(path):
        raise ValueError("model_sync_path %r is relative: give the absolute path of the model's own directory" % path)
    real = os.path.realpath(path)
    real_roots = [os.path.realpath(r) for r in roots or [] if isinstance(r, str) and os.path.isabs(r)]
    below = [r for r in real_roots if real != r and real.startswith(r.rstrip("/") + "/")]
    if not below:
        raise ValueError("model_sync_path %s resolves to %s, which is not a directory below model_sync_roots (%s): "
                         "rsync --delete would make it identical to the head's copy; put the model below one of "
                         "them or add its parent to model_sync_roots" % (path, real, ", ".join(real_roots) or "none"))
    if ismount(real):
        raise ValueError("model_sync_path %s (%s) is a mount point: rsync --delete would rewrite a whole file system; "
                         "use a directory of the model inside it" % (path, real))
    return real


def _kind(mode):
    for test, name in ((stat.S_ISFIFO, "named pipe"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "not a regular file"


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
