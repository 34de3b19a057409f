#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: model_copy
short_description: Copy a model directory's files to one node with several rsync streams at once
description:
  - Splits O(files) into O(streams) lists of about equal bytes (the largest files first) and runs one C(rsync
    --files-from) per list at the same time, from O(src) on this node to O(dest). One rsync over ssh is one TCP
    stream and one cipher on one core (about 1 GB/s at best), while a DGX Spark's rail carries about 12 GB/s.
  - It only fills the destination. The caller runs one plain rsync afterwards (with C(--delete)) that makes the
    destination the source's exact copy and finds the streams' files up to date, and then compares checksums
    (the sparkops.cluster.model_sync role does both).
  - A relay (O(wait_for)) - this node receives some of the files from an upstream node while it sends them on -
    sends each file of O(wait_for) once it has landed in O(src), in O(streams) rsync processes at once, each taking
    the next file that is there (the small ones together); the other files go first. rsync writes a file under a
    temporary name and renames it into place once its checksum matched, so a file at its path with its size is
    whole, provided no older copy of it was there; the caller removes those first (the sparkops.cluster.model_sync
    role does).
  - Each rsync runs in its own process group, bounded by O(timeout) (give rsync its own C(--timeout) for a stall),
    and killed when the limit passes or the module is stopped. A stream that fails does not stop the others; the
    module fails naming it once all have ended.
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
attributes:
  check_mode:
    support: full
    details: Reports the streams it would run and runs none.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: It copies every time it runs; rsync skips the files that are already up to date on the destination.
