# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rates and ratios of a weights-distribution benchmark (scripts/bench/sync.yml writes the
measurements: bytes and seconds), the phases of a scale benchmark (scripts/bench/scale.py:
the deploy at several cluster sizes), or the cold start's timeline (scripts/bench/coldstart.py:
every phase on every node), written as one JSON file and one PNG plot:

  python3 scripts/bench_report.py RAW.json OUT_STEM

writes OUT_STEM.json and OUT_STEM.png. Every rate is in GB/s (10^9 bytes per second). A
copy round's time is the slowest receiver's streams plus the slowest receiver's exact
rsync pass (the receivers run each step at the same time). A round's transport is the
role's model_sync_transport (ssh, or rsyncd: the rsync daemon without ssh's cipher); the
image rounds time the engine image's archive crossing the rail as one rsync per node.
"""

from __future__ import annotations

import json
import re
import sys


def rate(nbytes, seconds):
    return round(nbytes / seconds / 1e9, 3) if seconds > 0 else None


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def report(raw):
    nbytes = int(raw["weights"]["bytes"])
    read_bytes, read_s = raw["head_raw_read"]
    tcp_bytes, tcp_s = raw["one_tcp_stream_rail1"]
    raw_read = rate(read_bytes, read_s)
    tcp = rate(tcp_bytes, tcp_s)
    hashing = rate(nbytes, raw["head_checksum_seconds"])
    rounds, image_rounds = [], []
    image = raw.get("image") or None
    for r in raw["rounds"]:
        copy_s = max(r["stream_seconds"]) + max(r["pass_seconds"])
        what = r.get("what", "weights")
        per_node = rate(int(image["bytes"]) if what == "image" else nbytes, copy_s)
        (image_rounds if what == "image" else rounds).append({
            "transport": r.get("transport", "ssh"),
            "streams": r["streams"], "receivers": len(r["receivers"]),
            "copy_seconds": round(copy_s, 2), "role_seconds": round(max(r["role_seconds"]), 2),
            "per_node_gb_s": per_node,
            "aggregate_gb_s": round(per_node * len(r["receivers"]), 3) if per_node else None,
            "per_node_of_one_tcp_stream": ratio(per_node, tcp),
            "aggregate_of_head_raw_read": ratio(per_node * len(r["receivers"]) if per_node else None, raw_read),
        })
    # the reference: one rsync over ssh, as model_sync copied before streams and the daemon
    single = next((r for r in rounds if r["streams"] == 1 and r["transport"] == "ssh"), None)
    for r in rounds:
        r["speedup_over_one_rsync"] = ratio(single["copy_seconds"], r["copy_seconds"]) if single else None
    if image:
        image = {"image": image["image"], "bytes": int(image["bytes"]), "export_seconds": round(float(image["export_seconds"]), 2),
                 "export_gb_s": rate(int(image["bytes"]), float(image["export_seconds"])),
                 "export_of_head_raw_read": ratio(rate(int(image["bytes"]), float(image["export_seconds"])), raw_read),
                 "copies": image_rounds}
    return {
        "nodes": raw["nodes"],
        "page_cache_dropped": raw.get("page_cache_dropped", True),
        "weights": raw["weights"],
        "head_raw_read_gb_s": raw_read,
        "one_tcp_stream_rail1_gb_s": tcp,
        "head_checksums_gb_s": hashing,
        "head_checksums_of_raw_read": ratio(hashing, raw_read),
        "copies": rounds,
        "image": image,
        "raw": raw,
    }


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["disk read (head)", "1 TCP stream (rail1)", "checksums (head)"]
    values = [result["head_raw_read_gb_s"], result["one_tcp_stream_rail1_gb_s"], result["head_checksums_gb_s"]]
    colors = ["#777"] * 3
    for r in result["copies"]:
        labels.append("weights, %s\n%d stream%s, per node" % (r["transport"], r["streams"], "" if r["streams"] == 1 else "s"))
        values.append(r["per_node_gb_s"])
        colors.append("#2a7" if r["transport"] == "ssh" else "#27a")
    if result.get("image"):
        labels.append("image export\n(docker save)")
        values.append(result["image"]["export_gb_s"])
        colors.append("#a72")
        for r in result["image"]["copies"]:
            labels.append("image archive, %s\nper node" % r["transport"])
            values.append(r["per_node_gb_s"])
            colors.append("#a72")
    fig, ax = plt.subplots(figsize=(max(10, 1.1 * len(values)), 4.5), dpi=100)
    bars = ax.bar(range(len(values)), [v or 0 for v in values], color=colors)
    for column, value in zip(bars, values):
        ax.annotate("%.2f" % (value or 0), (column.get_x() + column.get_width() / 2, column.get_height()), ha="center",
                    va="bottom")
    ax.set_xticks(range(len(values)), labels, fontsize=8)
    ax.set_ylabel("GB/s")
    ax.set_title("Weights distribution, %d receiving node(s), %.2f GB, page cache %s (simulated cluster)"
                 % (result["copies"][0]["receivers"] if result["copies"] else 0, result["weights"]["bytes"] / 1e9,
                    "dropped" if result["page_cache_dropped"] else "warm"))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


PHASES = (("deploy", "orchestration_seconds", "deploy from scratch, orchestration"),
          ("deploy", "load_seconds", "deploy from scratch, model load"),
          ("second_deploy", "seconds", "second deploy (0 changed)"),
          ("teardown", "seconds", "teardown"))


def scale_report(raw):
    """A scale benchmark (scripts/bench/scale.py): each phase per cluster size, and the ratio of
    the largest cluster's time to the smallest's."""
    runs = sorted(raw["runs"], key=lambda r: r["nodes"])
    small, large = runs[0], runs[-1]
    table = []
    for phase, key, label in PHASES:
        row = {"phase": label, "seconds": {str(r["nodes"]): r[phase][key] for r in runs}}
        row["ratio_%d_to_%d" % (large["nodes"], small["nodes"])] = ratio(large[phase][key], small[phase][key])
        table.append(row)
    return {"when": raw["when"], "cpus": raw["cpus"], "nodes": [r["nodes"] for r in runs], "phases": table,
            "tasks_run": {str(r["nodes"]): {p: r[p]["tasks_run"] for p in ("deploy", "second_deploy", "teardown")}
                          for r in runs},
            "cpu_seconds": {str(r["nodes"]): {p: r[p].get("cpu_seconds") for p in ("deploy", "second_deploy", "teardown")}
                            for r in runs},
            "second_deploy_growth": growth(small["second_deploy"], large["second_deploy"]),
            "raw": raw}


def growth(small, large, top=12):
    """What grows: the tasks of two runs of one playbook (in the same order) whose seconds grew
    most from the smaller cluster to the larger, with the nodes each ran on, and the sum of
    the growth of the tasks that ran on every node against that of the others."""
    pairs = [(a, b) for a, b in zip(small.get("tasks") or [], large.get("tasks") or []) if a[0] == b[0]]
    if not pairs:
        return None
    rows = sorted(pairs, key=lambda ab: ab[0][1] - ab[1][1])
    per_node = [b[1] - a[1] for a, b in pairs if b[2] > a[2]]
    return {"tasks": [{"task": a[0], "seconds": [a[1], b[1]], "nodes": [a[2], b[2]]} for a, b in rows[:top]],
            "grew_on_tasks_of_every_node": round(sum(per_node), 2),
            "grew_on_the_others": round(sum(b[1] - a[1] for a, b in pairs) - sum(per_node), 2)}


def scale_plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [str(n) for n in result["nodes"]]
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    width = 0.8 / len(sizes)
    for i, size in enumerate(sizes):
        values = [row["seconds"][size] for row in result["phases"]]
        bars = ax.bar([x + i * width for x in range(len(values))], values, width, label="%s nodes" % size)
        for column, value in zip(bars, values):
            ax.annotate("%.0f" % value, (column.get_x() + column.get_width() / 2, column.get_height()), ha="center",
                        va="bottom", fontsize=8)
    ax.set_xticks([x + width * (len(sizes) - 1) / 2 for x in range(len(result["phases"]))],
                  [row["phase"] for row in result["phases"]], fontsize=8)
    ax.set_ylabel("seconds")
    ax.legend()
    ax.set_title("Deploy phases by cluster size (simulated cluster, %d CPUs)" % result["cpus"])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def serving_report(raw):
    """Our benchmark against `vllm bench serve` (scripts/bench/serving.yml), level by level:
    our decode tok/s (each request's tokens after the first over its decode time, averaged)
    against vLLM's 1/TPOT (median and mean), our TTFT p50 against vLLM's median."""
    levels = []
    for ours, theirs in zip(raw["ours"], raw["vllm"]):
        tpot_med, tpot_mean = theirs.get("median_tpot_ms"), theirs.get("mean_tpot_ms")
        vllm_decode = round(1000.0 / tpot_med, 2) if tpot_med else None
        level = {
            "concurrency": ours["concurrency"], "requests": {"ours": ours["completed"], "vllm": theirs.get("completed")},
            "prompt_tokens": {
                "ours (server count)": ours["prompt_tokens"],
                "vllm (its prompts, without the chat template)": (
                    round(theirs["total_input_tokens"] / theirs["completed"], 1) if theirs.get("completed") else None),
            },
            "decode_tok_s": {"ours": ours["decode_tok_s"], "vllm 1/median TPOT": vllm_decode,
                             "vllm 1/mean TPOT": round(1000.0 / tpot_mean, 2) if tpot_mean else None},
            "ttft_p50_ms": {"ours": ours["ttft_ms"]["p50"], "vllm": theirs.get("median_ttft_ms")},
            "ttft_p99_ms": {"ours": ours["ttft_ms"]["p99"], "vllm": theirs.get("p99_ttft_ms")},
            "itl_p50_ms": {"ours": ours["itl_ms"]["p50"], "vllm": theirs.get("median_itl_ms")},
            "output_tok_s": {"ours": ours["output_tok_s"], "vllm": theirs.get("output_throughput")},
        }
        level["decode_ours_to_vllm"] = ratio(ours["decode_tok_s"], vllm_decode)
        level["ttft_p50_ours_to_vllm"] = ratio(ours["ttft_ms"]["p50"], theirs.get("median_ttft_ms"))
        level["decode_within_10_percent"] = (level["decode_ours_to_vllm"] is not None
                                             and abs(level["decode_ours_to_vllm"] - 1) <= 0.10)
        level["ttft_p50_within_20_percent"] = (level["ttft_p50_ours_to_vllm"] is not None
                                               and abs(level["ttft_p50_ours_to_vllm"] - 1) <= 0.20)
        levels.append(level)
    return {"model": raw["model"], "requests": raw["requests"], "max_tokens": raw["max_tokens"],
            "template_tokens": raw["template_tokens"], "levels": levels, "raw": raw}


def serving_plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5), dpi=100)
    conc = [str(lv["concurrency"]) for lv in result["levels"]]
    for ax, key, sub, title in ((left, "decode_tok_s", ("ours", "vllm 1/median TPOT"), "decode tok/s per request"),
                                (right, "ttft_p50_ms", ("ours", "vllm"), "TTFT p50 (ms)")):
        for i, who in enumerate(sub):
            values = [lv[key][who] or 0 for lv in result["levels"]]
            ax.bar([x + i * 0.4 for x in range(len(conc))], values, 0.4, label=who)
        ax.set_xticks([x + 0.2 for x in range(len(conc))], ["concurrency " + c for c in conc])
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle("sparkops serving_benchmark vs vllm bench serve, %d requests of %d tokens per level"
                 % (result["requests"], result["max_tokens"]))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# The cold start's phases, in the flow's order: a task of the deploy belongs to the first
# phase whose test it passes (its role, action, task or play name, from the timeline callback).
COLDSTART_PHASES = (
    ("preflight", lambda r: r["play"].startswith(("Preflight", "Node facts", "The nodes to act on"))),
    ("host setup", lambda r: _role(r) in ("os_hardening", "netplan", "confirmed_apply", "firewall")),
    ("image", lambda r: _role(r) == "engine_image" or (_role(r) == "model_sync" and "image" in r["task"].lower())),
    ("checksums, head in the background", lambda r: _task(r).startswith(("Hash the head's weights in the background",
                                                                         "The head's background hashing has ended"))),
    ("checksums, first listing", lambda r: r["action"].endswith("model_manifest") and "List the model directory" in r["task"]),
    ("checksums, after the copy", lambda r: r["action"].endswith("model_manifest")),
    ("weights copy", lambda r: r["action"].endswith("model_copy")),
    ("weights, other", lambda r: _role(r) == "model_sync"),
    ("Ray", lambda r: _role(r) == "engine_container"),
    ("first token", lambda r: "Read the API as a client would" in r["task"]),
    ("engine load", lambda r: _role(r) == "vllm_serve"),
    ("other", lambda r: True),
)


def _task(record):
    """The task's own name (the timeline names a role's task "ROLE : NAME")."""
    return record["task"].split(" : ", 1)[-1]


def _role(record):
    return (record.get("role") or "").rsplit(".", 1)[-1]


def coldstart_phase(record):
    return next(name for name, test in COLDSTART_PHASES if test(record))


def _rails(ifaces):
    """A node's rail interfaces (systemd names a ConnectX-7 port with its physical port:
    enp1s0f1np1, enP2p1s0f1np1) and its others."""
    rail = re.compile(r"np\d+$")
    return ({k: v for k, v in ifaces.items() if rail.search(k)}, {k: v for k, v in ifaces.items() if not rail.search(k)})


def _coldstart_report(raw):
    """Each phase's start and end on each node (seconds from the deploy's first task), its busy
    seconds, the bytes each node received and sent on its rails and elsewhere, the CPU-s split,
    and the copy's and the checksums' rates against the head's raw read and one TCP stream."""
    records = [r for r in raw["timeline"] if r["status"] != "skipped"]
    t0 = min(r["start"] for r in raw["timeline"])
    t_end = max(r["end"] for r in raw["timeline"])
    nodes = sorted({r["host"] for r in records if r["host"] != "localhost"},
                   key=lambda h: list(raw["counters"]["before"]).index(h) if h in raw["counters"]["before"] else 99)
    phases = {}
    for r in records:
        name = coldstart_phase(r)
        cell = phases.setdefault(name, {}).setdefault(r["host"], {"start": r["start"], "end": r["end"], "busy": 0.0,
                                                                  "tasks": 0})
        cell["start"], cell["end"] = min(cell["start"], r["start"]), max(cell["end"], r["end"])
        cell["busy"] += r["end"] - r["start"]
        cell["tasks"] += 1
    table = []  # in the order the phases began
    for name, _test in sorted(COLDSTART_PHASES, key=lambda p: min((c["start"] for c in phases.get(p[0], {}).values()),
                                                                    default=0)):
        if name not in phases:
            continue
        cells = phases[name]
        table.append({"phase": name,
                      "start": round(min(c["start"] for c in cells.values()) - t0, 1),
                      "end": round(max(c["end"] for c in cells.values()) - t0, 1),
                      "per_node": {h: {"start": round(c["start"] - t0, 1), "end": round(c["end"] - t0, 1),
                                       "busy": round(c["busy"], 1), "tasks": c["tasks"]} for h, c in cells.items()}})
    # every task on every host, as drawn: [start, end, phase] from the deploy's first task
    segments = {}
    for r in records:
        segments.setdefault(r["host"], []).append([round(r["start"] - t0, 2), round(r["end"] - t0, 2), coldstart_phase(r)])
    moved = {}
    for node in raw["counters"]["after"]:
        after, before = raw["counters"]["after"][node], raw["counters"]["before"][node]
        delta = {k: [after[k][0] - before.get(k, [0, 0])[0], after[k][1] - before.get(k, [0, 0])[1]] for k in after}
        rails, others = _rails(delta)
        moved[node] = {"rails_rx": sum(v[0] for v in rails.values()), "rails_tx": sum(v[1] for v in rails.values()),
                       "other_rx": sum(v[0] for v in others.values()), "other_tx": sum(v[1] for v in others.values())}
    base = raw["baseline"]
    weights = base["weights"]["bytes"]
    copy = next((row for row in table if row["phase"] == "weights copy"), None)
    sums = next((row for row in table if row["phase"] == "checksums, first listing"), None)
    again = next((row for row in table if row["phase"] == "checksums, after the copy"), None)
    read_bps = base["head_raw_read"][0] / base["head_raw_read"][1]
    tcp_bps = base["one_tcp_stream_rail1"][0] / base["one_tcp_stream_rail1"][1]
    receivers = len(nodes) - 1
    rates = {
        "head_raw_read_GBps": rate(*base["head_raw_read"]),
        "one_tcp_stream_rail1_GBps": rate(*base["one_tcp_stream_rail1"]),
        "head_checksums_alone_GBps": rate(weights, base["head_checksum_seconds"]),
        # the ballast (most of the bytes) crossing to every receiver, over the copy phase's span
        "copy_ballast_to_all_receivers_GBps": rate(weights * receivers, copy["end"] - copy["start"]) if copy else None,
        "copy_per_receiver_GBps": rate(weights, copy["end"] - copy["start"]) if copy else None,
    }
    if sums and raw["timeline"]:
        head = nodes[0] if nodes else None
        cell = sums["per_node"].get(head)
        rates["head_first_listing_GBps"] = rate(weights, cell["busy"]) if cell else None
    if again:
        rates["after_copy_listing_seconds_per_node"] = {h: c["busy"] for h, c in again["per_node"].items()}
    if nodes and nodes[0] in moved and weights:
        # how many copies of the weights the head sent on its rails: one per receiver (fan-out) or one (relay)
        rates["head_copies_sent"] = round(moved[nodes[0]]["rails_tx"] / weights, 2)
    if again:
        # the receivers' listing after the copy took the head's checksums: it took under a quarter of the time
        # hashing the weights takes (a listing that hashed them took 20-21 s of 7.8 here, one that did not 0.3-0.8)
        slowest = max(c["busy"] for h, c in again["per_node"].items() if h != (nodes[0] if nodes else None)) \
            if len(again["per_node"]) > 1 else None
        rates["copy_trusted"] = slowest is not None and slowest < 0.25 * base["head_checksum_seconds"]
    rates["copy_per_receiver_to_one_tcp_stream"] = ratio(rates["copy_per_receiver_GBps"], rates["one_tcp_stream_rail1_GBps"])
    rates["copy_to_head_raw_read"] = ratio(rates["copy_ballast_to_all_receivers_GBps"], rates["head_raw_read_GBps"])
    background = next((row for row in table if row["phase"] == "checksums, head in the background"), None)
    head_bg = background["per_node"].get(nodes[0]) if background and nodes else None
    waits = [r for r in records if r["host"] == (nodes[0] if nodes else None)
             and _task(r).startswith("The head's background hashing has ended")]
    starts = [r for r in records if _task(r).startswith("Hash the head's weights in the background")]
    bg = None
    if head_bg and waits and starts:
        # the hashing ran hidden from its start to the weights' wait, then the wait showed what was left
        bg = {"window_s": round(waits[0]["start"] - starts[0]["end"], 1),
              "waited_s": round(waits[0]["end"] - waits[0]["start"], 1)}
    return {"when": raw["when"], "cpus": raw["cpus"], "nodes": nodes, "ballast": raw["ballast"],
            "extra_vars": raw.get("extra_vars") or {}, "background_hash": bg,
            "deploy_seconds": raw["deploy"]["seconds"], "timeline_seconds": round(t_end - t0, 1),
            "cpu_seconds": raw["deploy"]["cpu_seconds"], "phases": table, "segments": segments, "bytes_moved": moved,
            "rates": rates,
            "baseline": {"read_Bps": round(read_bps), "tcp_Bps": round(tcp_bps)},
            "projection": None,
            "simulation": "every simulated node runs its engine containers on this machine's one Docker engine, "
                          "which has the engine image: no node lacks it, so the image phase is the build on the head "
                          "(from Docker's build cache after the first run) and the ID checks, and no image copy runs"}


