# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How fast model_manifest checksums weights, against a raw sequential read of the same
files on the same disk, in one run:

  python3 scripts/bench_manifest.py DIR [--files 16] [--mib 512] [--jobs 1,0] [--out result.json]

Writes FILES shards of MIB MiB of random bytes under DIR (as safetensors shards of a
checkpoint), then for each measurement drops the page cache (needs root; without it the
reads come from memory and the result says so) and times: a raw read of every file
(8 MiB reads, one file at a time, as `cat` does), and module_utils/_sync.manifest at each
--jobs value (0: one per CPU, at most 16). --cached keeps the files in the page cache
instead: the rates of the CPU alone. Last, the manifest of a deploy that finds the files
unchanged: one run fills the cache of checksums (model_sync_manifest_cache_dir), then the
timed one (page cache dropped) only reads the files' metadata. Prints and writes JSON:
GB/s of each, and the ratio of each manifest rate to the raw read's.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from bench_files import _sync, drop_caches, raw_read, report, shards


def timed(fn, cached=False):
    cold = False if cached else drop_caches()
    start = time.monotonic()
    fn()
    return time.monotonic() - start, cold


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--jobs", default="1,0")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--cached", action="store_true",
                    help="keep the page cache (files read once first): the rates of the CPU, as a disk faster "
                         "than one core's SHA-256 would give")
    args = ap.parse_args(argv)
    paths = shards(args.dir, args.files, args.mib)
    total = sum(p.stat().st_size for p in paths)
    if args.cached:
        raw_read(paths)
    seconds, cold = timed(lambda: raw_read(paths), args.cached)
    result = {"host": platform.node(), "cpus": os.cpu_count(), "default_jobs": _sync.default_jobs(),
              "files": args.files, "bytes": total, "page_cache_dropped": cold,
              "raw_read": {"seconds": round(seconds, 3), "gb_s": round(total / seconds / 1e9, 3)}, "manifest": []}
    for jobs in (int(j) for j in args.jobs.split(",")):
        seconds, cold = timed(lambda j=jobs: _sync.manifest(str(args.dir), jobs=j or None), args.cached)
        rate = total / seconds / 1e9
        result["manifest"].append({"jobs": jobs or _sync.default_jobs(), "asked": jobs, "seconds": round(seconds, 3),
                                   "gb_s": round(rate, 3),
                                   "of_raw_read": round(rate / result["raw_read"]["gb_s"], 3),
                                   "page_cache_dropped": cold})
    # racy_ns=0: the files may have been written just now by this script
    cache = _sync.manifest(str(args.dir), cache={}, racy_ns=0)["cache"]
    seconds, cold = timed(lambda: _sync.manifest(str(args.dir), cache=cache, racy_ns=0), args.cached)
    result["manifest_unchanged_with_cache"] = {"seconds": round(seconds, 3), "files_from_cache": len(cache),
                                               "gb_s_equivalent": round(total / seconds / 1e9, 3),
                                               "page_cache_dropped": cold}
    report(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
