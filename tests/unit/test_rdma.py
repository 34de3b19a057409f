from __future__ import annotations

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils import _rdma
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from conftest import fixture


def test_dgx_spark_two_up_two_down():
    ports = _rdma.parse_ibdev2netdev(fixture("ibdev2netdev_dgxspark_spark1_two_up_two_down.txt"))
    assert [(p["device"], p["port"], p["netdev"], p["state"]) for p in ports] == [
        ("rocep1s0f0", 1, "enp1s0f0np0", "Up"),
        ("rocep1s0f1", 1, "enp1s0f1np1", "Down"),
        ("roceP2p1s0f0", 1, "enP2p1s0f0np0", "Up"),
        ("roceP2p1s0f1", 1, "enP2p1s0f1np1", "Down"),
    ]
    s = _rdma.summarize(ports)
    assert s["up_devices"] == ["rocep1s0f0", "roceP2p1s0f0"]
    assert s["nccl_ib_hca"] == "=rocep1s0f0:1,roceP2p1s0f0:1"
    assert s["nccl_socket_ifname"] == "=enp1s0f0np0,enP2p1s0f0np0"
    assert s["gloo_socket_ifname"] == "enp1s0f0np0"
    assert s["ucx_net_devices"] == "rocep1s0f0:1,roceP2p1s0f0:1"
    assert s["half_ports"] == []  # both halves of f0 up, both of f1 down


def test_verbose_form_mixed_active_and_down():
    ports = _rdma.parse_ibdev2netdev(fixture("ibdev2netdev_v_connectx4_sriov_mixed.txt"))
    assert len(ports) == 6
    first, vf = ports[0], ports[2]
    assert first == {
        "device": "mlx5_0", "port": 1, "netdev": "enp2s0f0", "state": "Up", "up": True,
        "pci": "0000:02:00.0", "part_id": "MT4115", "board_id": "MT1523X04353",
        "description": "CX456A - ConnectX-4 QSFP", "firmware": "12.23.1020", "port_state": "ACTIVE",
    }
    assert vf["port_state"] == "DOWN" and vf["board_id"] is None and vf["description"] is None
    assert vf["state"] == "Down" and not vf["up"]
    assert _rdma.summarize(ports)["up_netdevs"] == ["enp2s0f0", "enp2s0f1"]


def test_plain_form_all_up():
    ports = _rdma.parse_ibdev2netdev(fixture("ibdev2netdev_sriov_plain_two_up.txt"))
    assert _rdma.summarize(ports)["nccl_ib_hca"] == "=mlx5_0:1,mlx5_1:1"


def test_one_half_of_a_spark_port_down_is_warned():
    text = fixture("ibdev2netdev_dgxspark_spark1_two_up_two_down.txt").replace(
        "roceP2p1s0f0 port 1 ==> enP2p1s0f0np0 (Up)", "roceP2p1s0f0 port 1 ==> enP2p1s0f0np0 (Down)")
    warnings = _rdma.summarize(_rdma.parse_ibdev2netdev(text))["half_ports"]
    assert warnings == [
        "only rocep1s0f0 of the 2 halves of port rocep1s0f0 is up "
        "(rocep1s0f0 Up, roceP2p1s0f0 Down); full bandwidth needs both"]


def test_filter_by_pattern():
    ports = _rdma.parse_ibdev2netdev(fixture("ibdev2netdev_dgxspark_spark1_two_up_two_down.txt"))
    assert [p["device"] for p in _rdma.select(ports, netdevs=["enP2*"])] == ["roceP2p1s0f0", "roceP2p1s0f1"]
    assert [p["device"] for p in _rdma.select(ports, devices=["rocep1s0f?"])] == ["rocep1s0f0", "rocep1s0f1"]


def test_empty_output_means_no_devices():
    assert _rdma.parse_ibdev2netdev("") == []
    assert _rdma.summarize([])["nccl_ib_hca"] is None


@pytest.mark.parametrize("line", [
    "rocep1s0f0 port 1 ==> enp1s0f0np0",          # no state
    "rocep1s0f0 port one ==> enp1s0f0np0 (Up)",   # port not a number
    "modprobe: FATAL: Module mlx5_ib not found",  # something else entirely
])
def test_corrupt_line_is_quoted(line):
    text = fixture("ibdev2netdev_dgxspark_spark1_two_up_two_down.txt") + line + "\n"
    with pytest.raises(ToolOutputError) as err:
        _rdma.parse_ibdev2netdev(text)
    assert repr(line) in str(err.value) and "line 5" in str(err.value)


def test_sysfs_fallback(tmp_path):
    def put(path, text):
        p = tmp_path / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for dev, net, state, oper in (("rocep1s0f1", "enp1s0f1np1", "4: ACTIVE", "up"),
                                  ("roceP2p1s0f1", "enP2p1s0f1np1", "1: DOWN", "down")):
        put(f"class/infiniband/{dev}/ports/1/state", state + "\n")
        (tmp_path / f"class/infiniband/{dev}/device/net/{net}").mkdir(parents=True)
        put(f"class/net/{net}/operstate", oper + "\n")
    ports = _rdma.read_sysfs(str(tmp_path))
    assert [(p["device"], p["netdev"], p["state"], p["port_state"]) for p in ports] == [
        ("roceP2p1s0f1", "enP2p1s0f1np1", "Down", "DOWN"),
        ("rocep1s0f1", "enp1s0f1np1", "Up", "ACTIVE"),
    ]
    assert _rdma.read_sysfs(str(tmp_path / "nothing")) == []


def test_each_port_gets_its_netdevs_mtu_from_sysfs(tmp_path):
    ports = _rdma.parse_ibdev2netdev(fixture("ibdev2netdev_dgxspark_spark1_two_up_two_down.txt"))
    (tmp_path / "class/net/enp1s0f1np1").mkdir(parents=True)
    (tmp_path / "class/net/enp1s0f1np1/mtu").write_text("9000\n")
    (tmp_path / "class/net/enP2p1s0f1np1").mkdir(parents=True)
    (tmp_path / "class/net/enP2p1s0f1np1/mtu").write_text("\xff\n")  # broken bytes: unknown, not an error
    mtus = {p["netdev"]: p["mtu"] for p in _rdma.with_mtu(ports, str(tmp_path))}
    assert mtus["enp1s0f1np1"] == 9000 and mtus["enP2p1s0f1np1"] is None
    assert all(m is None for n, m in mtus.items() if n not in ("enp1s0f1np1",))
