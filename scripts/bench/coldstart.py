# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clean nodes to the first token, measured phase by phase (scripts/bench.sh coldstart runs
it; not a test).

    coldstart.py RAW.json [BALLAST_GIB [SHARDS [VAR=VALUE ...]]]

One run: a fresh simulated cluster of 4 nodes (scripts/bench/cluster.py: rails at Docker's
MTU 1500 until the netplan role sets 9000), the weights on the head only
(molecule/cluster/prepare.yml) plus ballast - safetensors shards of random bytes,
BALLAST_GIB (8) in SHARDS (4) files, in the subdirectory `ballast/` of the model directory:
the deploy copies and checks them with the model, vLLM loads only the top level (the tiny
model); this machine's page cache dropped; then the deploy of the recipe to its first
completed token, with the timeline callback (SPARKOPS_TIMELINE: every task's start and end
on every node), the machine's CPU-s split by nodes, engines and controller (scale.py), and
every node's rail and management byte counters before and after. In the same run, after the
deploy: the head's raw read of the ballast and one TCP stream over rail1 (scripts/bench/sync.yml,
page cache dropped), against which the copy's and the checksums' rates are stated. Writes
RAW.json; scripts/bench_report.py coldstart makes the phases, the rates and the picture.
VAR=VALUE: extra variables of the deploy (a YAML value), to measure a choice against another
in the same benchmark, e.g. model_sync_relay=false for the head sending to every node.

The simulation bends one phase: every simulated node runs its engine containers on this
machine's one Docker engine, which has the engine image already, so no node lacks it and the
image copy (docker save, rsync, docker load) does not run; the engine image's build on the
head runs, from Docker's build cache after the first time. The phase is measured as it runs
here and the report says so.
"""

from __future__ import annotations

import datetime
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # noqa: E402  (this directory's)

REPO = scale.REPO
SIM = Path("/var/lib/sparkops-sim")
MODEL = "sparkops-tiny-qwen"
NODE_MODEL_DIR = "/var/lib/sparkops/models/" + MODEL  # sparkops_model_path in the simulation
NODES = 4


def write_ballast(directory, total_bytes, shards):
    """SHARDS safetensors files of random bytes, total_bytes in all, each a valid safetensors
    file (an 8-byte header length, a JSON header naming BF16 tensors, their data) of exactly
    total_bytes // shards bytes; kept when one of that size is there."""
    directory.mkdir(parents=True, exist_ok=True)
    size = total_bytes // shards
    for i in range(1, shards + 1):
        path = directory / ("model-%05d-of-%05d.safetensors" % (i, shards))
        if path.exists() and path.stat().st_size == size:
            continue
        header = _header(size)
        with open(path, "wb") as fh:
            fh.write(struct.pack("<Q", len(header)) + header)
            left = size - 8 - len(header)
            while left:
                chunk = os.urandom(min(left, 8 << 20))
                fh.write(chunk)
                left -= len(chunk)


def _header(size, tensors=8, cols=4096):
    """The JSON header of a shard of `size` bytes: `tensors` BF16 matrices of `cols` columns
    whose rows fill the data, padded with spaces (as the format allows) to the bytes the whole
    rows leave."""
    row = cols * 2
    rows_total = (size - 8 - 4096) // row  # 4 KiB at least for the header
    per = rows_total // tensors
    meta, offset = {"__metadata__": {"format": "pt", "source": "sparkops.cluster coldstart ballast, random bytes"}}, 0
    for t in range(tensors):
        rows = per if t < tensors - 1 else rows_total - per * (tensors - 1)
        meta["model.layers.%d.mlp.experts.weight" % t] = {"dtype": "BF16", "shape": [rows, cols],
                                                          "data_offsets": [offset, offset + rows * row]}
        offset += rows * row
    text = json.dumps(meta, separators=(",", ":")).encode()
    room = size - 8 - offset
    if len(text) > room:
        raise ValueError("a shard of %d bytes leaves %d bytes for a header of %d" % (size, room, len(text)))
    return text + b" " * (room - len(text))


