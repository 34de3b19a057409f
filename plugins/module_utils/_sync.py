# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model weights on every node: a manifest of a model directory with its symlinks
resolved (a Hugging Face cache keeps snapshots as links into blobs/), and the
comparison of each node's manifest with the head's. Pure Python (os and hashlib)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

CHUNK = 8 * 1024 * 1024
# files hashed at once by default: one per CPU this process may run on, at most this many
# (SHA-256 of one file runs on one core, about 0.9 GB/s; an NVMe reads several GB/s)
MAX_JOBS = 16
# format of the manifest cache files (save_cache)
CACHE_VERSION = 1
# a file changed this recently (ctime) is not cached: a write in the same tick of the
# file system's clock as the key was taken would leave the key unchanged (git's "racy" entries)
RACY_NS = 2 * 10**9


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


def cache_key(st):
    """What must not have changed for a file's cached checksum to stand: its device, inode,
    size, mtime and ctime (in ns). A write changes the ctime, which no user can set back."""
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def cache_file(cache_dir, root):
    """The cache file of one model directory (by its resolved path) in cache_dir."""
    real = os.path.realpath(root)
    return os.path.join(cache_dir, hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:32] + ".json")


def load_cache(path):
    """The entries of a manifest cache file, {realpath: key + [sha256]}, and a warning:
    a missing file is an empty cache; one that cannot be read or parsed is ignored, named
    in the warning (every file is then hashed again)."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError) as exc:
        return {}, "manifest cache %s ignored (%s): every file is hashed again" % (path, exc)
    entries = data.get("entries") if isinstance(data, dict) and data.get("version") == CACHE_VERSION else None
    if not isinstance(entries, dict):
        return {}, "manifest cache %s ignored (not a version %d cache): every file is hashed again" % (path, CACHE_VERSION)
    good = {k: v for k, v in entries.items() if isinstance(v, list) and len(v) == 6 and isinstance(v[5], str)}
    return good, None


def save_cache(path, entries):
    """Write the entries atomically (a temporary file renamed over it), root only."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".manifest-")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({"version": CACHE_VERSION, "entries": entries}, fh, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def manifest(root, checksum=True, jobs=None, cache=None, racy_ns=RACY_NS, known=None):
    """Every file under root, symlinks followed, as {relpath: {size, sha256, link}}.

    The checksums are computed `jobs` files at a time (threads: hashlib releases the GIL
    while it hashes), the largest files first; default_jobs() when None.

    cache: None, or the entries of load_cache(). A file whose cache_key() is the one its
    entry holds takes the cached checksum instead of being read. The result then holds
    "cache", the entries of this manifest's files (keys taken before each file is read, so a
    file written during its read is hashed again next time), for save_cache().
    "cached" counts the files taken from the cache, "hashed_bytes" the bytes read. A file
    whose ctime is less than racy_ns before the walk began is hashed but left out of the
    cache (its key may not show a write in the same clock tick).

    known: None, or {relpath: {size, sha256}}: a file not in the cache whose size is the
    known one takes the known checksum instead of being read ("trusted" counts them, and
    "trusted_bytes" their bytes); it enters the cache like a hashed one. The caller vouches
    for its bytes (model_sync: a verified rsync transfer of a file whose checksum the head
    computed and which has not changed on the head since).

    link is the symlink target when the path (or a directory above it) is a link: a
    copy that keeps such links gives the receiving node links into a cache it does not
    have (spark-vllm-docker PR #408). Dangling links are listed apart.
    """
    root = os.path.abspath(root)
    began = time.time_ns()
    files, dangling, skipped, paths, keys = {}, [], [], {}, {}
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
            keys[rel] = (real, cache_key(st))
    result = {"root": root, "files": files, "dangling": dangling, "skipped": skipped,
              "total_bytes": sum(f["size"] for f in files.values()), "count": len(files),
              "cached": 0, "hashed_bytes": 0, "trusted": 0, "trusted_bytes": 0}
    if not checksum:
        return result
    for rel in files:
        real, key = keys[rel]
        hit = (cache or {}).get(real)
        if hit is not None and hit[:5] == key:
            files[rel]["sha256"] = hit[5]
            result["cached"] += 1
            continue
        vouched = (known or {}).get(rel)
        if isinstance(vouched, dict) and vouched.get("size") == files[rel]["size"] and _is_sha256(vouched.get("sha256")):
            files[rel]["sha256"] = vouched["sha256"]
            result["trusted"] += 1
            result["trusted_bytes"] += files[rel]["size"]
    order = sorted((r for r in files if files[r]["sha256"] is None), key=lambda r: (-files[r]["size"], r))
    if order:
        with ThreadPoolExecutor(max_workers=min(jobs or default_jobs(), len(order))) as pool:
            for rel, digest in zip(order, pool.map(sha256, [paths[r] for r in order])):
                files[rel]["sha256"] = digest
        result["hashed_bytes"] = sum(files[r]["size"] for r in order)
    if cache is not None:
        entries = {}
        for rel in files:
            real, key = keys[rel]
            if key[4] < began - racy_ns:
                entries[real] = key + [files[rel]["sha256"]]
        result["cache"] = entries
    return result


def itemized_received(lines):
    """The files an rsync run wrote on the receiving side, from its --itemize-changes lines
    (">f" then the change flags, a space, the path; a path with a character rsync escapes,
    such as a newline, comes escaped and names no file of the manifest)."""
    out = []
    for line in lines or []:
        if isinstance(line, str) and line.startswith(">f") and " " in line:
            out.append(line.split(" ", 1)[1])
    return out


