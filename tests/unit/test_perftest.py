from __future__ import annotations

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils import _perftest
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from conftest import fixture


def test_gb10_client_result():
    r = _perftest.parse_bw(fixture("ib_write_bw_gb10_report_gbits_q4_rdma_cm_summary.txt"))
    assert r == {"bytes": 65536, "iterations": 20000, "peak_gbps": 111.62, "average_gbps": 111.61,
                 "msg_rate_mpps": 0.212877, "unit": "Gb/sec"}


def test_server_waiting_banner_is_not_a_result():
    text = fixture("ib_write_bw_gb10_server_waiting.txt")
    assert _perftest.is_waiting(text)
    with pytest.raises(ToolOutputError, match="no result table"):
        _perftest.parse_bw(text)


def test_connection_refused_is_diagnosed():
    text = fixture("ib_write_bw_client_connection_refused.txt")
    d = _perftest.diagnose(text)
    assert d["cause"] == "connection refused" and "10.55.206.82:18515" in d["hint"]
    with pytest.raises(ToolOutputError) as err:
        _perftest.parse_bw(text)
    assert "connection refused" in str(err.value)
    assert "Couldn't connect to 10.55.206.82:18515" in str(err.value)


def test_megabytes_are_converted():
    text = fixture("ib_write_bw_gb10_report_gbits_q4_rdma_cm_summary.txt").replace("Gb/sec", "MB/sec")
    r = _perftest.parse_bw(text)
    assert r["average_gbps"] == pytest.approx(111.61 * 8 * 2 ** 20 / 1e9, abs=1e-3)


@pytest.mark.parametrize("text", ["", "garbage\n", "\x00\x01\x02"])
def test_empty_or_corrupt(text):
    with pytest.raises(ToolOutputError):
        _perftest.parse_bw(text)


def test_truncated_row_is_quoted():
    text = fixture("ib_write_bw_gb10_report_gbits_q4_rdma_cm_summary.txt").replace(
        " 65536      20000            111.62             111.61             0.212877", " 65536      20000   111.6")
    with pytest.raises(ToolOutputError, match="65536      20000   111.6"):
        _perftest.parse_bw(text)


def test_two_rail_aggregate_and_thresholds():
    # seed 003: ~106 Gb/s per rail, ~212 aggregate on one 200G port
    rails = [{"name": "rail1", "average_gbps": 106.1}, {"name": "rail2", "average_gbps": 105.9}]
    agg = _perftest.aggregate(rails, line_rate_gbps=200, min_gbps=90, min_aggregate_gbps=180)
    assert agg["aggregate_gbps"] == 212.0 and agg["failures"] == []
    assert agg["line_rate_share"] == 1.06 and rails[0]["line_rate_share"] == 0.5305
    slow = [{"name": "rail1", "average_gbps": 12.0}, {"name": "rail2", "average_gbps": 105.9}]
    agg = _perftest.aggregate(slow, line_rate_gbps=200, min_gbps=90, min_aggregate_gbps=180)
    assert agg["failures"] == ["rail rail1: 12.00 Gb/s is below min_gbps 90.00",
                               "aggregate 117.90 Gb/s over 2 rail(s) is below min_aggregate_gbps 180.00"]


def test_command_line():
    assert _perftest.command("rocep1s0f1", 18515, 8388608, 4, 10, server="192.168.100.10", rdma_cm=True) == [
        "ib_write_bw", "-d", "rocep1s0f1", "-i", "1", "-p", "18515", "-s", "8388608", "-q", "4", "-D", "10",
        "--report_gbits", "-F", "-R", "192.168.100.10"]


def test_duration_mode_peak_is_not_measured_and_a_notice_before_the_row_is_skipped():
    # perftest's duration mode (-D, which roce_bandwidth always passes) prints 0.00 for the
    # peak it did not measure; that is null, not a peak of 0 Gb/s
    r = _perftest.parse_bw(fixture("ib_write_bw_mlx5_duration_bidirectional_no_peak.txt"))
    assert r["peak_gbps"] is None and r["average_gbps"] == 98.02 and r["iterations"] == 560845


def test_a_corrupt_row_is_still_named():
    text = fixture("ib_write_bw_gb10_report_gbits_q4_rdma_cm_summary.txt").replace("65536      20000", "65536 20x00")
    with pytest.raises(ToolOutputError, match="expected a result row after the header"):
        _perftest.parse_bw(text)
