"""Drift checks for what breaks Sparks today (rows KF-34 to KF-41): the kernel and its CMA
tell, the rails' link and PCIe width, the engine image's NCCL builds and its Ray. Each with
the configuration the field reports as working (it must pass) and the one reported as
failing (refused or warned), on figures quoted from the reports."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.sparkops.cluster.plugins.module_utils import _meminfo, _rdma
from ansible_collections.sparkops.cluster.plugins.module_utils._units import GIB
from ansible_collections.sparkops.cluster.plugins.plugin_utils import _recipe, _rules
from conftest import REPO, fixture

HARDWARE = yaml.safe_load((REPO / "data" / "hardware.yml").read_text())
TABLE = _rules.Table(yaml.safe_load((REPO / "data" / "known_failures.yml").read_text()))
# MiaAI-Lab/DeepSeek-v4-Flash-DSpark-2x-DGX-Spark#259 (hfeixas, 2026-09-16), "Before", the two
# /proc/meminfo lines as quoted (the report's "<- 919 MiB ..." annotation left out)
CMA_BEFORE = "CmaTotal:        0 kB\nCmaFree:    940604 kB\n"
# the same report, "After kho=off": CmaFree 0
CMA_AFTER = "CmaTotal:        0 kB\nCmaFree:           0 kB\n"
RAILS = [{"name": "rail1", "netdev": "enp1s0f1np1", "rdma_device": "rocep1s0f1", "mtu": 9000},
         {"name": "rail2", "netdev": "enP2p1s0f1np1", "rdma_device": "roceP2p1s0f1", "mtu": 9000}]


def recipe(name="qwen397b", **overrides):
    r = yaml.safe_load((REPO / "recipes" / ("%s.yml" % name)).read_text())
    return _recipe.validate(_recipe.merge(r, overrides), source=name, known_rows=set(TABLE.rows))


def judge(per_host, r=None, check=None, env=None, hardware="gb10"):
    base = {"driver_version": "580.95.05", "rails_up": {"rail1": True, "rail2": True},
            "rail_mtu": {"rail1": 9000, "rail2": 9000}, "mem_available": 110 * GIB}
    facts = {h: dict(base, **f) for h, f in per_host.items()}
    if check is not None:
        facts[sorted(facts)[0]]["engine_check"] = dict({"version": "0.19.1", "ray_version": "2.54.0"}, **check)
    ctx = {"facts": facts, "recipe": r or recipe(), "hw": HARDWARE[hardware], "hw_name": hardware,
           "nodes": [{"name": h, "rails": RAILS} for h in facts], "envs": [env or {}], "ray_auth": True,
           "version": _recipe.parse_version("0.19.1"), "version_text": "0.19.1"}
    found = _rules.run(TABLE, "facts", ctx)
    return {f["rule"]: str(f) for f in found.refusals}, {f["rule"]: str(f) for f in found.warnings}


def memory(cma_lines):
    return _meminfo.summary(_meminfo.parse_meminfo(fixture("proc_meminfo_debian12_x86_24g_3g_held.txt") + cma_lines))


def test_the_cma_tell_refuses_and_kho_off_passes():
    before, after = memory(CMA_BEFORE), memory(CMA_AFTER)
    assert (before["cma_total"], before["cma_free"]) == (0, 940604 * 1024)
    sick = {"kernel_release": "7.0.0-1019-nvidia", "kho_off": False, "cma_total": before["cma_total"],
            "cma_free": before["cma_free"]}
    refused, warned = judge({"spark-1": sick, "spark-2": {}})
    assert "spark-1 runs kernel 7.0.0-1019-nvidia and /proc/meminfo shows CmaFree 919 MiB against CmaTotal 0 MiB" \
        in refused["KF-34"] and "kho=off" in refused["KF-34"]
    assert "KF-35" in warned  # the same kernel, no kho=off
    healed = {"kernel_release": "7.0.0-1019-nvidia", "kho_off": True, "cma_total": after["cma_total"],
              "cma_free": after["cma_free"]}
    refused, warned = judge({"spark-1": healed, "spark-2": {}})
    assert "KF-34" not in refused and "KF-35" not in warned
    # the kernel the reports fell back to, and a machine without CMA at all
    refused, warned = judge({"spark-1": {"kernel_release": "6.17.0-1032-nvidia", "cma_total": None, "cma_free": None}})
    assert not refused and not warned


def link(tmp_path, netdev, device, speed, width, max_width, gts="32.0 GT/s PCIe"):
    """A sysfs tree in Linux's formats (net-sysfs.c speed_show; pci-sysfs.c link attributes)."""
    net = tmp_path / "class" / "net" / netdev
    pci = net / "device"
    pci.mkdir(parents=True)
    (net / "speed").write_text("%s\n" % speed)
    (pci / "current_link_width").write_text("%s\n" % width)
    (pci / "max_link_width").write_text("%s\n" % max_width)
    (pci / "current_link_speed").write_text(gts + "\n")
    (pci / "max_link_speed").write_text(gts + "\n")
    ib = tmp_path / "class" / "infiniband" / device
    ib.mkdir(parents=True)
    (ib / "fw_ver").write_text("28.45.4028\n")
    return _rdma.link({"netdev": netdev, "device": device}, str(tmp_path))


