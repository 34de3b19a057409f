"""The port table (data/ports.yml) and what the firewall makes of it (plugin_utils/_ports.py,
filter firewall_plan): rows checked, the management network's ports per node and condition, the
rails' sources from every node's rail plan, and docs/architecture.md showing the table as it is."""

from __future__ import annotations

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.sparkops.cluster.plugins.filter.ports import _firewall_plan
from ansible_collections.sparkops.cluster.plugins.plugin_utils import _ports
from conftest import REPO

ROWS = _ports.check(yaml.safe_load((REPO / "data" / "ports.yml").read_text()))
RAILS = [{"name": "rail1", "netdev": "enp1s0f1np1", "rdma_device": "rocep1s0f1", "subnet": "192.168.100.0/24"},
         {"name": "rail2", "netdev": "enP2p1s0f1np1", "rdma_device": "roceP2p1s0f1", "subnet": "192.168.101.0/24"}]


def hostvars(n=4, **common):
    return {"spark-%d" % i: dict({"sparkops_rails": RAILS, "sparkops_node_index": i}, **common) for i in range(n)}


def test_only_ssh_on_the_management_network_by_default():
    hv = hostvars()
    hosts = list(hv)
    for host in hosts:
        plan = _firewall_plan(hv, host, hosts)
        assert plan["management_tcp"] == [22]
        assert plan["rails"] == ["enp1s0f1np1", "enP2p1s0f1np1"]
        assert plan["rail_sources"] == ["192.168.100.10", "192.168.100.11", "192.168.100.12", "192.168.100.13",
                                        "192.168.101.10", "192.168.101.11", "192.168.101.12", "192.168.101.13"]


def test_ssh_on_the_port_ansible_reaches_the_node_at():
    hv = hostvars(ansible_port=2222, sparkops_api_host="0.0.0.0")  # a public API is refused by the preflight (SEC-2)
    assert _firewall_plan(hv, "spark-0", list(hv))["management_tcp"] == [2222]


def test_loopback_by_address():
    for loopback in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"):
        assert _ports.is_loopback(loopback), loopback
    for other in ("0.0.0.0", "::", "10.0.0.10", "127.example.com", "", None):
        assert not _ports.is_loopback(other), other


def test_extra_rail_sources_and_a_host_outside_the_cluster():
    hv = hostvars(2)
    plan = _firewall_plan(hv, "spark-1", list(hv), rail_sources=["192.168.100.66", "10.9.0.0/16"])
    assert "192.168.100.66/32" in plan["rail_sources"] and "10.9.0.0/16" in plan["rail_sources"]
    with pytest.raises(AnsibleFilterError, match="firewall_rail_sources: 'not-an-address'"):
        _firewall_plan(hv, "spark-1", list(hv), rail_sources=["not-an-address"])
    with pytest.raises(AnsibleFilterError, match="spark-9 is not one of the nodes"):
        _firewall_plan(hv, "spark-9", list(hv))


def test_a_single_host_without_rails_has_no_rail_rules():
    hv = {"h200x8": {}}
    assert _firewall_plan(hv, "h200x8", ["h200x8"]) == {"management_tcp": [22], "rails": [], "rail_sources": []}


@pytest.mark.parametrize("row, words", [
    ({"id": "x", "owner": "o", "port": "22a", "network": "rails", "nodes": "all", "when": "always", "why": "w"},
     "port must be a number"),
    ({"id": "x", "owner": "o", "port": 22, "network": "lan", "nodes": "all", "when": "always", "why": "w"},
     "network must be one of"),
    ({"id": "x", "owner": "o", "port": 22, "network": "rails", "nodes": "all", "when": "sometimes", "why": "w"},
     "when must be one of"),
    ({"id": "x", "owner": "o", "port": 22, "network": "rails", "nodes": "all", "when": "always"}, "lacks why"),
])
def test_a_broken_row_is_named(row, words):
    with pytest.raises(_ports.PortTableError, match=words):
        _ports.check([row])


def test_architecture_doc_shows_the_table_as_it_is():
    doc = (REPO / "docs" / "architecture.md").read_text()
    assert _ports.markdown(ROWS) in doc, "docs/architecture.md: paste _ports.markdown(rows) in 'Ports and networks'"


def test_every_ports_variable_the_table_names_exists():
    defaults = {}
    for path in (REPO / "roles").glob("*/defaults/main.yml"):
        defaults.update(yaml.safe_load(path.read_text()) or {})
    from ansible_collections.sparkops.cluster.plugins.plugin_utils._settings import SETTINGS
    for row in ROWS:
        var = row.get("var")
        if var and var != "ansible_port":
            assert var.split(".")[0] in defaults or var in SETTINGS, (row["id"], var)
