"""Rails from the inventory (module_utils/_fabric) and rails as a node's facts show them."""

from __future__ import annotations

import json

import pytest
import yaml

from ansible_collections.sparkops.cluster.plugins.module_utils import _fabric
from conftest import REPO, fixture

HV = {"sparkops_rails": [
    {"name": "rail1", "netdev": "enp1s0f1np1", "rdma_device": "rocep1s0f1", "subnet": "192.168.100.0/24"},
    {"name": "rail2", "netdev": "enP2p1s0f1np1", "rdma_device": "roceP2p1s0f1", "subnet": "192.168.101.0/24"}],
    "sparkops_node_index": 0}


def facts(name):
    """A captured setup result's ansible_facts (keys prefixed ansible_, as registered)."""
    return json.loads(fixture(name))


def test_rail_plan_carries_the_mtu():
    rails = _fabric.rail_plan("n", HV)
    assert [(r["address"], r["mtu"]) for r in rails] == [("192.168.100.10", 9000), ("192.168.101.10", 9000)]
    assert _fabric.rail_plan("n", dict(HV, sparkops_rail_mtu="9000"))[0]["mtu"] == 9000  # quoted in YAML


@pytest.mark.parametrize("mtu", ["jumbo", 0, 65536, True, 9000.5])
def test_rail_plan_refuses_an_mtu_that_is_none(mtu):
    with pytest.raises(_fabric.FabricError, match="n: sparkops_rail_mtu must be a whole number of bytes between 1280 and 9216"):
        _fabric.rail_plan("n", dict(HV, sparkops_rail_mtu=mtu))


def test_rail_without_ipv4_is_named_not_a_crash():
    """The state that crashed the netplan role: a port up, no IPv4 yet, MTU 1500 (captured)."""
    state = _fabric.rail_state("spark-delta", _fabric.rail_plan("spark-delta", HV),
                               facts("ansible_setup_network_rail_without_ipv4.txt"))
    assert state["differs"] is True
    rail1, rail2 = state["rails"]
    assert (rail1["present"], rail1["up"], rail1["mtu"], rail1["addresses"]) == (True, True, 1500, [])
    assert rail1["problems"] == [
        "spark-delta: rail rail1 (enp1s0f1np1) has MTU 1500, not 9000: apply the netplan role (setup_hosts.yml) on this node",
        "spark-delta: rail rail1 (enp1s0f1np1) has no IPv4 address, not 192.168.100.10/24: networkd has not configured "
        "it yet or the netplan file is not applied; apply the netplan role, then see `networkctl status enp1s0f1np1`"]
    assert rail2["problems"] == [] and rail2["addresses"] == ["192.168.101.10"]


def test_rail_down_and_wrong_address_are_named():
    hv = dict(HV, sparkops_rail_addresses={"rail2": "192.168.101.20"})
    state = _fabric.rail_state("spark-delta", _fabric.rail_plan("spark-delta", hv),
                               facts("ansible_setup_network_rail_no_carrier.txt"))
    rail1, rail2 = state["rails"]
    assert rail1["up"] is False and rail1["problems"][0] == (
        "spark-delta: rail rail1 (enp1s0f1np1) is down (no carrier): check its cable, the same port on both nodes, "
        "and `ip link show enp1s0f1np1`")
    assert rail2["problems"] == ["spark-delta: rail rail2 (enP2p1s0f1np1) has address 192.168.101.10, not "
                                 "192.168.101.20/24: another configuration owns this port; remove it, then apply the "
                                 "netplan role"]


def test_rail_that_is_no_interface():
    hv = dict(HV, sparkops_rails=[dict(HV["sparkops_rails"][0], netdev="enp9s0f9np9")])
    state = _fabric.rail_state("n", _fabric.rail_plan("n", hv), facts("ansible_setup_network_rail_without_ipv4.txt"))
    assert state["rails"][0]["present"] is False and state["differs"] is True
    assert state["problems"][0].startswith("n: rail rail1 (enp9s0f9np9) is not an interface of this node (it has "
                                           "enP2p1s0f1np1, enp1s0f1np1, lo)")