# Public figures for the projection to 4 DGX Sparks and a 397 GB checkpoint (not measured here).
SPARK = {
    "checkpoint_bytes": 397e9,
    # a cold read of safetensors on a DGX Spark's NVMe through a pinned bounce buffer
    "nvme_read_Bps": 5.1e9, "nvme_read_source": "vcruz305/vllm-exl3 PR #28 (GB10: 5.1 GB/s cold, 27.2 warm)",
    # RDMA write per rail, two rails per node
    "rail_Bps": 97.28e9 / 8, "rails": 2, "rail_source": "NVIDIA/dgx-spark-playbooks PR #108 (ib_write_bw 97.28 Gb/s)",
    # vLLM's own load of Qwen3.5-397B int4 once the weights are on every node
    "load_s": 150, "load_source": "eugr/spark-vllm-docker #82 (about 2.5 minutes)",
    # the largest file a relay forwards whole before the next hop starts it
    "shard_bytes": 5e9, "shard_source": "transformers save_pretrained, max_shard_size 5GB by default",
}
# Our copy where the CPUs are not the bound (model_copy, 4 streams, rsync daemons, shards from
# a disk whose cache was dropped, on a 16-CPU host): one receiver got 1.534 GB/s of a 1.54 GB/s
# raw read, three at once 1.124-1.133 GB/s each of 1.63 (they share the page cache).
UNBOUND = {
    "hop_of_read": round(1.534 / 1.54, 3), "fan_out_of_read": round(1.124 / 1.63, 3),
    "source": "benchmarks/copy-16cpu-1receiver-disk.json and copy-16cpu-3receivers-disk.json, 4 streams, rsyncd",
}
GOAL_S = 480  # clean nodes to the first token, 4 Sparks, 397 GB: 8 minutes


