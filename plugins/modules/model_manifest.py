#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: model_manifest
short_description: List a model directory's files with symlinks resolved, sizes and checksums
description:
  - Walks O(path) following symlinks (a Hugging Face cache keeps snapshots as links into
    C(blobs/)) and returns every file with its size, SHA-256 and, when it was reached
    through a link, the link's target; dangling links are listed apart.
  - The sparkops.cluster.model_sync role compares each node's manifest with the head's
    (filter sparkops.cluster.weights_diff), because a copy that kept the cache's links gave
    workers zero weights while it reported success (spark-vllm-docker PR #408).
  - Only regular files are read. A named pipe, a socket or a device file is listed under
    C(skipped) and never opened (a pipe would block the read forever), and a directory
    reached again through a symlink loop is walked once.
  - With O(cache_dir), a file's checksum is taken from the previous run's when its device, inode, size, mtime and
    ctime are all unchanged (a write changes the ctime, which no user can set back), so an unchanged directory of
    hundreds of GB is not read again on every deploy. O(rehash=true) reads every file whatever the cache says.
  - Reads only the model directory; writes only its cache file under O(cache_dir), and not in check mode.
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
extends_documentation_fragment:
  - sparkops.cluster.attributes
attributes:
  check_mode:
    support: full
    details: Runs in full in check mode (it changes nothing on the node), without writing the cache.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  path:
    description: The model directory (what vLLM loads), the same path on every node.
    type: path
    required: true
  checksum:
    description: Compute SHA-256 of every file (reads all the weights, O(jobs) files at once); sizes only when false.
    type: bool
    default: true
  jobs:
    description:
      - Files checksummed at once (threads), the largest first. V(0) is one per CPU this node gives the module, at most
        16. One file's SHA-256 runs on one core (0.95 GB/s measured on a 16-CPU x86 host, where 16 at once reached
        10.3 GB/s; benchmarks/), while an NVMe reads several GB/s.
    type: int
    default: 0
  cache_dir:
    description:
      - Directory of the manifest cache (root only, created C(0700)); one file per model directory, named by a hash
        of its resolved path. Unset or empty, there is no cache. An unreadable cache file is ignored with a warning.
    type: path
  rehash:
    description: Read every file again even when the cache holds its checksum (the cache is then rewritten).
    type: bool
    default: false
  known:
    description:
      - Checksums the caller vouches for, by path relative to O(path) (C(relpath -> {size, sha256}), the shape of the
        C(files) of RV(manifest)). A file the cache does not hold whose size is the known one takes the known SHA-256 without
        being read, and enters the cache. M(sparkops.cluster.model_manifest) does not check them; the role
        sparkops.cluster.model_sync passes the head's checksums of the files a verified rsync transfer has just
        written (its README says what it trusts). Ignored with O(rehash=true).
    type: dict
    version_added: 0.4.0
  required:
    description: Fail when O(path) does not exist; when false, return RV(exists=false) and an empty manifest.
    type: bool
    default: true
  owned:
    description:
      - The resolved path and every directory above it must be root's, real directories (no symbolic link) and
        writable by no one else (a root-owned sticky directory such as C(/tmp) excepted). The copy writes into it as
        root, and another user able to swap a component could point the copy's C(rsync --delete) at a system
        directory. Fails naming each component that is not.
    type: bool
    default: false
  roots:
    description:
      - When given, O(path) resolved on this node (symlinks and C(..) followed) must be a directory below one of
        these, and not a mount point; the module fails naming why otherwise, before anything reads or writes it.
    type: list
    elements: path
"""

EXAMPLES = r"""
- name: Manifest of the weights on the head
  sparkops.cluster.model_manifest:
    path: /var/lib/sparkops/models/Qwen3.5-397B-A17B-FP8
  register: head_manifest
"""

RETURN = r"""
exists:
  description: Whether O(path) exists.
  returned: always
  type: bool
realpath:
  description: O(path) resolved on this node.
  returned: always
  type: str
manifest:
  description: >-
    root, files ({relpath - size, sha256, link}), dangling ([{path, target}]), skipped ([{path, kind}]: named pipes,
    sockets, devices and directories reached twice through a symlink loop, neither read nor listed as weights),
    total_bytes, count, cached (files whose checksum came from the cache), hashed_bytes (bytes read to hash),
    trusted and trusted_bytes (files and bytes whose checksum came from O(known)).
  returned: always
  type: dict
  sample:
    root: /var/lib/sparkops/models/tiny
    files:
      config.json: {size: 712, sha256: 3f1c0e, link: null}
    dangling: []
    skipped: []
    total_bytes: 712
    count: 1
    cached: 0
    hashed_bytes: 712
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sparkops.cluster.plugins.module_utils import _pathguard, _sync


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            checksum=dict(type="bool", default=True),
            jobs=dict(type="int", default=0),
            cache_dir=dict(type="path"),
            rehash=dict(type="bool", default=False),
            required=dict(type="bool", default=True),
            roots=dict(type="list", elements="path"),
            owned=dict(type="bool", default=False),
            known=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["jobs"] < 0:
        module.fail_json(msg="jobs must be 0 (one per CPU) or more, got %d" % p["jobs"])
    real = os.path.realpath(p["path"])
    if p["roots"] is not None:
        try:
            real = _sync.safe_model_path(p["path"], p["roots"])
        except ValueError as exc:
            module.fail_json(msg=str(exc), realpath=real)
    if p["owned"]:
        unsafe = _pathguard.problems(real)
        if unsafe:
            module.fail_json(msg="model_sync_path %s (%s) is written as root, but %s: another user could swap it for a "
                                 "link to a system directory before the copy. Make each of these root's and writable "
                                 "by no one else (chown root:root, chmod go-w), or choose a path below such directories"
                                 % (p["path"], real, "; ".join(unsafe)), realpath=real, problems=unsafe)
    if not os.path.isdir(p["path"]):
        if p["required"]:
            module.fail_json(msg="model_sync_path %s is not a directory on this node: put the model there "
                                 "(e.g. hf download MODEL --local-dir %s) or fix the path" % (p["path"], p["path"]))
        empty = {"root": p["path"], "files": {}, "dangling": [], "skipped": [], "total_bytes": 0, "count": 0,
                 "cached": 0, "hashed_bytes": 0, "trusted": 0, "trusted_bytes": 0}
        module.exit_json(changed=False, exists=False, realpath=real, manifest=empty)
    cache = cache_path = None
    if p["cache_dir"] and p["checksum"]:
        cache_path = _sync.cache_file(p["cache_dir"], p["path"])
        cache, warning = _sync.load_cache(cache_path)
        if warning:
            module.warn(warning)
        if p["rehash"]:
            cache = {}
    try:
        result = _sync.manifest(p["path"], checksum=p["checksum"], jobs=p["jobs"] or None, cache=cache,
                                racy_ns=_sync.RACY_NS, known=None if p["rehash"] else p["known"])
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (p["path"], exc))
    entries = result.pop("cache", None)
    if cache_path and entries is not None and not module.check_mode:
        try:
            _sync.save_cache(cache_path, entries)
        except OSError as exc:
            module.warn("manifest cache %s not written (%s): the next run hashes every file again" % (cache_path, exc))
    module.exit_json(changed=False, exists=True, realpath=real, manifest=result)


if __name__ == "__main__":
    main()
