"""The modules' main(): argument handling, exact argv, check mode, failures."""

from __future__ import annotations

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils import _memory
from ansible_collections.sparkops.cluster.plugins.modules import gpu_facts, ibdev2netdev, memory_facts, memory_reclaim
from ansible_collections.sparkops.cluster.plugins.module_utils._units import GIB
from conftest import fixture


def test_ibdev2netdev_from_tool(run_module, commands, binaries):
    table, calls = commands
    binaries["ibdev2netdev"] = "/usr/bin/ibdev2netdev"
    table[("/usr/bin/ibdev2netdev",)] = (0, fixture("ibdev2netdev_dgxspark_spark1_two_up_two_down.txt"), "")
    failed, r = run_module(ibdev2netdev, {"devices": ["roce*"]}, check_mode=True)
    assert not failed and r["changed"] is False and r["source"] == "ibdev2netdev"
    assert calls == [["/usr/bin/ibdev2netdev"]]
    assert r["nccl_ib_hca"] == "=rocep1s0f0:1,roceP2p1s0f0:1"


def test_ibdev2netdev_verbose_and_require_up(run_module, commands, binaries):
    table, calls = commands
    binaries["ibdev2netdev"] = "/usr/bin/ibdev2netdev"
    table[("/usr/bin/ibdev2netdev", "-v")] = (0, fixture("ibdev2netdev_v_connectx4_sriov_mixed.txt"), "")
    failed, r = run_module(ibdev2netdev, {"verbose": True, "netdevs": ["enp2s0f[2-5]"], "require_up": 1})
    assert failed and r["msg"].startswith("0 RDMA port(s) up, require_up is 1")
    assert "mlx5_2:1->enp2s0f2 Down" in r["msg"]


def test_ibdev2netdev_corrupt_output_fails_quoting_line(run_module, commands, binaries):
    table = commands[0]
    binaries["ibdev2netdev"] = "/usr/bin/ibdev2netdev"
    table[("/usr/bin/ibdev2netdev",)] = (0, "rocep1s0f0 port 1 ==> enp1s0f0np0 (Up)\nGARBAGE here\n", "")
    failed, r = run_module(ibdev2netdev, {})
    assert failed and "line 2: 'GARBAGE here'" in r["msg"]


def test_ibdev2netdev_sysfs_fallback(run_module, commands, binaries, tmp_path):
    (tmp_path / "class/infiniband/rocep1s0f1/ports/1").mkdir(parents=True)
    (tmp_path / "class/infiniband/rocep1s0f1/ports/1/state").write_text("4: ACTIVE\n")
    (tmp_path / "class/infiniband/rocep1s0f1/device/net/enp1s0f1np1").mkdir(parents=True)
    (tmp_path / "class/net/enp1s0f1np1").mkdir(parents=True)
    (tmp_path / "class/net/enp1s0f1np1/operstate").write_text("up\n")
    failed, r = run_module(ibdev2netdev, {"sysfs_root": str(tmp_path)})
    assert not failed and r["source"] == "sysfs" and r["up_netdevs"] == ["enp1s0f1np1"]
    assert commands[1] == []


def test_ibdev2netdev_tool_required_but_missing(run_module, commands, binaries):
    failed, r = run_module(ibdev2netdev, {"source": "tool"})
    assert failed and "ibdev2netdev" in r["msg"]


GPU_ARGV = ("/usr/bin/nvidia-smi", "--query-gpu=" + ",".join(gpu_facts.FIELDS), "--format=csv,noheader,nounits")


def test_gpu_facts_gb10(run_module, commands, binaries):
    table, calls = commands
    binaries["nvidia-smi"] = "/usr/bin/nvidia-smi"
    # the GB10 CSV answer, with the fields this module asks for (memory is [N/A] on GB10)
    table[GPU_ARGV] = (0, "0, NVIDIA GB10, GPU-5c2d, 580.95.05, 12.1, [N/A], [N/A], [N/A], 0000000F:01:00.0\n", "")
    table[("/usr/bin/nvidia-smi",)] = (0, fixture("nvidia_smi_gb10_dgxspark_processes.txt"), "")
    failed, r = run_module(gpu_facts, {}, check_mode=True)
    assert not failed and r["changed"] is False
    g = r["ansible_facts"]["sparkops_gpu"]
    assert (g["count"], g["driver_version"], g["cuda_version"]) == (1, "580.95.05", "13.0")
    assert g["gpus"][0]["unified_memory"] is True and g["gpus"][0]["memory_total"] is None
    assert g["gpus"][0]["compute_capability"] == "12.1" and len(g["processes"]) == 3
    assert calls == [list(GPU_ARGV), ["/usr/bin/nvidia-smi"]]