def test_unprefixed_facts_as_in_ansible_facts():
    raw = facts("ansible_setup_network_rail_without_ipv4.txt")
    plain = {k[len("ansible_"):]: v for k, v in raw.items()}
    assert _fabric.rail_state("n", _fabric.rail_plan("n", HV), plain) == \
        _fabric.rail_state("n", _fabric.rail_plan("n", HV), raw)


def test_as_planned_is_quiet():
    raw = facts("ansible_setup_network_rail_without_ipv4.txt")
    raw["ansible_enp1s0f1np1"] = dict(raw["ansible_enp1s0f1np1"], mtu=9000,
                                      ipv4={"address": "192.168.100.10", "prefix": "24"})
    state = _fabric.rail_state("n", _fabric.rail_plan("n", HV), raw)
    assert state["problems"] == [] and state["differs"] is False


def _client(avg1, avg2, failures=()):
    return {"rails": [{"name": "rail1", "average_gbps": avg1}, {"name": "rail2", "average_gbps": avg2}],
            "aggregate_gbps": round(avg1 + avg2, 3), "line_rate_share": round((avg1 + avg2) / 200, 4),
            "failures": list(failures)}


def test_fabric_report_names_the_links_below_threshold():
    nodes = [{"name": "a", "peer": "b", "links": [{"name": "rail1", "netdev": "enp1s0f1np1", "speed": 200000, "mtu": 9000}],
              "client": _client(92.6, 97.3)},
             {"name": "b", "peer": "a", "links": [{"name": "rail1", "netdev": "enp1s0f1np1", "speed": -1, "mtu": 9000}],
              "client": _client(25.0, 97.0, ["rail rail1: 25.00 Gb/s is below min_gbps 90.00"])}]
    allreduce = {"backend": "nccl", "nodes": 2, "world_size": 2, "size_bytes": 2 ** 30, "busbw_gbs": 12.1, "correct": True}
    report = _fabric.fabric_report(nodes, allreduce, 21.875)
    assert report["lines"][:2] == ["a rail1 enp1s0f1np1: link 200000 Mb/s, MTU 9000",
                                   "b rail1 enp1s0f1np1: link unknown Mb/s, MTU 9000"]
    assert report["lines"][2] == "a -> b: rail1 92.6 Gb/s, rail2 97.3 Gb/s, aggregate 189.9 Gb/s (95.0% of line rate)"
    assert report["below"] == ["b -> a: rail rail1: 25.00 Gb/s is below min_gbps 90.00",
                               "all-reduce bus bandwidth 12.100 GB/s is below 21.875 GB/s"]
    assert report["lines"][-1].startswith("below threshold: b -> a: rail rail1")


def test_the_gb10_threshold_is_the_all_reduce_and_passes_the_healthy_pairs_reported():
    """The check runs an all-reduce: its line names the collective, the threshold and the public
    measurement of the same collective; the healthy figures reported pass, the degraded fail."""
    gb10 = yaml.safe_load((REPO / "data" / "hardware.yml").read_text())["gb10"]["fabric"]
    line = _fabric.fabric_report([], {"backend": "nccl", "nodes": 2, "world_size": 2, "size_bytes": 2 ** 30,
                                      "busbw_gbs": 23.74, "correct": True}, gb10["min_busbw_gbs"],
                                 gb10["busbw_reference"])["lines"][0]
    assert "bus bandwidth 23.74 GB/s, sum correct; threshold 18.0 GB/s (all-reduce); reference: 23.74 GB/s" in line
    assert "NVIDIA/dgx-spark-playbooks PR#103" in line
    # NVIDIA/dgx-spark-playbooks PR#103 (all_reduce 23.74), #25 (all_gather 20.95),
    # MiaAI-Lab/GLM-5.3-Flash-EXL3-2x-DGX-Sparks#118 (all_gather 20.4); #102: about 3 GB/s
    for healthy in (23.74, 20.95, 20.4):
        assert healthy >= gb10["min_busbw_gbs"]
    assert 3.04 < gb10["min_busbw_gbs"]


