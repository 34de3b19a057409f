"""The scrape targets of the cluster's Prometheus, from plans the preflight makes
(plugin_utils/_monitoring, filter sparkops.cluster.scrape_targets)."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.sparkops.cluster.plugins.plugin_utils import _monitoring, _plan, _recipe, _rules, _settings
from conftest import REPO

HARDWARE = yaml.safe_load((REPO / "data" / "hardware.yml").read_text())


def four_nodes():
    return [{"name": "spark-%d" % i, "rails": [
        {"name": "rail1", "netdev": "enp1s0f1np1", "rdma_device": "rocep1s0f1", "address": "192.168.100.%d" % (10 + i),
         "subnet": "192.168.100.0/24", "mtu": 9000}]} for i in range(4)]


TABLE = _rules.Table(yaml.safe_load((REPO / "data" / "known_failures.yml").read_text()))


def plan(executor="ray", settings=None):
    recipe = _recipe.validate(_recipe.merge(yaml.safe_load((REPO / "recipes" / "qwen397b.yml").read_text()),
                                            {"engine": {"executor": executor}}))
    return _plan.build(recipe, HARDWARE["gb10"], four_nodes(), _settings.read(settings or {}), TABLE.log_patterns())


def test_a_ray_plan_scrapes_every_node_exporter_and_ray_on_the_rails_and_vllm_on_the_head():
    out = _monitoring.scrape_targets(plan("ray"))
    assert [g["targets"] for g in out["node"]] == [["192.168.100.%d:9100" % (10 + i)] for i in range(4)]
    assert [g["targets"] for g in out["ray"]] == [["192.168.100.%d:6382" % (10 + i)] for i in range(4)]
    assert out["vllm"] == [{"targets": ["127.0.0.1:8000"], "labels": {"node": "spark-0", "rank": "0", "recipe": "qwen397b"}}]
    assert out["node"][3]["labels"] == {"node": "spark-3", "rank": "3", "recipe": "qwen397b"}


def test_an_mp_plan_has_no_ray_targets():
    out = _monitoring.scrape_targets(plan("mp"))
    assert out["ray"] == [] and len(out["node"]) == 4 and len(out["vllm"]) == 1


def test_ports_are_the_callers():
    out = _monitoring.scrape_targets(plan("ray"), node_exporter_port=19100, ray_metrics_port=16382)
    assert out["node"][0]["targets"] == ["192.168.100.10:19100"] and out["ray"][0]["targets"] == ["192.168.100.10:16382"]


@pytest.mark.parametrize("bad, bind, words", [
    ({}, "rail", "the plan has no nodes"),
    ({"nodes": [{"address": "x"}]}, "rail", "the plan has no nodes"),
    (None, "rail", "the plan has no nodes"),
    ("four", "rail", "the plan has no nodes"),
    ("plan", "everywhere", "monitoring_node_exporter_bind must be rail or loopback, got 'everywhere'"),
    ("plan", "loopback", "with 4 nodes, bind them to the rails"),
])
def test_a_bad_plan_or_bind_is_named(bad, bind, words):
    with pytest.raises(_monitoring.TargetsError, match=words.replace("(", r"\(").replace(")", r"\)")):
        _monitoring.scrape_targets(plan() if bad == "plan" else bad, bind=bind)


def test_the_grafana_dashboard_asks_what_status_draws():
    """roles/monitoring/files/grafana-dashboard.json ships for those who run Grafana: its panels'
    queries and titles are the report's (vars/main.yml), one panel each, in the report's order,
    none written twice."""
    import json
    report = yaml.safe_load((REPO / "roles" / "monitoring" / "vars" / "main.yml").read_text())
    queries, labels = report["__monitoring_report_queries"], report["__monitoring_report_labels"]
    dash = json.loads((REPO / "roles" / "monitoring" / "files" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert list(queries) == list(labels)
    assert exprs == [q.strip() for q in queries.values()]
    assert [p["title"] for p in dash["panels"]] == list(labels.values())
    assert all(p["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in dash["panels"])
    assert dash["uid"] == "sparkops-cluster" and len({p["id"] for p in dash["panels"]}) == len(dash["panels"])


# --- the watchdog's configuration (filter sparkops.cluster.watchdog_config) -------------------
OPTIONS = {"period_s": 300, "probe_timeout": 60, "probe_prompt": "Say OK.", "probe_max_tokens": 4, "confirm_runs": 2,
           "log_lines": 40, "command_timeout": 30, "incident_dir": "/var/log/sparkops/incidents",
           "state_file": "/var/lib/sparkops/watchdog.json", "state_dir": "/var/log/sparkops",
           "key_file": "", "restart_unit": "", "restart_max": 2}


def test_the_head_probes_its_api_and_a_ray_worker_watches_its_rank_only():
    head = _monitoring.watchdog_config(plan("ray"), "spark-0", OPTIONS)
    assert head["probe"] == {"url": "http://127.0.0.1:8000/v1/chat/completions", "model": plan()["served_model_name"],
                             "prompt": "Say OK.", "max_tokens": 4, "timeout": 60, "key_file": ""}
    assert head["serves"] and head["executor"] == "ray" and head["world"] == 4 and head["restart"] is None
    worker = _monitoring.watchdog_config(plan("ray"), "spark-3", OPTIONS)
    assert worker["probe"] is None and not worker["serves"] and worker["container"] == head["container"]
    # the rows that name incidents: kernel patterns and watch findings, not the engine log's alone
    ids = {row["id"] for row in worker["rows"]}
    assert {"KF-27", "KF-43", "KF-108", "KF-109", "KF-110", "KF-111", "KF-112"} <= ids and "KF-2" not in ids


def test_every_mp_node_serves_and_a_restart_is_the_heads_only():
    options = dict(OPTIONS, restart_unit="sparkops-vllm-serve.service")
    follower = _monitoring.watchdog_config(plan("mp"), "spark-2", options)
    assert follower["serves"] and follower["restart"] is None
    head = _monitoring.watchdog_config(plan("mp"), "spark-0", options)
    assert head["restart"] == {"unit": "sparkops-vllm-serve.service", "max": 2}


def test_an_api_bound_to_every_address_is_probed_on_loopback_and_a_stranger_is_named():
    bound = plan("ray", {"sparkops_api_host": "0.0.0.0", "sparkops_api_port": 8443})
    assert _monitoring.watchdog_config(bound, "spark-0", OPTIONS)["probe"]["url"] == (
        "http://127.0.0.1:8443/v1/chat/completions")
    with pytest.raises(_monitoring.TargetsError, match="dgx9 is not a node of the plan"):
        _monitoring.watchdog_config(plan(), "dgx9", OPTIONS)