def coldstart_projection(result, nodes=4, spark=None, goal_s=GOAL_S, unbound=None):
    """The cold start of 4 Sparks and a 397 GB checkpoint, phase by phase, from public figures
    and this run's shape; the assumptions are returned with the number:

    - the head hashes the checkpoint at its disk's read rate (SHA-256 on 10+ cores outruns one
      NVMe); in the background from before the host setup when this run did so, then only what
      outlasts the window this run gave it (its start to the weights' wait) is on the path;
    - the copy is a relay when this run's head sent one copy on its rails, else a fan-out (one
      per receiver). Each receiver gets the fraction of the head's raw read that our copy reached
      where the CPUs were not the bound (a 16-CPU host: one receiver, the relay's hop; three at
      once, the fan-out). No node's rails send more than 2 x 97.28 Gb/s; a relay adds one shard
      per further hop (a file is forwarded whole). This run's own copy rate is not used: its 4
      nodes share 2 CPUs, which bound every copy here (the relay and the fan-out alike);
    - the receivers hash again after the copy unless this run trusted the copy (its receivers'
      listing after the copy took under a quarter of the time the head's checksums took);
    - vLLM's load as the field reports it; the rest of this run (preflight, host setup, Ray,
      orchestration) as measured here: an upper bound, on a 2-CPU machine that runs all 4 nodes.

    copy_needed_GBps: the slowest copy (bytes per second each receiver gets) that still meets
    the goal, the other phases as projected.
    """
    spark, unbound = spark or SPARK, unbound or UNBOUND
    w, read = spark["checkpoint_bytes"], spark["nvme_read_Bps"]
    receivers = nodes - 1
    rates = result["rates"]
    # whole copies (the rest of the head's rail traffic is the deploy's own: Ray, the checks)
    head_copies = max(1, round(rates.get("head_copies_sent") or receivers))
    relay = head_copies == 1 and receivers > 1
    egress = spark["rail_Bps"] * spark["rails"]
    fill = (receivers - 1) * spark["shard_bytes"] if relay else 0.0
    fraction = unbound["hop_of_read"] if relay else unbound["fan_out_of_read"]
    copy_rate = min(read * fraction, egress / (1 if relay else receivers))
    copy_s = (w + fill) / copy_rate
    span = {row["phase"]: row["end"] - row["start"] for row in result["phases"]}
    serve = [row for row in result["phases"] if row["phase"] in ("engine load", "first token")]
    background = result.get("background_hash")
    projected = ("weights copy", "checksums, first listing", "checksums, after the copy")
    rest = result["timeline_seconds"] - sum(span.get(k, 0) for k in projected) - (
        max(r["end"] for r in serve) - min(r["start"] for r in serve) if serve else 0) - (
        background["waited_s"] if background else 0)
    hash_s = w / read
    window = background["window_s"] if background else 0.0
    trusted = bool(rates.get("copy_trusted"))
    copy_name = "copy down a relay of %d receivers" % receivers if relay else "copy to %d receivers at once" % receivers
    phases = {"preflight, host setup, Ray, orchestration (measured here)": round(rest),
              ("head hashes the checkpoint (what outlasts the host setup)" if background
               else "head hashes the checkpoint"): round(max(0.0, hash_s - window)),
              copy_name: round(copy_s),
              "receivers hash the copy again": 0 if trusted else round(hash_s),
              "vLLM loads": spark["load_s"]}
    total = sum(phases.values())
    holding = max(phases, key=phases.get)
    room = goal_s - (total - phases[copy_name])
    return {"nodes": nodes, "checkpoint_GB": w / 1e9, "total_s": total, "goal_s": goal_s, "under_goal": total <= goal_s,
            "verdict": ("%d s, under the %d s goal by %d s" % (total, goal_s, goal_s - total)) if total <= goal_s else
                       ("%d s, over the %d s goal by %d s; the largest phase is %s (%d s)" % (
                           total, goal_s, total - goal_s, holding, phases[holding])),
            "phases_s": phases, "shares": {k: round(v / total, 3) for k, v in phases.items()},
            "copy_GBps": round(copy_rate / 1e9, 2),
            "copy_needed_GBps": round((w + fill) / room / 1e9, 2) if room > 0 else None,
            "assumptions": {"relay": relay, "head_copies": head_copies, "copy_of_head_read": fraction,
                            "hash_window_s": round(window, 1), "copy_trusted": trusted,
                            "nvme_read_GBps": read / 1e9, "rail_egress_GBps": round(egress / 1e9, 2),
                            "load_s": spark["load_s"], "shard_GB": spark["shard_bytes"] / 1e9},
            "sources": dict({k: v for k, v in spark.items() if k.endswith("_source")}, copy_source=unbound["source"])}