def test_link_facts_from_sysfs(tmp_path):
    healthy = link(tmp_path, "enp1s0f1np1", "rocep1s0f1", 200000, 4, 4)
    assert healthy == {"speed_mbps": 200000, "pcie_width": 4, "pcie_max_width": 4, "pcie_speed_gts": 32.0,
                       "pcie_max_speed_gts": 32.0, "firmware": "28.45.4028"}
    down = link(tmp_path, "enP2p1s0f1np1", "roceP2p1s0f1", -1, 2, 4)  # speed -1: unknown (link down)
    assert down["speed_mbps"] is None and down["pcie_width"] == 2
    assert _rdma.link({"netdev": "absent"}, str(tmp_path))["speed_mbps"] is None


def test_a_narrow_pcie_link_and_a_slow_link_warn_with_figures(tmp_path):
    healthy = link(tmp_path, "enp1s0f1np1", "rocep1s0f1", 200000, 4, 4)
    # NVIDIA/dgx-spark-playbooks PR#108: the second half of the port at PCIe x2 with an old BIOS
    narrow = link(tmp_path, "enP2p1s0f1np1", "roceP2p1s0f1", 200000, 2, 4)
    refused, warned = judge({"spark-1": {"rail_link": {"rail1": healthy, "rail2": narrow}}})
    assert "spark-1: rail rail2 (enP2p1s0f1np1) runs PCIe x2 (its slot allows x4; the gb10 profile expects x4)" \
        in warned["KF-36"] and "update the BIOS" in warned["KF-36"]
    slow = dict(healthy, speed_mbps=100000)
    refused, warned = judge({"spark-1": {"rail_link": {"rail1": slow, "rail2": healthy}}})
    assert "negotiated 100000 Mb/s; the gb10 profile expects 200000 Mb/s" in warned["KF-37"]
    refused, warned = judge({"spark-1": {"rail_link": {"rail1": healthy, "rail2": healthy}}})
    assert not refused and not warned
    # the simulation's profile states no link: not judged
    assert judge({"spark-1": {"rail_link": {"rail1": slow}}}, hardware="cpu-sim", r=recipe(hardware="cpu-sim")) == ({}, {})


@pytest.mark.parametrize("nccl, env, refused_rows, warned_rows", [
    # NVIDIA/nccl#2167: 2.30.4 hangs MoE weight loading across 8 Sparks; 2.30.3 works
    ({"pip": [{"name": "nvidia-nccl-cu13", "version": "2.30.4"}]}, {}, {"KF-39"}, set()),
    ({"pip": [{"name": "nvidia-nccl-cu13", "version": "2.30.4"}]}, {"NCCL_NVLS_ENABLE": "0"}, set(), set()),
    ({"pip": [{"name": "nvidia-nccl-cu13", "version": "2.30.3"}]}, {}, set(), set()),
    ({"torch": "2.30.4", "pip": [], "system": []}, {}, {"KF-39"}, set()),
    # vllm-project/vllm#41725: pip's 2.28.9 wedged, the system's 2.28.9 passed a soak
    ({"pip": [{"name": "nvidia-nccl-cu12", "version": "2.28.9"}], "system": ["2.28.9"]}, {}, set(), {"KF-40"}),
    ({"pip": [{"name": "nvidia-nccl-cu12", "version": "2.28.9"}], "system": ["2.28.9"]},
     {"VLLM_NCCL_SO_PATH": "/usr/lib/aarch64-linux-gnu/libnccl.so.2"}, set(), set()),
    ({"pip": [], "system": ["2.28.9"]}, {}, set(), set()),
    ({}, {}, set(), set()),  # an image whose check predates the NCCL read
])
def test_nccl_builds(nccl, env, refused_rows, warned_rows):
    refused, warned = judge({"spark-1": {}}, check={"nccl": nccl}, env=env)
    assert set(refused) == refused_rows and set(warned) & {"KF-39", "KF-40"} == warned_rows, (refused, warned)


def test_an_image_without_ray_is_refused_for_the_ray_executor_whatever_the_auth():
    """ai-dynamo/dynamo PR#8515: vLLM 0.19.1 dropped Ray; the stock image has none."""
    refused, _warned = judge({"spark-1": {}}, check={"ray_version": None})
    assert "the engine image vllm/vllm-openai:nightly has no Ray" in refused["KF-41"] and "SEC-5" not in refused
    # with the mp executor there is nothing to refuse
    refused, _warned = judge({"spark-1": {}}, r=recipe(engine={"executor": "mp"}), check={"ray_version": None})
    assert "KF-41" not in refused
    # a Ray too old for token authentication is still SEC-5's
    refused, _warned = judge({"spark-1": {}}, check={"ray_version": "2.49.1"})
    assert "SEC-5" in refused and "KF-41" not in refused


