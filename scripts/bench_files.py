# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What scripts/bench_manifest.py and scripts/bench_copy.py share: synthetic shards, the page
cache dropped, a raw sequential read, and the JSON result printed and written."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

# the collection's module_utils/_sync.py, as a plain module (the checkout is no installed collection)
SPEC = importlib.util.spec_from_file_location("_sync", Path(__file__).resolve().parents[1] / "plugins" / "module_utils"
                                              / "_sync.py")
_sync = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(_sync)


def shards(directory, files, mib):
    """FILES shards of MIB MiB of random bytes under DIRECTORY (as safetensors of a checkpoint), kept when
    already there at that size; their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        path = directory / ("model-%05d-of-%05d.safetensors" % (i + 1, files))
        if not path.exists() or path.stat().st_size != mib << 20:
            with open(path, "wb") as f:
                for _mib in range(mib):
                    f.write(os.urandom(1 << 20))
        paths.append(path)
    return paths


def drop_caches():
    """Drop the page cache (needs root): True where it did."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def raw_read(paths):
    """Read every file once, one after another, as `cat` does: the bytes read."""
    total = 0
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while True:
                block = f.read(_sync.CHUNK)  # model_manifest's reads
                if not block:
                    break
                total += len(block)
    return total


def report(result, out):
    """Print the result as JSON, and write it to OUT when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")