def counters(nodes):
    """Every node's interface byte counters: {node: {interface: [rx, tx]}}."""
    out = {}
    script = ("for d in /sys/class/net/*; do n=${d##*/}; [ \"$n\" = lo ] && continue; "
              "echo \"$n $(cat $d/statistics/rx_bytes) $(cat $d/statistics/tx_bytes)\"; done")
    for node in nodes:
        text = subprocess.run(["docker", "exec", node, "sh", "-c", script], capture_output=True, text=True,
                              timeout=60, check=True).stdout
        out[node] = {f[0].split("@")[0]: [int(f[1]), int(f[2])] for f in (line.split() for line in text.splitlines())
                     if len(f) == 3}
    return out


def drop_caches():
    subprocess.run(["sh", "-c", "sync && echo 3 > /proc/sys/vm/drop_caches"], check=True, timeout=300)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    gib = float(argv[2]) if len(argv) > 2 else 8.0
    shards = int(argv[3]) if len(argv) > 3 else 4
    chosen = {}
    for item in argv[4:]:
        name, sep, value = item.partition("=")
        if not sep or not name:
            sys.exit("%s: give extra variables as VAR=VALUE" % item)
        chosen[name] = yaml.safe_load(value)
    raw = {"kind": "coldstart", "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "cpus": os.cpu_count(), "nodes": NODES, "ballast": {"bytes": int(gib * (1 << 30)), "shards": shards},
           "extra_vars": chosen}
    with tempfile.TemporaryDirectory(prefix="sparkops-coldstart-") as workdir:
        work = Path(workdir)
        inventory = work / "inventory"
        extra = work / "overrides.json"
        extra.write_text(json.dumps(dict(scale.overrides(NODES), **chosen)))
        names = ["spark-" + n for n in ("alpha", "beta", "gamma", "delta")][:NODES]  # cluster.py's names
        subprocess.run(scale.CLUSTER + ["up", str(NODES), str(inventory)], check=True, timeout=900)
        try:
            subprocess.run(["ansible-playbook", "-i", str(inventory), "molecule/cluster/prepare.yml"], cwd=REPO,
                           check=True, capture_output=True, timeout=900)
            write_ballast(SIM / names[0] / "models" / MODEL / "ballast", raw["ballast"]["bytes"], shards)
            drop_caches()
            before = counters(names)
            timeline = work / "timeline.jsonl"
            os.environ["SPARKOPS_TIMELINE"] = str(timeline)
            os.environ["ANSIBLE_CALLBACKS_ENABLED"] = "sparkops.cluster.timeline"
            raw["deploy"] = scale.playbook(inventory, "playbooks/deploy-qwen397b.yml", str(extra), "the cold deploy")
            del os.environ["SPARKOPS_TIMELINE"], os.environ["ANSIBLE_CALLBACKS_ENABLED"]
            raw["counters"] = {"before": before, "after": counters(names)}
            raw["timeline"] = [json.loads(line) for line in timeline.read_text().splitlines() if line.strip()]
            baseline = work / "baseline.json"
            subprocess.run(["ansible-playbook", "-i", str(inventory), "scripts/bench/sync.yml", "-e", "@" + str(extra),
                            "-e", "sparkops_recipe=qwen397b", "-e", "bench_out=" + str(baseline),
                            "-e", "bench_dir=%s/ballast" % NODE_MODEL_DIR, "-e", "bench_files=%d" % shards,
                            "-e", "bench_mib=%d" % (raw["ballast"]["bytes"] // shards >> 20),
                            "-e", '{"bench_rounds": []}', "-e", "bench_image=false"],
                           cwd=REPO, check=True, capture_output=True, timeout=1800)
            raw["baseline"] = json.loads(baseline.read_text())
        finally:
            subprocess.run(scale.CLUSTER + ["down", str(inventory)], check=False, timeout=900)
            for name in names:
                ballast = SIM / name / "models" / MODEL / "ballast"
                subprocess.run(["rm", "-rf", "--one-file-system", str(ballast)], check=False, timeout=600)
    Path(argv[1]).write_text(json.dumps(raw, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv)