def gid_table(tmp_path, device, entries):
    """A port's GID table in the kernel's sysfs format (drivers/infiniband/core/sysfs.c)."""
    base = tmp_path / "class" / "infiniband" / device / "ports" / "1"
    (base / "gids").mkdir(parents=True)
    (base / "gid_attrs" / "types").mkdir(parents=True)
    for index in range(8):
        gid, kind = entries.get(index, ("0000:0000:0000:0000:0000:0000:0000:0000", ""))
        (base / "gids" / str(index)).write_text(gid + "\n")
        (base / "gid_attrs" / "types" / str(index)).write_text(kind + "\n")
    return _rdma.gids({"device": device, "port": 1}, str(tmp_path))


LINK_LOCAL = "fe80:0000:0000:0000:4ab0:2dff:fe12:3456"


def test_a_pinned_gid_index_is_judged_on_every_nodes_table(tmp_path):
    """MiaAI-Lab/GLM-5.3-Flash-EXL3-2x-DGX-Sparks#47: NCCL_IB_GID_INDEX=5 works where the
    v2 ::ffff: GIDs sit at index 5; a node whose RoCE v2 GID of the rail is at 3 breaks."""
    assert _rdma.gid_of_ipv4("192.168.100.10") == "0000:0000:0000:0000:0000:ffff:c0a8:640a"
    v2 = _rdma.gid_of_ipv4("192.168.100.10")
    at5 = gid_table(tmp_path / "a", "rocep1s0f1", {0: (LINK_LOCAL, "IB/RoCE v1"), 1: (LINK_LOCAL, "RoCE v2"),
                                                   4: (v2, "IB/RoCE v1"), 5: (v2, "RoCE v2")})
    assert [e["index"] for e in at5] == [0, 1, 4, 5] and at5[3]["type"] == "RoCE v2"
    at3 = gid_table(tmp_path / "b", "rocep1s0f1", {0: (LINK_LOCAL, "IB/RoCE v1"), 1: (LINK_LOCAL, "RoCE v2"),
                                                   2: (v2, "IB/RoCE v1"), 3: (v2, "RoCE v2")})
    rails = [dict(RAILS[0], address="192.168.100.10")]

    def live(table, pinned):
        facts = {"spark-1": {"rail_link": {"rail1": {"gids": table}}}}
        ctx = {"facts": facts, "recipe": recipe(), "hw": HARDWARE["gb10"], "hw_name": "gb10",
               "nodes": [{"name": "spark-1", "rails": rails}], "envs": [{"NCCL_IB_GID_INDEX": pinned}],
               "version": _recipe.parse_version("0.19.1"), "version_text": "0.19.1"}
        return [str(f) for f in _rules.run(TABLE, "facts", ctx).refusals if f["rule"] == "KF-17"]

    assert live(at5, "5") == []
    wrong = live(at3, "5")
    assert wrong and "GID 5 of spark-1's rail rail1 (enp1s0f1np1) is empty" in wrong[0]
    assert "set NCCL_IB_GID_INDEX to 3, where spark-1 has the RoCE v2 GID of 192.168.100.10" in wrong[0]
    v1 = live(at5, "4")  # the address, but RoCE v1
    assert v1 and "(IB/RoCE v1), not the RoCE v2 GID of 192.168.100.10" in v1[0]
    # no GID table read (the simulation's veth rails have no RDMA device): not judged
    assert live([], "5") == []


# --- rows whose sources report on other hardware than a DGX Spark (the table's review) --------
MARKED = {"KF-10": "a Tesla T10 beside an RTX 3060", "KF-11": "an 8-GPU server", "KF-19": "two 8-GPU servers over RoCE",
          "KF-20": "any GPU", "KF-43": "a Jetson Orin", "KF-112": "any Linux host"}


def test_rows_whose_sources_are_about_other_hardware_say_so_in_the_refusal():
    marked = {rid for rid, row in TABLE.rows.items() if row.get("sources_hardware")}
    assert marked == set(MARKED)
    for rid, words in MARKED.items():
        row = TABLE.rows[rid]
        assert words in row["sources_hardware"] and "not" in row["sources_hardware"]
        assert "the sources are marked" in row["history"]
    found = TABLE.finding("KF-19", "hostname", address="127.0.1.1")
    assert found["sources_hardware"] == TABLE.rows["KF-19"]["sources_hardware"]
    assert str(found).endswith("(source: vllm-project/vllm#7074; reported on two 8-GPU servers over RoCE (TP=16), "
                               "not on a DGX Spark)")
    spark = TABLE.finding("KF-34", "kernel", host="spark-1", kernel="7.0.0-1019-nvidia", cma_free="1", cma_total="0")
    assert "sources_hardware" not in spark and "reported on" not in str(spark)


@pytest.mark.parametrize("value", ["", "  ", ["H100"]])
def test_an_empty_or_wrong_sources_hardware_breaks_the_table_naming_the_row(value):
    rows = yaml.safe_load((REPO / "data" / "known_failures.yml").read_text())
    row = next(r for r in rows if r["id"] == "KF-10")
    row["sources_hardware"] = value
    with pytest.raises(_rules.TableError, match=r"\(KF-10\): sources_hardware must name the hardware"):
        _rules.Table(rows)
