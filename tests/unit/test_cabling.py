"""Rail cabling from ARP answers: arping parser on captured output, the diagnosis, the module."""

from __future__ import annotations

import pytest
from ansible.module_utils import basic

from ansible_collections.sparkops.cluster.plugins.module_utils import _cabling
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from ansible_collections.sparkops.cluster.plugins.modules import rail_cabling
from conftest import fixture

A1, B1 = "02:00:00:00:00:a1", "02:00:00:00:00:b1"
# the peer of the captures: rail1 port a1, rail2 port b1 (see line 1 of the fixtures)
PEER = {"host": "peer", "rails": [
    {"name": "rail1", "netdev": "a1", "address": "192.168.100.11", "mac": A1},
    {"name": "rail2", "netdev": "b1", "address": "192.168.101.11", "mac": B1}]}
RAILS = [{"name": "rail1", "netdev": "br0", "mac": "02:00:00:00:00:10"},
         {"name": "rail2", "netdev": "br1", "mac": "02:00:00:00:00:11"}]


def test_parse_one_reply():
    r = _cabling.parse_arping(fixture("arping_iputils_20221126_first_reply_only.txt"))
    assert r == {"target": "192.168.100.11", "source": "192.168.100.10", "netdev": "br0", "macs": [B1], "received": 1}


def test_parse_both_ports_answer_in_order():
    r = _cabling.parse_arping(fixture("arping_iputils_20221126_two_ports_answer.txt"))
    assert r["macs"] == [B1, A1] and r["received"] == 2


def test_parse_no_reply():
    r = _cabling.parse_arping(fixture("arping_iputils_20221126_no_reply.txt"))
    assert r["macs"] == [] and r["received"] == 0 and r["target"] == "192.168.100.99"


def test_parse_request_from_the_target_counts():
    # two nodes asking each other at once (the module runs on every node together)
    r = _cabling.parse_arping(fixture("arping_iputils_20221126_sim_reply_and_request.txt"))
    assert r["macs"] == ["02:42:c0:a8:64:0a"] and r["received"] == 2 and r["netdev"] == "enp1s0f1np1"


def test_parse_refuses_other_output():
    with pytest.raises(ToolOutputError, match="iputils-arping"):
        _cabling.parse_arping("60 bytes from 02:00:00:00:00:a1 (192.168.100.11): index=0 time=1.2 msec\n")
    text = fixture("arping_iputils_20221126_one_of_two_replies.txt").replace("Received 1 response", "Received 2 response")
    with pytest.raises(ToolOutputError, match="'Received 2 response.s.' but 1 reply line"):
        _cabling.parse_arping(text)


def _seen(*pairs):
    """{(netdev, address): macs} from (netdev, fixture name) pairs."""
    out = {}
    for netdev, name in pairs:
        parsed = _cabling.parse_arping(fixture(name))
        assert parsed["netdev"] == netdev
        out[(netdev, parsed["target"])] = parsed["macs"]
    return out


def test_first_probes_ask_the_same_rail_for_as_many_answers_as_ports():
    assert _cabling.first_probes(RAILS, [PEER]) == [
        {"netdev": "br0", "address": "192.168.100.11", "count": 2},
        {"netdev": "br1", "address": "192.168.101.11", "count": 2}]


def test_crossed_cable_is_named_on_both_rails():
    # captured on a crossed cable: the peer's rail2 port answers on our rail1 wire and the other way round
    seen = _seen(("br0", "arping_iputils_20221126_crossed_rail1.txt"), ("br1", "arping_iputils_20221126_crossed_rail2.txt"))
    assert _cabling.second_probes(RAILS, [PEER], seen) == [
        {"netdev": "br0", "address": "192.168.101.11", "count": 2},
        {"netdev": "br1", "address": "192.168.100.11", "count": 2}]
    links, failures = _cabling.diagnose("spark-a", RAILS, [PEER], seen)
    assert [(ln["rail"], ln["state"], ln["peer_rail"]) for ln in links] == [("rail1", "crossed", "rail2"), ("rail2", "crossed", "rail1")]
    assert failures == ["spark-a rail1 (br0) is cabled to peer's rail2 port (b1, 02:00:00:00:00:b1), not to its rail1 port (a1)",
                        "spark-a rail2 (br1) is cabled to peer's rail1 port (a1, 02:00:00:00:00:a1), not to its rail2 port (b1)",
                        "Crossed cables: cable the same port on both nodes (KF-16, NVIDIA connect-two-sparks guide)"]


