"""scripts/bench_report.py: rates and ratios from the measurements of a real run of
scripts/bench/sync.yml on the simulated cluster."""

from __future__ import annotations

import importlib.util
import json

from conftest import REPO, fixture

SPEC = importlib.util.spec_from_file_location("bench_report", REPO / "scripts" / "bench_report.py")
bench_report = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench_report)

RAW = json.loads(fixture("bench_sync_raw_4nodes_cold.json.txt"))


def test_rates_are_bytes_over_seconds():
    r = bench_report.report(RAW)
    read_bytes, read_s = RAW["head_raw_read"]
    assert r["head_raw_read_gb_s"] == round(read_bytes / read_s / 1e9, 3)
    assert r["head_checksums_gb_s"] == round(RAW["weights"]["bytes"] / RAW["head_checksum_seconds"] / 1e9, 3)
    assert r["head_checksums_of_raw_read"] == round(r["head_checksums_gb_s"] / r["head_raw_read_gb_s"], 3)


def test_a_rounds_copy_time_is_the_slowest_streams_plus_the_slowest_pass():
    r = bench_report.report(RAW)
    assert [c["streams"] for c in r["copies"]] == [1, 4]
    for raw, c in zip(RAW["rounds"], r["copies"]):
        assert c["copy_seconds"] == round(max(raw["stream_seconds"]) + max(raw["pass_seconds"]), 2)
        assert c["receivers"] == 3 and c["aggregate_gb_s"] == round(c["per_node_gb_s"] * 3, 3)
    one = r["copies"][0]
    assert max(RAW["rounds"][0]["stream_seconds"]) == 0  # one rsync: no streams before the exact pass
    assert one["speedup_over_one_rsync"] == 1.0
    assert r["copies"][1]["speedup_over_one_rsync"] == round(one["copy_seconds"] / r["copies"][1]["copy_seconds"], 3)


def test_json_and_png_written(tmp_path, monkeypatch):
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(RAW))
    monkeypatch.setattr("sys.argv", ["bench_report.py", str(raw), str(tmp_path / "out")])
    bench_report.main()
    assert json.loads((tmp_path / "out.json").read_text())["raw"] == RAW
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_growth_names_the_tasks_that_grew_most_and_where_they_ran():
    small = {"tasks": [["facts", 1.0, 4], ["plan", 0.2, 1], ["wait", 2.0, 1], ["copy", 0.5, 4]]}
    large = {"tasks": [["facts", 2.5, 8], ["plan", 0.3, 1], ["wait", 2.0, 1], ["copy", 1.3, 8]]}
    g = bench_report.growth(small, large, top=2)
    assert [row["task"] for row in g["tasks"]] == ["facts", "copy"]
    assert g["tasks"][0] == {"task": "facts", "seconds": [1.0, 2.5], "nodes": [4, 8]}
    assert g["grew_on_tasks_of_every_node"] == 2.3 and g["grew_on_the_others"] == 0.1
    assert bench_report.growth({}, large) is None  # a run recorded before the tasks were kept