def coldstart_report(raw):
    result = _coldstart_report(raw)
    result["projection"] = coldstart_projection(result)
    return result


def coldstart_plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["phase"] for row in result["phases"]]
    colours = dict(zip(names, plt.get_cmap("tab20").colors))
    hosts = result["nodes"] + (["localhost"] if any("localhost" in row["per_node"] for row in result["phases"]) else [])
    fig, ax = plt.subplots(figsize=(12, 1.0 + 0.7 * len(hosts)), dpi=100)
    for y, host in enumerate(reversed(hosts)):
        # each task as it ran on this host, coloured by its phase (a phase's tasks may interleave)
        for start, end, phase in result["segments"].get(host, []):
            ax.barh(y, max(end - start, 0.05), left=start, height=0.6, color=colours[phase], label=phase)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend([unique[n] for n in names if n in unique], [n for n in names if n in unique], fontsize=7, ncol=5,
              loc="upper center", bbox_to_anchor=(0.5, -0.18 if len(hosts) > 3 else -0.3))
    ax.set_yticks(range(len(hosts)), list(reversed(hosts)), fontsize=8)
    ax.set_xlabel("seconds from the deploy's first task")
    rates = result["rates"]
    ax.set_title("Cold start to the first token: %.0f s, %d nodes, %.1f GiB of ballast; copy %.2f GB/s per receiver "
                 "(one TCP stream %.2f), head read %.2f GB/s" % (
                     result["deploy_seconds"], len(result["nodes"]), result["ballast"]["bytes"] / 2 ** 30,
                     rates["copy_per_receiver_GBps"] or 0, rates["one_tcp_stream_rail1_GBps"] or 0,
                     rates["head_raw_read_GBps"] or 0), fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as fh:
        raw = json.load(fh)
    # scripts/bench/scale.py, serving.yml, coldstart.py, sync.yml
    kind = "scale" if "runs" in raw else raw.get("kind", "sync")
    if kind in ("scale", "serving", "coldstart"):
        make, draw = {"scale": (scale_report, scale_plot), "serving": (serving_report, serving_plot),
                      "coldstart": (coldstart_report, coldstart_plot)}[kind]
        result = make(raw)
        with open(sys.argv[2] + ".json", "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")
        draw(result, sys.argv[2] + ".png")
        print(json.dumps({k: v for k, v in result.items() if k != "raw"}, indent=2))
        return
    result = report(raw)
    with open(sys.argv[2] + ".json", "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")
    plot(result, sys.argv[2] + ".png")
    print(json.dumps({k: v for k, v in result.items() if k != "raw"}, indent=2))


if __name__ == "__main__":
    main()
