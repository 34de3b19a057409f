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


SCALE_SPEC = importlib.util.spec_from_file_location("scale", REPO / "scripts" / "bench" / "scale.py")
scale = importlib.util.module_from_spec(SCALE_SPEC)
SCALE_SPEC.loader.exec_module(scale)
CGROUP = fixture("proc_cgroup_v1_docker_28.2.2_node_container.txt")
NODE_ID = "a58e9d07e789382456e01c41af72a5745fce8faf5d786aa53ef01b26af51c0fe"


def test_a_containers_cpu_is_its_cpuacct_cgroup_not_systemds_init_scope(tmp_path):
    group = tmp_path / "cpuacct" / "docker" / NODE_ID
    group.mkdir(parents=True)
    (group / "cpuacct.usage").write_text("56943128565\n")
    (group / "init.scope").mkdir()
    (group / "init.scope" / "cpuacct.usage").write_text("1000\n")  # not the one: the container's is above it
    assert scale.cgroup_cpu(CGROUP, root=str(tmp_path)) == 56.943128565


def test_cgroup_v2_reads_usage_usec_and_an_unreadable_cgroup_is_none(tmp_path):
    v2 = "0::/system.slice/docker-%s.scope\n" % NODE_ID
    assert scale.cgroup_cpu(v2, root=str(tmp_path)) is None
    group = tmp_path / "system.slice" / ("docker-%s.scope" % NODE_ID)
    group.mkdir(parents=True)
    (group / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    assert scale.cgroup_cpu(v2, root=str(tmp_path)) == 2.5


def test_the_machines_cpu_is_split_between_nodes_engines_the_controller_and_the_rest():
    before = {"spark-alpha": 10.0, "spark-beta": 5.0, "sparkops-engine-spark-alpha": 20.0}
    after = {"spark-alpha": 13.0, "spark-beta": 7.5, "sparkops-engine-spark-alpha": 24.0,
             "sparkops-engine-spark-beta": 1.0}  # started during the run: all of it counts
    split = scale.cpu_split(before, after, machine=30.0, tree=12.0)
    assert split == {"machine": 30.0, "nodes": 5.5, "engines": 5.0, "controller_tree": 12.0, "rest": 7.5}


def _coldstart_result(head_copies, trusted=True, background=None, factor=0.415):
    """The parts of a coldstart report that the projection reads (a run of 255.9 s, as in
    benchmarks/coldstart-20261207T171100Z.json)."""
    phases = [{"phase": "weights copy", "start": 80.6, "end": 158.7},
              {"phase": "checksums, first listing", "start": 62.7, "end": 76.6},
              {"phase": "checksums, after the copy", "start": 159.5, "end": 160.5},
              {"phase": "engine load", "start": 181.7, "end": 247.7},
              {"phase": "first token", "start": 225.5, "end": 247.1}]
    return {"timeline_seconds": 255.9, "phases": phases, "background_hash": background,
            "rates": {"copy_to_head_raw_read": factor, "head_copies_sent": head_copies, "copy_trusted": trusted}}


def test_the_projection_of_a_fan_out_reads_the_heads_disk_once_per_receiver():
    p = bench_report.coldstart_projection(_coldstart_result(3.0, trusted=False))
    read = bench_report.SPARK["nvme_read_Bps"]
    # three receivers at once each got 0.69 of the raw read where the CPUs were not the bound
    assert p["phases_s"]["copy to 3 receivers at once"] == round(397e9 / (round(1.124 / 1.63, 3) * read))
    assert p["phases_s"]["receivers hash the copy again"] == round(397e9 / read)
    rest = 255.9 - (158.7 - 80.6) - (76.6 - 62.7) - (160.5 - 159.5) - (247.7 - 181.7)
    assert p["phases_s"]["preflight, host setup, Ray, orchestration (measured here)"] == round(rest)
    assert p["total_s"] == sum(p["phases_s"].values())
    assert abs(sum(p["shares"].values()) - 1) < 0.01


def test_the_projection_of_a_relay_reads_it_once_and_adds_a_shard_per_further_hop():
    p = bench_report.coldstart_projection(_coldstart_result(1.02, background={"window_s": 50.0, "waited_s": 2.0}))
    read = bench_report.SPARK["nvme_read_Bps"]
    assert p["phases_s"]["copy down a relay of 3 receivers"] == round((397e9 + 2 * 5e9) / (0.996 * read))
    # the head's 78 s of hashing ran 50 s hidden behind the host setup; its wait is not counted twice
    assert p["phases_s"]["head hashes the checkpoint (what outlasts the host setup)"] == round(397e9 / read - 50)
    assert p["phases_s"]["receivers hash the copy again"] == 0
    rest = 255.9 - (158.7 - 80.6) - (76.6 - 62.7) - (160.5 - 159.5) - (247.7 - 181.7) - 2.0
    assert p["phases_s"]["preflight, host setup, Ray, orchestration (measured here)"] == round(rest)
    assert p["assumptions"]["relay"] and p["assumptions"]["hash_window_s"] == 50.0
    assert p["under_goal"] and p["verdict"].startswith("%d s, under the 480 s goal by" % p["total_s"])
    # the slowest copy that still meets the goal, the other phases as they are
    others = p["total_s"] - p["phases_s"]["copy down a relay of 3 receivers"]
    assert p["copy_needed_GBps"] == round((397e9 + 2 * 5e9) / (480 - others) / 1e9, 2)


def test_over_the_goal_the_projection_names_the_phase_that_holds_it():
    slow = dict(bench_report.SPARK, nvme_read_Bps=1.0e9)
    p = bench_report.coldstart_projection(_coldstart_result(3.0, trusted=False), spark=slow)
    assert not p["under_goal"]
    assert p["verdict"] == "%d s, over the 480 s goal by %d s; the largest phase is copy to 3 receivers at once (%d s)" % (
        p["total_s"], p["total_s"] - 480, p["phases_s"]["copy to 3 receivers at once"])
    assert p["copy_needed_GBps"] is None  # the other phases alone pass the goal


def test_the_projection_caps_the_copy_at_the_rails():
    # a disk faster than the rails: 2 x 97.28 Gb/s per node bound the relay's hop
    fast = dict(bench_report.SPARK, nvme_read_Bps=40e9)
    p = bench_report.coldstart_projection(_coldstart_result(1.0), spark=fast)
    assert p["phases_s"]["copy down a relay of 3 receivers"] == round((397e9 + 2 * 5e9) / (2 * 97.28e9 / 8))
