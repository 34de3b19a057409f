"""Is the Ray cluster whole? On `ray.nodes()` JSON captured from the real Ray of the
simulated cluster (tests/fixtures/ray_nodes_*)."""

from __future__ import annotations

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from ansible_collections.sparkops.cluster.plugins.module_utils._ray import cluster_state
from conftest import fixture

EXPECTED = {"192.168.100.10": "spark-alpha", "192.168.100.11": "spark-beta",
            "192.168.100.12": "spark-gamma", "192.168.100.13": "spark-delta"}


def test_all_four_alive_is_whole():
    s = cluster_state(fixture("ray_nodes_4_alive.json"), EXPECTED, 1)
    assert s["whole"] and s["nodes"] == 4 and s["gpus"] == 4.0 and s["missing"] == []
    assert s["summary"] == "4/4 nodes, 4/4 GPU"


def test_a_stopped_worker_is_named():
    s = cluster_state(fixture("ray_nodes_4_one_dead.json"), EXPECTED, 1)
    assert not s["whole"]
    assert s["missing"] == ["spark-delta"] and s["dead"] == ["spark-delta"]
    assert s["summary"] == "3/4 nodes, 3/4 GPU; missing: spark-delta"


def test_more_gpus_expected_than_present():
    s = cluster_state(fixture("ray_nodes_4_alive.json"), EXPECTED, 8)
    assert not s["whole"] and s["missing"] == [] and s["summary"] == "4/4 nodes, 4/32 GPU"


def test_a_node_not_in_the_plan_is_reported():
    expected = dict(list(EXPECTED.items())[:3])
    s = cluster_state(fixture("ray_nodes_4_alive.json"), expected, 1)
    assert s["whole"] and s["unexpected"] == ["192.168.100.13"]


@pytest.mark.parametrize("text", ["", "Traceback (most recent call last):\n ConnectionError: GCS", '[{"Alive": true}]'])
def test_garbage_is_a_clear_error(text):
    with pytest.raises(ToolOutputError, match="ray.nodes"):
        cluster_state(text, EXPECTED, 1)
