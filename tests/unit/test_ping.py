"""The jumbo-frame ping matrix (plugins/module_utils/_ping.py, plugins/modules/rail_ping.py):
iputils ping output captured here (tests/fixtures), and the module with the real ping on
the loopback interface."""

from __future__ import annotations

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils import _ping
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from ansible_collections.sparkops.cluster.plugins.modules import rail_ping
from conftest import fixture

RAILS = [{"name": "rail1", "netdev": "enp1s0f1np1", "mtu": 9000}, {"name": "rail2", "netdev": "enP2p1s0f1np1", "mtu": 9000}]
PEERS = [{"host": "spark-beta", "rails": [{"name": "rail1", "address": "192.168.100.11"},
                                          {"name": "rail2", "address": "192.168.101.11"}]},
         {"host": "spark-gamma", "rails": [{"name": "rail1", "address": "192.168.100.12"},
                                           {"name": "rail2", "address": "192.168.101.12"}]}]


@pytest.mark.parametrize("name, parsed", [
    ("ping_iputils_20221126_jumbo_reply.txt", {"sent": 1, "received": 1, "local_mtu": None, "error": None}),
    ("ping_iputils_20221126_jumbo_no_reply.txt", {"sent": 1, "received": 0, "local_mtu": None, "error": None}),
    ("ping_iputils_20221126_local_message_too_long.txt", {"sent": 1, "received": 0, "local_mtu": 9000,
                                                          "error": None}),
    ("ping_iputils_20221126_no_such_device.txt", {"sent": None, "received": None, "local_mtu": None,
                                                  "error": "SO_BINDTODEVICE nosuch0: No such device"}),
])
def test_parse_captured_ping_output(name, parsed):
    assert _ping.parse(fixture(name)) == parsed


def test_output_that_is_no_pings_is_named():
    with pytest.raises(ToolOutputError, match="cannot parse ping output"):
        _ping.parse("Usage: something else\n")
    with pytest.raises(ToolOutputError):
        _ping.parse("")


def test_one_probe_per_rail_and_peer_filling_the_mtu():
    plan = _ping.probes(RAILS, PEERS)
    assert [(p["rail"], p["peer"], p["address"], p["size"]) for p in plan] == [
        ("rail1", "spark-beta", "192.168.100.11", 8972), ("rail1", "spark-gamma", "192.168.100.12", 8972),
        ("rail2", "spark-beta", "192.168.101.11", 8972), ("rail2", "spark-gamma", "192.168.101.12", 8972)]
    with pytest.raises(ValueError, match="spark-beta has no rail rail2"):
        _ping.probes(RAILS, [{"host": "spark-beta", "rails": [{"name": "rail1", "address": "192.168.100.11"}]}])


def test_the_report_names_the_rail_the_peers_and_why():
    plan = _ping.probes(RAILS, PEERS)
    answers = {("rail1", "spark-beta"): "ping_iputils_20221126_jumbo_reply.txt",
               ("rail1", "spark-gamma"): "ping_iputils_20221126_jumbo_no_reply.txt",
               ("rail2", "spark-beta"): "ping_iputils_20221126_local_message_too_long.txt",
               ("rail2", "spark-gamma"): "ping_iputils_20221126_no_such_device.txt"}
    links = [_ping.verdict(p, _ping.parse(fixture(answers[(p["rail"], p["peer"])]))) for p in plan]
    assert [link["ok"] for link in links] == [True, False, False, False]
    assert _ping.report("spark-alpha", links) == [
        "spark-alpha: no unfragmented 8972-byte ping on rail1 to spark-gamma (192.168.100.12: no reply). Check MTU "
        "9000 at both ends (and on the switch ports between them) and the cabling.",
        "spark-alpha: no unfragmented 8972-byte ping on rail2 to spark-beta (192.168.101.11: this node would not "
        "send it unfragmented: its enP2p1s0f1np1 has MTU 9000); spark-gamma (192.168.101.12: SO_BINDTODEVICE nosuch0: "
        "No such device). Check MTU 9000 at both ends (and on the switch ports between them) and the cabling."]
    assert _ping.report("spark-alpha", links[:1]) == []


# --- the module, with the real ping on lo (MTU 65536): 127.0.0.1 answers, 192.0.2.1 (TEST-NET-1) does not ---
LO = [{"name": "rail1", "netdev": "lo", "mtu": 9000}]


def test_module_pings_every_peer_at_once(run_module):
    # eight at once: one packet each lost a first reply 1 time in 20 here; three packets, none in 160 runs
    peers = [{"host": "self-%d" % i, "rails": [{"name": "rail1", "address": "127.0.0.%d" % i}]} for i in range(1, 9)]
    failed, r = run_module(rail_ping, {"rails": LO, "peers": peers, "host": "here", "timeout": 1})
    assert not failed and not r["changed"] and r["failures"] == []
    expected = [("self-%d" % i, 8972, True) for i in range(1, 9)]
    assert [(link["peer"], link["size"], link["ok"]) for link in r["links"]] == expected


def test_module_names_the_peer_that_does_not_answer(run_module):
    peers = [{"host": "near", "rails": [{"name": "rail1", "address": "127.0.0.1"}]},
             {"host": "gone", "rails": [{"name": "rail1", "address": "192.0.2.1"}]}]
    failed, r = run_module(rail_ping, {"rails": LO, "peers": peers, "host": "here", "timeout": 1})
    assert failed and r["msg"].startswith("here: no unfragmented 8972-byte ping on rail1 to gone (192.0.2.1: no reply)")
    failed, r = run_module(rail_ping, {"rails": LO, "peers": peers, "host": "here", "timeout": 1, "fail_on_loss": False})
    assert not failed and len(r["failures"]) == 1 and [link["ok"] for link in r["links"]] == [True, False]


def test_module_takes_the_peers_as_rail_peers_returns_them(run_module):
    # the same value as rail_cabling's peers (netdev and mac too): no filter in between, whose
    # cost grew with the square of the nodes (ansible.utils.keep_keys, 62 ms a call for 7 peers)
    peers = [{"host": "near", "rails": [{"name": "rail1", "netdev": "enp1s0f1np1", "address": "127.0.0.1",
                                         "mac": "4c:bb:47:2c:f1:05"}]}]
    failed, r = run_module(rail_ping, {"rails": LO, "peers": peers, "host": "here", "timeout": 1})
    assert not failed and [(link["peer"], link["ok"]) for link in r["links"]] == [("near", True)]


def test_module_refuses_a_rail_without_the_peers_rail_and_a_bad_mtu(run_module):
    failed, r = run_module(rail_ping, {"rails": LO + [{"name": "rail2", "netdev": "lo", "mtu": 9000}],
                                       "peers": [{"host": "near", "rails": [{"name": "rail1", "address": "127.0.0.1"}]}]})
    assert failed and r["msg"] == "peers: near has no rail rail2"
    failed, r = run_module(rail_ping, {"rails": [dict(LO[0], mtu=100)], "peers": []})
    assert failed and "mtu 100 is not an IPv4 MTU" in r["msg"]
