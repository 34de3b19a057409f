from __future__ import annotations

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils import _nvsmi
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from conftest import fixture


def test_gb10_table():
    t = _nvsmi.parse_table(fixture("nvidia_smi_gb10_dgxspark_processes.txt"))
    assert (t["driver_version"], t["cuda_version"], t["smi_version"]) == ("580.95.05", "13.0", "580.95.05")
    assert t["gpus"] == [{"index": 0, "name": "NVIDIA GB10", "pci_bus_id": "0000000F:01:00.0",
                          "memory_total": None, "memory_used": None}]
    assert [(p["pid"], p["type"], p["used_memory"]) for p in t["processes"]] == [
        (4174, "G", 84 * 2 ** 20), (4399, "G", 125 * 2 ** 20), (4761, "G", 273 * 2 ** 20)]
    assert t["processes"][2]["name"] == ".../7182/usr/lib/firefox/firefox"


def test_gb10_query_csv_memory_not_available():
    rows = _nvsmi.parse_query_csv(fixture("nvidia_smi_query_gpu_csv_gb10_with_header.txt"))
    assert rows == [{"index": "0", "name": "NVIDIA GB10", "memory.total": None, "memory.free": None}]


def test_noheader_csv_with_fields():
    rows = _nvsmi.parse_query_csv("0, NVIDIA H200, 143771 MiB, 12.0\n",
                                  fields=["index", "name", "memory.total", "compute_cap"])
    assert rows[0]["memory.total"] == 143771 * 2 ** 20
    assert _nvsmi.compute_capability(rows[0]["compute_cap"]) == (12, 0)


@pytest.mark.parametrize("text", ["", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."])
def test_table_without_header(text):
    with pytest.raises(ToolOutputError, match="no 'NVIDIA-SMI"):
        _nvsmi.parse_table(text)


def test_csv_with_wrong_field_count_is_quoted():
    text = fixture("nvidia_smi_query_gpu_csv_gb10_with_header.txt") + "1, NVIDIA GB10\n"
    with pytest.raises(ToolOutputError, match="'1, NVIDIA GB10'"):
        _nvsmi.parse_query_csv(text)


def test_h200_table_with_compute_processes():
    t = _nvsmi.parse_table(fixture("nvidia_smi_h200x2_two_compute_processes.txt"))
    assert (t["driver_version"], t["cuda_version"]) == ("580.159.04", "13.0")
    assert [(g["index"], g["name"], g["memory_total"]) for g in t["gpus"]] == [
        (0, "NVIDIA H200", 143771 * 2 ** 20), (1, "NVIDIA H200", 143771 * 2 ** 20)]
    assert [(p["gpu"], p["pid"], p["type"], p["name"], p["used_memory"]) for p in t["processes"]] == [
        (0, 561, "C", "python3", 1542 * 2 ** 20), (1, 561, "C", "python3", 1542 * 2 ** 20)]


def test_h200_inventory_from_both_forms():
    facts, notes = _nvsmi.gpu_inventory(fixture("nvidia_smi_query_gpu_h200x2_noheader.txt"),
                                        fixture("nvidia_smi_h200x2_two_compute_processes.txt"))
    assert facts["count"] == 2 and notes == [] and facts["driver_version"] == "580.159.04"
    assert [g["unified_memory"] for g in facts["gpus"]] == [False, False]
    assert facts["gpus"][1]["uuid"] == "GPU-794c51b3-3df5-0b67-0ffb-e8586331052b"
    assert facts["gpus"][0]["memory_free"] == 143156 * 2 ** 20 and facts["gpus"][0]["compute_capability"] == "9.0"


def test_h200_compute_apps():
    rows = _nvsmi.parse_query_csv(fixture("nvidia_smi_compute_apps_h200x2.txt"), fields=["pid", "used_memory"])
    assert rows == [{"pid": "561", "used_memory": 1542 * 2 ** 20}] * 2
