from __future__ import annotations

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils import _meminfo
from ansible_collections.sparkops.cluster.plugins.module_utils._errors import ToolOutputError
from ansible_collections.sparkops.cluster.plugins.module_utils._units import GIB
from conftest import fixture


def test_parse_real_meminfo():
    mem = _meminfo.parse_meminfo(fixture("proc_meminfo_debian12_x86_24g_3g_held.txt"))
    assert mem["MemTotal"] == 24683656 * 1024
    assert mem["MemAvailable"] == 20673356 * 1024
    assert "HugePages_Total" in mem  # a count, not kB
    s = _meminfo.summary(mem)
    assert s["mem_total"] == mem["MemTotal"] and s["swap_used"] == mem["SwapTotal"] - mem["SwapFree"]


def test_process_that_nobody_accounts_for_is_reported():
    """The 3 GiB process stands in for memory no process owns when it is left out."""
    mem = _meminfo.parse_meminfo(fixture("proc_meminfo_debian12_x86_24g_3g_held.txt"))
    held = _meminfo.parse_status_rss(fixture("proc_status_python_3g_rssanon.txt"))
    assert held == 3153064 * 1024
    with_it = _meminfo.unaccounted(mem, process_bytes=held)
    without = _meminfo.unaccounted(mem, process_bytes=0)
    assert without["unaccounted"] - with_it["unaccounted"] == held
    leak, reason = _meminfo.leak_verdict(without, threshold_bytes=2 * GIB)
    assert leak and "only a reboot frees it" in reason and "2.0 GiB threshold" in reason
    assert _meminfo.leak_verdict(_meminfo.unaccounted(mem, held + 4 * GIB), 2 * GIB) == (False, None)


def test_gpu_process_memory_counts_as_accounted():
    mem = _meminfo.parse_meminfo(fixture("proc_meminfo_debian12_x86_24g_busy.txt"))
    a = _meminfo.unaccounted(mem, process_bytes=0)
    b = _meminfo.unaccounted(mem, process_bytes=0, gpu_process_bytes=GIB)
    assert a["unaccounted"] - b["unaccounted"] == min(GIB, a["unaccounted"])


@pytest.mark.parametrize("text, needle", [
    ("", "missing MemTotal"),
    ("MemTotal: lots\n", "'MemTotal: lots'"),
    ("MemTotal:       24683656 kB\n", "missing MemFree, MemAvailable"),
])
def test_bad_meminfo(text, needle):
    with pytest.raises(ToolOutputError) as err:
        _meminfo.parse_meminfo(text)
    assert needle in str(err.value)


def test_a_line_cut_before_its_unit_is_named_not_read_as_bytes():
    text = fixture("proc_meminfo_debian12_x86_24g_3g_held.txt").replace("MemAvailable:   20673356 kB", "MemAvailable:   20673356")
    with pytest.raises(ToolOutputError, match="MemAvailable has no kB unit"):
        _meminfo.parse_meminfo(text)


def test_hugepage_counts_need_no_unit():
    mem = _meminfo.parse_meminfo(fixture("proc_meminfo_debian12_x86_24g_3g_held.txt"))
    assert mem["HugePages_Total"] == 0 and mem["Hugepagesize"] == 2048 * 1024


@pytest.mark.parametrize("pid_ns, options, euid, runs, says", [
    ("pid:[4026531836]", ["rw", "relatime"], 0, True, None),
    ("pid:[4026531836]", ["rw", "hidepid=2"], 0, True, None),
    ("pid:[4026531836]", ["rw", "hidepid=invisible"], 1000, False, "mounted with hidepid=invisible"),
    # a container: its own PID namespace, whatever marker files it carries
    ("pid:[4026532451]", ["rw"], 0, False, "its own PID namespace (pid:[4026532451], the machine's is pid:[4026531836])"),
])
def test_leak_check_runs_only_where_proc_lists_every_process(pid_ns, options, euid, runs, says):
    ok, why = _meminfo.leak_check_scope(pid_ns, options, euid)
    assert ok is runs and (why is None if runs else says in why)