def test_gpu_facts_driver_not_loaded(run_module, commands, binaries):
    table = commands[0]
    binaries["nvidia-smi"] = "/usr/bin/nvidia-smi"
    msg = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    table[GPU_ARGV] = (9, msg, "")
    failed, r = run_module(gpu_facts, {})
    assert failed and r["rc"] == 9 and msg in r["msg"]


def test_gpu_facts_absent(run_module, commands, binaries):
    failed, r = run_module(gpu_facts, {})
    assert failed and "nvidia-smi not found" in r["msg"]
    failed, r = run_module(gpu_facts, {"required": False})
    assert not failed and r["ansible_facts"]["sparkops_gpu"]["count"] == 0


def test_memory_reclaim_check_mode_reports_without_writing(run_module, binaries, fake_proc, monkeypatch):
    writes = []
    monkeypatch.setattr(memory_reclaim, "write", lambda path, value: writes.append(path))
    monkeypatch.setattr(memory_reclaim.os, "access", lambda path, mode: True)
    failed, r = run_module(memory_reclaim, {"min_cached_gb": 0.5}, check_mode=True)
    assert not failed and r["changed"] is True and writes == []
    assert r["freed"] == r["before"]["cached"] and r["after"] == r["before"]
    assert r["reboot_required"] is False


def test_memory_reclaim_below_threshold_changes_nothing(run_module, binaries, fake_proc):
    failed, r = run_module(memory_reclaim, {"min_cached_gb": 100})
    assert not failed and r["changed"] is False and r["skipped_reason"].startswith("Cached ")


def test_memory_reclaim_leak_fails_when_asked(run_module, binaries, fake_proc, monkeypatch):
    # the 3 GiB process is dropped from /proc: its memory is now held by nobody
    monkeypatch.setattr(_memory, "process_rss", lambda: 0)
    failed, r = run_module(memory_reclaim, {"drop_caches": 0, "leak_threshold_gb": 2, "fail_on_leak": True})
    assert failed and r["reboot_required"] and r["msg"].startswith("reboot required: ")
    failed, r = run_module(memory_reclaim, {"drop_caches": 0, "leak_threshold_gb": 2})
    assert not failed and r["reboot_required"] and r["leak"]["unaccounted"] > 2 * GIB


def test_memory_reclaim_process_accounted_no_leak(run_module, binaries, fake_proc):
    failed, r = run_module(memory_reclaim, {"drop_caches": 0, "leak_threshold_gb": 2})
    assert not failed and r["reboot_required"] is False
    assert r["leak"]["process_rss"] == 3153064 * 1024


def test_memory_reclaim_skips_leak_check_outside_the_machines_pid_namespace(run_module, binaries, fake_proc, monkeypatch):
    monkeypatch.setattr(_memory, "leak_check_scope", lambda: _memory._meminfo.leak_check_scope(
        "pid:[4026532451]", ["rw", "nosuid"], 0))
    failed, r = run_module(memory_reclaim, {"drop_caches": 0})
    assert not failed and r["leak"] is None and "its own PID namespace (pid:[4026532451]" in r["reason"]
    assert "leak_check=always forces it" in r["reason"]