def verified_copy(head, sent):
    """{relpath: {size, sha256}} of the head's manifest for the files a verified transfer
    wrote (sent: their relpaths), the checksums model_manifest may take for them (known)."""
    files = (head or {}).get("files") or {}
    return {rel: {"size": files[rel]["size"], "sha256": files[rel]["sha256"]}
            for rel in sent or [] if rel in files and _is_sha256(files[rel].get("sha256"))}


def _is_sha256(value):
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


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
    checksum), extra files and dangling links on the node. Empty lists: the same weights.
    to_copy: the head's paths that the node lacks or holds other bytes of."""
    hf, nf = head["files"], node["files"]
    differ, differ_paths = [], []
    for rel in sorted(set(hf) & set(nf)):
        a, b = hf[rel], nf[rel]
        if a["size"] != b["size"]:
            differ.append("%s (%d B on the head, %d B here)" % (rel, a["size"], b["size"]))
            differ_paths.append(rel)
        elif a["sha256"] and b["sha256"] and a["sha256"] != b["sha256"]:
            differ.append("%s (checksum differs)" % rel)
            differ_paths.append(rel)
    missing = sorted(set(hf) - set(nf))
    return {"missing": missing, "differ": differ, "extra": sorted(set(nf) - set(hf)),
            "dangling": [d["path"] for d in node.get("dangling") or []], "to_copy": sorted(missing + differ_paths)}


def in_sync(diff):
    return not (diff["missing"] or diff["differ"] or diff["dangling"])


def describe(host, diff):
    parts = []
    for key, what in (("missing", "missing"), ("differ", "different"), ("dangling", "dangling links")):
        items = diff[key]
        if items:
            parts.append("%d %s (%s%s)" % (len(items), what, ", ".join(items[:3]), ", ..." if len(items) > 3 else ""))
    return "%s: %s" % (host, "; ".join(parts) if parts else "same weights as the head")


def largest_first(paths, sizes):
    """paths sorted by their bytes in sizes, the largest first (then by path): the order the
    copy streams send files in."""
    return sorted(paths, key=lambda r: (-sizes[r], r))


def split_streams(sizes, streams):
    """The files of a copy split into at most `streams` lists of about equal bytes: the
    largest file first, each into the list with the fewest bytes so far (a list never
    holds more than the largest file above its fair share). sizes: {relpath: bytes}.
    Empty lists are left out; each list is sorted by path (rsync walks it in order)."""
    if not isinstance(streams, int) or streams < 1:
        raise ValueError("streams must be 1 or more, got %r" % (streams,))
    bins = [[0, []] for dummy in range(min(streams, len(sizes)))]
    for rel in largest_first(sizes, sizes):
        lightest = min(bins, key=lambda b: b[0])
        lightest[0] += sizes[rel]
        lightest[1].append(rel)
    return [sorted(b[1]) for b in bins if b[1]]


def rsync_local_dest(dest):
    """The local directory an rsync destination names, or None for a remote one. rsync
    takes an argument as remote when it starts with rsync:// or has a colon before its
    first slash (rsync(1), "USAGE"): user@host:path, host::module."""
    if dest.startswith("rsync://"):
        return None
    head = dest.split("/", 1)[0]
    return None if ":" in head else dest


def relay_plan(order, head, diffs, relay=True):
    """Who sends each node the files it lacks. order: the nodes in play order; diffs:
    {node: compare() of its manifest with the head's}.

    relay: the receiving nodes (those with files to copy, in play order) form a chain from
    the head: the head sends to the first, and each receiver forwards to the next the files
    it is receiving itself as each one lands (model_copy's wait_for), so the head's disk is
    read once whatever the number of nodes, and every node sends and receives one copy. A
    file the next node lacks that this node already held is sent from this node's copy. Not
    relay: the head sends to every receiver (a fan-out: its disk and its rail carry one copy
    per receiver).

    Returns {node: {upstream, wait, stale, trusted}} for every node of order: upstream sends
    it its files (None: nothing to receive; the head alone for a node with nothing to copy,
    such as a dangling link, which the head's exact pass removes); wait, the files it
    receives that its upstream is itself receiving in this copy (sent as they land there);
    stale, the stale copies this node must remove before the copy, of files it forwards as
    they land (a file at its path is then the one just received); trusted, the files that
    reach it from the head through nodes that each received them in this copy, every hop a
    verified rsync transfer (their checksum is the head's; a file forwarded from a node's
    older copy is not).
    """
    plan = {h: {"upstream": None, "wait": [], "stale": [], "trusted": []} for h in order}
    up = head
    for host in order:
        diff = diffs.get(host)
        if host == head or not diff or in_sync(diff):
            continue
        to_copy = list(diff["to_copy"])
        entry = plan[host]
        if not to_copy or not relay or up == head:
            entry.update(upstream=head, trusted=to_copy)
        else:
            receiving = set(diffs[up]["to_copy"])
            missing = set(diffs[up].get("missing") or [])
            above = set(plan[up]["trusted"])
            entry.update(upstream=up, wait=[r for r in to_copy if r in receiving],
                         trusted=[r for r in to_copy if r in above])
            plan[up]["stale"] = [r for r in entry["wait"] if r not in missing]
        if relay and to_copy:
            up = host
    return plan


def ready_files(root, waiting, sizes):
    """The files of waiting that have landed under root: a regular file at its path with
    its size in sizes (rsync writes a file under a temporary name and renames it into place
    once the whole file is checked; a file removed before the copy cannot be an old one)."""
    out = []
    for rel in waiting:
        try:
            st = os.stat(os.path.join(root, rel))
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size == sizes[rel]:
            out.append(rel)
    return out


def tree_bytes(root):
    """Bytes of every regular file under root, rsync's temporary files included (a copy in
    progress makes it grow); links are not followed."""
    total = 0
    for dirpath, dummy, filenames in os.walk(root):
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total