def test_both_ports_answering_on_one_wire_is_fine():
    # ARP flux on a flat switch: the wrong port answered first, the right one too
    seen = _seen(("br0", "arping_iputils_20221126_two_ports_answer.txt"))
    links, failures = _cabling.diagnose("spark-a", RAILS[:1], [PEER], seen)
    assert links[0]["state"] == "ok" and failures == []
    assert _cabling.second_probes(RAILS[:1], [PEER], seen) == []


def test_first_answer_only_would_have_called_it_crossed():
    # why count = number of the peer's rails: with `-c 1` only B1 (rail2's port) was seen
    seen = _seen(("br0", "arping_iputils_20221126_first_reply_only.txt"))
    assert _cabling.diagnose("spark-a", RAILS[:1], [PEER], seen)[0][0]["state"] == "crossed"


def test_no_answer_and_conflict():
    seen = _seen(("br0", "arping_iputils_20221126_no_reply.txt"))
    lonely = {"host": "peer", "rails": [{"name": "rail1", "netdev": "a1", "address": "192.168.100.99", "mac": A1}]}
    links, failures = _cabling.diagnose("spark-a", RAILS[:1], [lonely], seen)
    assert links[0]["state"] == "no_answer"
    assert failures == ["spark-a rail1 (br0): no port of peer answers ARP on this rail (asked for 192.168.100.99): "
                        "no link, a cable in another node, or a switch port in another VLAN"]
    # the peer's address answered by a MAC that is none of its ports
    stranger = {"host": "peer", "rails": [
        {"name": "rail1", "netdev": "x1", "address": "192.168.100.11", "mac": "02:00:00:00:00:c1"}]}
    seen = _seen(("br0", "arping_iputils_20221126_one_of_two_replies.txt"))
    links, failures = _cabling.diagnose("spark-a", RAILS[:1], [stranger], seen)
    assert links[0]["state"] == "conflict" and "answered by 02:00:00:00:00:a1, which is no port of peer" in failures[0]


def test_the_node_crossed_with_every_peer_is_the_swapped_one():
    seen = _seen(("br0", "arping_iputils_20221126_crossed_rail1.txt"), ("br1", "arping_iputils_20221126_crossed_rail2.txt"),
                 ("br0", "arping_iputils_20221126_crossed_rail1_other_address.txt"),
                 ("br1", "arping_iputils_20221126_crossed_rail2_other_address.txt"))
    # one peer: both ends are suspects, no verdict on this node
    assert len(_cabling.diagnose("spark-a", RAILS, [PEER], seen)[1]) == 3
    # the same answers from a second peer (same addresses, other name): every link crossed
    twin = dict(PEER, host="peer2")
    links, failures = _cabling.diagnose("spark-a", RAILS, [PEER, twin], seen)
    assert len(links) == 4 and failures[0].startswith("spark-a: every rail reaches every peer on another rail: "
                                                      "this node's cables are swapped")
    # one link right: no verdict
    seen[("br0", "192.168.100.11")] = [B1, A1]
    assert not any("this node's cables are swapped" in f for f in _cabling.diagnose("spark-a", RAILS, [PEER, twin], seen)[1])


@pytest.fixture
def module_env(monkeypatch, tmp_path, commands):
    """sysfs with this node's two rails, arping served from captured output by argv."""
    for netdev, mac in (("br0", "02:00:00:00:00:10"), ("br1", "02:00:00:00:00:11")):
        (tmp_path / "class" / "net" / netdev).mkdir(parents=True)
        (tmp_path / "class" / "net" / netdev / "address").write_text(mac + "\n")
    table, calls = commands
    table[("/usr/sbin/arping", "-V")] = (0, "arping from iputils 20221126\n", "")
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: "/usr/sbin/" + name)
    return tmp_path, table, calls