options:
  src:
    description: The directory the files are relative to, on the node the module runs on (the head).
    type: path
    required: true
  dest:
    description:
      - rsync's destination, as rsync takes it (C(user@address:) with a forced C(rrsync) on the receiver, or
        C(rsync://user@address:port/module/) for an rsync daemon).
      - A remote destination must exist (the rrsync directory or the daemon's module). A local one is created
        before the streams start, since each rsync would create a missing destination and all but the first would
        fail with C(File exists).
    type: str
    required: true
  files:
    description: The files to copy, relative to O(src), with their sizes in bytes (a manifest's C(files) works).
    type: dict
    required: true
  rsync:
    description: The rsync command and its options, without sources and destination (C(--files-from) is added).
    type: list
    elements: str
    required: true
  streams:
    description: rsync processes at once; the files are split by bytes, so more streams than large files do not help.
    type: int
    default: 4
  timeout:
    description: Seconds the whole copy may take; every stream still running then is killed and the module fails.
    type: int
    default: 86400
  wait_for:
    description:
      - Files of O(files) that are arriving in O(src) while this copy runs (this node relays them from an upstream
        node); each is sent once it is at its path with its size in O(files). Remove older copies of them first.
      - Empty, every file is there and the files are split into O(streams) lists at the start.
    type: list
    elements: str
    default: []
    version_added: 0.4.0
  stall:
    description:
      - Seconds O(src) may go without progress (no file of O(wait_for) landed, no byte written under O(src)) while
        files of O(wait_for) are still missing; then the copy fails naming them (the upstream's copy stopped).
    type: int
    default: 120
    version_added: 0.4.0
"""

EXAMPLES = r"""
- name: Copy the head's weights to a worker, four rsync streams at once
  sparkops.cluster.model_copy:
    src: /var/lib/sparkops/models/Qwen3.5-397B-A17B-FP8
    dest: "root@192.168.100.11:"
    files: "{{ head_manifest.manifest.files }}"
    rsync: [rsync, --archive, --copy-links, --partial, --timeout=300, --rsh, ssh -i /root/.ssh/sparkops_sync]
    streams: 4
  delegate_to: spark-alpha

- name: Relay to the next worker the shards this worker is receiving, each as it lands
  sparkops.cluster.model_copy:
    src: /var/lib/sparkops/models/Qwen3.5-397B-A17B-FP8
    dest: "root@192.168.100.12:"
    files: "{{ head_manifest.manifest.files }}"
    wait_for: "{{ head_manifest.manifest.files | list }}"
    rsync: [rsync, --archive, --copy-links, --partial, --timeout=300, --rsh, ssh -i /root/.ssh/sparkops_sync]
  delegate_to: spark-beta
"""

RETURN = r"""
streams:
  description: One entry per stream, in the order they were started.
  returned: always
  type: list
  elements: dict
  sample: [{files: 3, bytes: 8589934592, seconds: 9.1, rc: 0, waited: 0.0}]
bytes:
  description: Bytes of the files given (what the streams send when the destination has none of them).
  returned: always
  type: int
seconds:
  description: Wall-clock time of the copy, all streams together (0 in check mode).
  returned: always
  type: float
waited:
  description: Seconds the streams spent waiting for files of O(wait_for) to land, all streams together.
  returned: always
  type: float
"""

import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sparkops.cluster.plugins.module_utils import _command, _sync


def sizes_of(module, files):
    sizes = {}
    for rel, entry in files.items():
        size = entry.get("size") if isinstance(entry, dict) else entry
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            module.fail_json(msg="files[%r] has no size in bytes (%r): pass a manifest's files, {path: {size: N}}"
                                 % (rel, entry))
        if os.path.isabs(rel) or rel.split("/")[0] == ".." or "/../" in "/%s/" % rel:
            module.fail_json(msg="files[%r] is not a path inside src: give paths relative to src" % rel)
        sizes[rel] = size
    return sizes


SMALL = 64 * 2**20  # files below this size go several to one rsync run in a relay


class Relay:
    """The files still to send in a relay, handed to the streams as they land in src."""

    def __init__(self, src, sizes, wait_for, stall):
        self.src, self.sizes, self.stall = src, sizes, stall
        self.waiting = set(wait_for)
        # the largest first, as the upstream's streams send them
        self.ready = _sync.largest_first([r for r in sizes if r not in self.waiting], sizes)
        self.cond = threading.Condition()
        self.error = None
        self.progress = time.monotonic()
        self.written = None

    def fail(self, why):
        with self.cond:
            self.error = self.error or why
            self.cond.notify_all()

    def _poll(self):
        landed = _sync.ready_files(self.src, self.waiting, self.sizes)
        now = time.monotonic()
        if landed:
            self.waiting.difference_update(landed)
            self.ready.extend(_sync.largest_first(landed, self.sizes))
            self.progress = now
            self.cond.notify_all()
            return
        if self.waiting and now - self.progress > min(5.0, self.stall / 2.0):
            written = _sync.tree_bytes(self.src)
            if written != self.written:
                self.written, self.progress = written, now
            elif now - self.progress > self.stall:
                missing = sorted(self.waiting)
                self.error = ("%d files did not land in %s, and nothing was written there for %d s (stall): the "
                              "upstream's copy stopped; first: %s" % (len(missing), self.src, self.stall, missing[0]))
                self.cond.notify_all()

    def take(self):
        """The next files for one rsync run (a large file alone, or the small ones that are
        there), waiting for them to land; [] when all are taken. Returns (files, seconds waited)."""
        began = time.monotonic()
        with self.cond:
            while True:
                if self.error:
                    return [], time.monotonic() - began
                if self.ready:
                    first = self.ready.pop(0)
                    batch = [first]
                    if self.sizes[first] < SMALL:
                        batch += [r for r in self.ready if self.sizes[r] < SMALL]
                        self.ready = [r for r in self.ready if self.sizes[r] >= SMALL]
                    return batch, time.monotonic() - began
                if not self.waiting:
                    return [], time.monotonic() - began
                self.cond.wait(0.5)
                self._poll()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="str", required=True),
            files=dict(type="dict", required=True),
            rsync=dict(type="list", elements="str", required=True),
            streams=dict(type="int", default=4),
            timeout=dict(type="int", default=86400),
            wait_for=dict(type="list", elements="str", default=[]),
            stall=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    p = module.params
    _command.require_positive(module, "streams", "timeout", "stall")
    if not p["rsync"]:
        module.fail_json(msg="rsync is empty: give the rsync command, e.g. [rsync, --archive]")
    sizes = sizes_of(module, p["files"])
    unknown = sorted(set(p["wait_for"]) - set(sizes))
    if unknown:
        module.fail_json(msg="wait_for names files that are not in files (%s): list only files this copy sends"
                             % ", ".join(unknown[:3]))
    lists = _sync.split_streams(sizes, p["streams"])
    planned = [dict(files=len(paths), bytes=sum(sizes[r] for r in paths), seconds=0.0, rc=None, waited=0.0)
               for paths in lists]
    total = sum(sizes.values())
    if module.check_mode or not lists:
        module.exit_json(changed=bool(lists), streams=planned, bytes=total, seconds=0.0, waited=0.0)
    if not os.path.isdir(p["src"]):
        module.fail_json(msg="src %s is not a directory on this node" % p["src"])

    local = _sync.rsync_local_dest(p["dest"])
    if local is not None:
        try:
            os.makedirs(local, exist_ok=True)
        except OSError as exc:
            module.fail_json(msg="cannot create the destination %s: %s" % (local, exc))

    workdir = tempfile.mkdtemp(prefix="sparkops-copy-")
    deadline = time.monotonic() + p["timeout"]

    def rsync(index, run, paths):
        """One rsync run of paths: its exit status (None: it did not finish) and why it failed (None: it did not)."""
        listfile = os.path.join(workdir, "stream-%d-%d.list" % (index, run))
        with open(listfile, "wb") as fh:
            fh.write(b"".join(r.encode("utf-8", "surrogateescape") + b"\0" for r in paths))
        argv = p["rsync"] + ["--from0", "--files-from=" + listfile, p["src"].rstrip("/") + "/", p["dest"]]
        try:
            rc, out, err = _command.run(argv, _command.remaining(deadline, p["timeout"]))
        except _command.CommandTimeout as exc:
            return None, str(exc)
        except OSError as exc:
            return None, "cannot run %s: %s" % (argv[0], exc)
        if rc != 0:
            # rsync's first complaint names the file or the peer; its last line only sums up (code 23, ...)
            lines = [line.strip() for line in (err or out).splitlines() if line.strip()]
            first = next((line for line in lines if line.startswith("rsync:")), None)
            why = "; ".join(x for x in (first, lines[-1] if lines else "no output") if x)
            return rc, "rsync stream %d exited %d: %s" % (index + 1, rc, why)
        return rc, None

    def stream(index):
        began = time.monotonic()
        rc, why = rsync(index, 0, lists[index])
        result = dict(planned[index], rc=rc, seconds=round(time.monotonic() - began, 2))
        if why:
            result["error"] = why
        return result

    relay = Relay(p["src"], sizes, p["wait_for"], p["stall"]) if p["wait_for"] else None

    def relay_stream(index):
        result = dict(files=0, bytes=0, seconds=0.0, rc=0, waited=0.0)
        began = time.monotonic()
        for run in range(len(sizes)):
            paths, waited = relay.take()
            result["waited"] = round(result["waited"] + waited, 2)
            if not paths:
                break
            rc, why = rsync(index, run, paths)
            if why:
                relay.fail(why)
                result.update(rc=rc, error=why)
                break
            result["files"] += len(paths)
            result["bytes"] += sum(sizes[r] for r in paths)
        result["seconds"] = round(time.monotonic() - began, 2)
        return result

    began = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=len(lists)) as pool:
            results = list(pool.map(relay_stream if relay else stream, range(len(lists))))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = round(time.monotonic() - began, 2)
    waited = round(sum(r["waited"] for r in results), 2)
    failed = [r for r in results if r.get("error")]
    if relay and relay.error and not failed:
        failed = [dict(error=relay.error)]
    if failed:
        module.fail_json(msg="%d of %d copy streams to %s failed; first: %s" % (len(failed), len(results), p["dest"],
                                                                                failed[0]["error"]),
                         streams=results, bytes=total, seconds=seconds, waited=waited)
    module.exit_json(changed=True, streams=results, bytes=total, seconds=seconds, waited=waited)


if __name__ == "__main__":
    main()
