# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rates and ratios of a weights-distribution benchmark (scripts/bench/sync.yml writes the
measurements: bytes and seconds), written as one JSON file and one PNG plot:

  python3 scripts/bench_report.py RAW.json OUT_STEM

writes OUT_STEM.json and OUT_STEM.png. Every rate is in GB/s (10^9 bytes per second). A
copy round's time is the slowest receiver's streams plus the slowest receiver's exact
rsync pass (the receivers run each step at the same time).
"""

from __future__ import annotations

import json
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
    rounds = []
    for r in raw["rounds"]:
        copy_s = max(r["stream_seconds"]) + max(r["pass_seconds"])
        per_node = rate(nbytes, copy_s)
        rounds.append({
            "streams": r["streams"], "receivers": len(r["receivers"]),
            "copy_seconds": round(copy_s, 2), "role_seconds": round(max(r["role_seconds"]), 2),
            "per_node_gb_s": per_node,
            "aggregate_gb_s": round(per_node * len(r["receivers"]), 3) if per_node else None,
            "per_node_of_one_tcp_stream": ratio(per_node, tcp),
            "aggregate_of_head_raw_read": ratio(per_node * len(r["receivers"]) if per_node else None, raw_read),
        })
    single = next((r for r in rounds if r["streams"] == 1), None)
    for r in rounds:
        r["speedup_over_one_rsync"] = ratio(single["copy_seconds"], r["copy_seconds"]) if single else None
    return {
        "nodes": raw["nodes"],
        "page_cache_dropped": raw.get("page_cache_dropped", True),
        "weights": raw["weights"],
        "head_raw_read_gb_s": raw_read,
        "one_tcp_stream_rail1_gb_s": tcp,
        "head_checksums_gb_s": hashing,
        "head_checksums_of_raw_read": ratio(hashing, raw_read),
        "copies": rounds,
        "raw": raw,
    }


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["disk read (head)", "1 TCP stream (rail1)", "checksums (head)"]
    values = [result["head_raw_read_gb_s"], result["one_tcp_stream_rail1_gb_s"], result["head_checksums_gb_s"]]
    for r in result["copies"]:
        labels.append("copy, %d stream%s\nper node" % (r["streams"], "" if r["streams"] == 1 else "s"))
        values.append(r["per_node_gb_s"])
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    bars = ax.bar(range(len(values)), [v or 0 for v in values], color=["#777"] * 3 + ["#2a7"] * len(result["copies"]))
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


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as fh:
        raw = json.load(fh)
    result = report(raw)
    with open(sys.argv[2] + ".json", "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")
    plot(result, sys.argv[2] + ".png")
    print(json.dumps({k: v for k, v in result.items() if k != "raw"}, indent=2))


if __name__ == "__main__":
    main()