def test_memory_reclaim_settle_waits_for_release(run_module, binaries, fake_proc, monkeypatch):
    # the engine's 3 GiB are held by nobody for two checks, then released (MemAvailable back)
    released = fixture("proc_meminfo_debian12_x86_24g_3g_held.txt").replace(
        "MemAvailable:   20673356 kB", "MemAvailable:   23800000 kB")  # the captured file, 3 GiB given back
    checks = []

    def read(path):
        if path == "/proc/meminfo":
            checks.append(path)
            return released if len(checks) > 3 else fake_proc[path]
        return fake_proc[path]

    clock = [0.0]
    monkeypatch.setattr(_memory, "read", read)
    monkeypatch.setattr(_memory, "process_rss", lambda: 0)
    monkeypatch.setattr(_memory.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(_memory.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    failed, r = run_module(memory_reclaim, {"drop_caches": 0, "leak_threshold_gb": 2, "settle_timeout": 60})
    assert not failed and r["reboot_required"] is False and r["settled_after"] == 10


def test_memory_reclaim_settle_gives_up_and_reports(run_module, binaries, fake_proc, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(_memory, "process_rss", lambda: 0)
    monkeypatch.setattr(_memory.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(_memory.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    failed, r = run_module(memory_reclaim, {"drop_caches": 0, "leak_threshold_gb": 2, "settle_timeout": 12})
    assert not failed and r["reboot_required"] is True and clock[0] == 10 and "reboot" not in r.get("msg", "")


def test_gpu_facts_takes_the_table_when_the_query_lists_no_gpu(run_module, commands, binaries):
    table = commands[0]
    binaries["nvidia-smi"] = "/usr/bin/nvidia-smi"
    table[GPU_ARGV] = (0, "", "")
    table[("/usr/bin/nvidia-smi",)] = (0, fixture("nvidia_smi_gb10_dgxspark_processes.txt"), "")
    failed, r = run_module(gpu_facts, {})
    g = r["ansible_facts"]["sparkops_gpu"]
    assert not failed and g["count"] == 1 and g["gpus"][0]["name"] == "NVIDIA GB10" and g["gpus"][0]["uuid"] is None
    assert g["driver_version"] == "580.95.05"


@pytest.mark.parametrize("name", ["command_timeout"])
def test_gpu_facts_refuses_no_limit(run_module, commands, binaries, name):
    binaries["nvidia-smi"] = "/usr/bin/nvidia-smi"
    failed, r = run_module(gpu_facts, {name: 0})
    assert failed and r["msg"].startswith("command_timeout must be above 0, got 0") and commands[1] == []


def test_memory_reclaim_refuses_compact_without_a_drop(run_module, binaries, fake_proc):
    failed, r = run_module(memory_reclaim, {"drop_caches": 0, "compact": True})
    assert failed and r["msg"].startswith("compact: true runs right after the cache drop, and drop_caches is 0")


def test_memory_reclaim_meminfo_with_a_stray_byte_is_named(run_module, binaries, tmp_path, monkeypatch):
    broken = tmp_path / "meminfo"
    broken.write_bytes(fixture("proc_meminfo_debian12_x86_24g_3g_held.txt").encode().replace(b"MemFree:", b"MemFr\xe9e:"))
    real_read = _memory.read
    monkeypatch.setattr(_memory, "read", lambda path: real_read(str(broken) if path == "/proc/meminfo" else path))
    failed, r = run_module(memory_reclaim, {"drop_caches": 0, "leak_check": "never"})
    assert failed and r["msg"].startswith("cannot read /proc/meminfo: cannot parse /proc/meminfo output at line 2: "
                                          "'MemFr\ufffde:")


def test_memory_facts_reads_and_never_changes(run_module, binaries, fake_proc, monkeypatch):
    monkeypatch.setattr(_memory, "process_rss", lambda: 0)  # the 3 GiB process left out: held by nobody
    failed, r = run_module(memory_facts, {"leak_threshold_gb": 2})
    m = r["ansible_facts"]["sparkops_memory"]
    assert not failed and r["changed"] is False
    assert m["mem_available"] == 20673356 * 1024 and m["reboot_required"] is True and "only a reboot" in m["reason"]
    failed, r = run_module(memory_facts, {"leak_threshold_gb": 2, "fail_on_leak": True})
    assert failed and r["msg"].startswith("reboot required: ")
    failed, r = run_module(memory_facts, {"leak_check": "never"})
    assert not failed and r["ansible_facts"]["sparkops_memory"]["reason"] == "leak check disabled (leak_check=never)"


def test_gpu_memory_counts_only_where_it_is_the_nodes_ram(run_module, commands, binaries, fake_proc, monkeypatch):
    """GB10 (memory.total [N/A]): a GPU process's memory is system RAM and accounted; a
    discrete GPU's (H200: a number) is not in /proc/meminfo and takes nothing off."""
    table, calls = commands
    binaries["nvidia-smi"] = "/usr/bin/nvidia-smi"
    monkeypatch.setattr(_memory, "process_rss", lambda: 0)
    total = ("/usr/bin/nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits")
    apps = ("/usr/bin/nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits")
    table[apps] = (0, "4242, 3072\n", "")
    table[total] = (0, "[N/A]\n", "")
    failed, r = run_module(memory_facts, {"leak_threshold_gb": 2})
    assert not failed and r["ansible_facts"]["sparkops_memory"]["leak"]["gpu_processes"] == 3072 * 2 ** 20
    table[total] = (0, "143771\n143771\n", "")
    failed, r = run_module(memory_facts, {"leak_threshold_gb": 2})
    assert not failed and r["ansible_facts"]["sparkops_memory"]["leak"]["gpu_processes"] == 0
    assert list(apps) not in calls[2:]