def _argv(netdev, address):
    return ("/usr/sbin/arping", "-c", "2", "-w", "1", "-I", netdev, address)


def test_module_names_a_crossed_cable_in_check_mode(run_module, module_env):
    root, table, calls = module_env
    table[_argv("br0", "192.168.100.11")] = (1, fixture("arping_iputils_20221126_crossed_rail1.txt"), "")
    table[_argv("br1", "192.168.101.11")] = (1, fixture("arping_iputils_20221126_crossed_rail2.txt"), "")
    table[_argv("br0", "192.168.101.11")] = (1, fixture("arping_iputils_20221126_crossed_rail1_other_address.txt"), "")
    table[_argv("br1", "192.168.100.11")] = (1, fixture("arping_iputils_20221126_crossed_rail2_other_address.txt"), "")
    args = {"host": "spark-a", "rails": [{"name": r["name"], "netdev": r["netdev"]} for r in RAILS], "peers": [PEER],
            "sysfs_root": str(root)}
    failed, r = run_module(rail_cabling, args, check_mode=True)
    assert failed and r["changed"] is False and r["probes"] == 4
    assert [ln["state"] for ln in r["links"]] == ["crossed", "crossed"]
    assert r["msg"].startswith("spark-a rail1 (br0) is cabled to peer's rail2 port (b1")
    assert r["macs"] == {"br0": "02:00:00:00:00:10", "br1": "02:00:00:00:00:11"}
    failed, r = run_module(rail_cabling, dict(args, fail_on_miscabling=False))
    assert not failed and len(r["failures"]) == 3


def test_module_ok_asks_once_per_rail_and_peer(run_module, module_env):
    root, table, calls = module_env
    table[_argv("br0", "192.168.100.11")] = (0, fixture("arping_iputils_20221126_two_ports_answer.txt"), "")
    args = {"host": "spark-a", "rails": [{"name": "rail1", "netdev": "br0"}], "peers": [PEER], "sysfs_root": str(root)}
    failed, r = run_module(rail_cabling, args)
    assert not failed and r["failures"] == [] and r["probes"] == 1
    assert calls == [["/usr/sbin/arping", "-V"], list(_argv("br0", "192.168.100.11"))]


def test_module_refuses_bad_input_before_any_probe(run_module, module_env):
    root, table, calls = module_env
    failed, r = run_module(rail_cabling, {"rails": [{"name": "rail1", "netdev": "enp9s0"}], "peers": [PEER],
                                          "sysfs_root": str(root)})
    assert failed and r["msg"] == "rails: rail1 (enp9s0) is not an interface of this node"
    failed, r = run_module(rail_cabling, {"rails": [{"name": "rail3", "netdev": "br0"}], "peers": [PEER],
                                          "sysfs_root": str(root)})
    assert failed and r["msg"] == "peers: peer has no rail rail3"
    table[("/usr/sbin/arping", "-V")] = (0, "ARPing 2.21, by Thomas Habets <thomas@habets.se>\n", "")
    failed, r = run_module(rail_cabling, {"rails": [{"name": "rail1", "netdev": "br0"}], "peers": [PEER],
                                          "sysfs_root": str(root)})
    assert failed and "install the package iputils-arping" in r["msg"]
    assert calls == [["/usr/sbin/arping", "-V"]]


def test_module_arping_error_is_reported(run_module, module_env):
    root, table, calls = module_env
    table[_argv("br0", "192.168.100.11")] = (2, "", 'Interface "br0" is down\n')
    failed, r = run_module(rail_cabling, {"rails": [{"name": "rail1", "netdev": "br0"}], "peers": [PEER],
                                          "sysfs_root": str(root)})
    assert failed and r["msg"].endswith('-I br0 192.168.100.11 failed (rc=2): Interface "br0" is down')
