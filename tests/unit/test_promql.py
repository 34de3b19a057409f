"""Prometheus' range query answers read by module_utils/_promql, on answers captured verbatim
from the monitoring scenario's Prometheus (tests/fixtures/prometheus_query_range_*.json, each
naming its source), and on broken bytes."""

from __future__ import annotations

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils import _promql
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from conftest import fixture


def test_a_node_series_with_its_labels_and_points():
    series = _promql.range_series(fixture("prometheus_query_range_memavailable.json"))
    assert len(series) == 1
    assert series[0]["metric"] == {"__name__": "node_memory_MemAvailable_bytes", "instance": "127.0.0.1:9100",
                                   "job": "node", "node": "sparkops-monitoring", "rank": "0", "recipe": "one-host"}
    points = series[0]["points"]
    assert len(points) >= 2 and all(p[1] > 2 ** 30 for p in points)
    assert [p[0] for p in points] == sorted(p[0] for p in points) and points[1][0] - points[0][0] == 15


def test_a_rate_series_has_no_name_label():
    series = _promql.range_series(fixture("prometheus_query_range_netrx.json"))
    assert series and all("__name__" not in s["metric"] and s["metric"]["job"] == "node" for s in series)


def test_a_query_that_matches_nothing_is_no_series():
    assert _promql.range_series(fixture("prometheus_query_range_empty.json")) == []


def test_prometheus_own_error_is_named():
    with pytest.raises(ToolOutputError, match="Prometheus answered bad_data: 1:29: parse error: missing unit character"):
        _promql.range_series(fixture("prometheus_query_range_baddata.json"))


@pytest.mark.parametrize("body, words", [
    (b"\xff\xfe<html>502 Bad Gateway</html>", "not JSON"),
    (b"", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"status": "success", "data": {"resultType": "vector", "result": []}}', "expected data.resultType matrix"),
    (b'{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}}]}}', "a series without values"),
    (b'{"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1, "x"]]}]}}',
     "a sample that is not"),
    (b'{"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1]]}]}}', "a sample that is not"),
])
def test_broken_bytes_are_named_not_a_traceback(body, words):
    with pytest.raises(ToolOutputError, match=words):
        _promql.range_series(body)


def test_nan_and_inf_are_none():
    body = b'{"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1, "NaN"], [2, "+Inf"], [3, "2"]]}]}}'
    assert _promql.range_series(body)[0]["points"] == [[1.0, None], [2.0, None], [3.0, 2.0]]


def test_metrics_plot_draws_the_captured_series_once_and_not_in_check_mode(run_module, tmp_path):
    from ansible_collections.sparkops.cluster.plugins.modules import metrics_plot

    series = {"mem_available_bytes": _promql.range_series(fixture("prometheus_query_range_memavailable.json")),
              "generation_tok_s": _promql.range_series(fixture("prometheus_query_range_empty.json"))}
    end = series["mem_available_bytes"][0]["points"][-1][0]
    dest = tmp_path / "last-hours.png"
    args = {"series": series, "end": end, "dest": str(dest)}
    failed, r = run_module(metrics_plot, args, check_mode=True)
    assert not failed and r["changed"] and not dest.exists()
    failed, r = run_module(metrics_plot, args)
    data = dest.read_bytes()
    assert not failed and r["changed"] and data[:8] == b"\x89PNG\r\n\x1a\n" and r["size"] == len(data)
    failed, r = run_module(metrics_plot, args)
    assert not failed and r["changed"] is False  # the same series draw the same bytes
    failed, r = run_module(metrics_plot, dict(args, series={"x": "not a list"}))
    assert failed and "series must map each name to a list" in r["msg"]