def test_fabric_report_says_why_a_rail_is_below():
    """NVIDIA/dgx-spark-playbooks PR#108: a ConnectX-7 up at 200G and PCIe Gen5 x4 that carries
    about 13 Gb/s until a power cycle (KF-38); a BIOS older than 2026-04 running the second
    half of the port at x2 (KF-36)."""
    links = [{"name": "rail1", "netdev": "enp1s0f1np1", "speed": 200000, "mtu": 9000},
             {"name": "rail2", "netdev": "enP2p1s0f1np1", "speed": 200000, "mtu": 9000}]
    ports = [{"netdev": "enp1s0f1np1", "link": {"pcie_width": 4, "pcie_max_width": 4}},
             {"netdev": "enP2p1s0f1np1", "link": {"pcie_width": 2, "pcie_max_width": 4}}]
    failures = ["rail rail1: 13.00 Gb/s is below min_gbps 90.00", "rail rail2: 46.00 Gb/s is below min_gbps 90.00"]
    report = _fabric.fabric_report([{"name": "spark-2", "peer": "spark-1", "links": links, "ports": ports,
                                     "client": _client(13.0, 46.0, failures)}])
    assert ("spark-2: rail rail1 (enp1s0f1np1) carried 13.0 Gb/s on a 200000 Mb/s link at PCIe x4: a degraded start; "
            "power-cycle spark-2 (a full power off, not a reboot) and run validate_fabric again (KF-38)") in report["below"]
    assert ("spark-2: rail rail2 (enP2p1s0f1np1) runs PCIe x2 of its slot's x4: update the BIOS of spark-2 (2026-04 or "
            "later), then power-cycle it (KF-36)") in report["below"]
    # a rail that is merely below its threshold (a quarter of the link or more) gets no diagnosis
    slow = _fabric.fabric_report([{"name": "spark-2", "peer": "spark-1", "links": links, "ports": ports[:1],
                                   "client": _client(60.0, 92.0, failures[:1])}])
    assert not [b for b in slow["below"] if "KF-3" in b]
    # nor one that passed its threshold
    ok = _fabric.fabric_report([{"name": "spark-2", "peer": "spark-1", "links": links, "ports": ports,
                                 "client": _client(92.6, 97.3)}])
    assert ok["below"] == []


def test_fabric_report_all_good_and_a_wrong_sum():
    ok = _fabric.fabric_report([{"name": "a", "peer": "b", "links": [], "client": _client(100, 100)}],
                               {"busbw_gbs": 23.0, "correct": True, "world_size": 4}, 21.875)
    assert ok["below"] == [] and ok["lines"][-1] == "every link meets its threshold"
    wrong = _fabric.fabric_report([], {"busbw_gbs": 23.0, "correct": False, "world_size": 4}, 21.875)
    assert wrong["below"] == ["all-reduce returned a wrong sum"]


def test_allreduce_results_from_two_h200_read_by_the_report():
    """The bench's JSON lines as it printed them on two H200 (NVLink within one host):
    one rank per GPU, as one node of 2 GPUs and as 2 nodes of 1 GPU, with correct sums."""
    results = [json.loads(line) for line in fixture("allreduce_bench_h200x2.txt").splitlines() if line.startswith("{")]
    assert [(r["nodes"], r["gpus_per_node"], r["world_size"], r["correct"]) for r in results] == [
        (1, 2, 2, True), (2, 1, 2, True), (1, 2, 2, True), (1, 2, 2, True)]
    assert all(r["busbw_gbs"] > 300 for r in results)  # measured 326-343 GB/s
    report = _fabric.fabric_report([], results[0], 250)
    assert report["below"] == [] and report["lines"][0].startswith("all-reduce: 2 ranks (1 node(s)), nccl, 1024 MiB")
