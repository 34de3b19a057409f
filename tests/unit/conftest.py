"""Shared test helpers: import path, fixture loader, AnsibleModule harness."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
# `ansible_collections.sparkops.cluster` -> this checkout (.collections holds a symlink)
sys.path.insert(0, str(REPO / ".collections"))

_PROMPT = re.compile(r"^(\S+@\S+:\S*\$ |\$ |# )?(ibdev2netdev|ib_write_bw|nvidia-smi|arping|ping|ip|cat|ssh|dmesg|journalctl)\b")


def fixture(name: str) -> str:
    """A fixture's tool output: line 1 (`# source:`) and a command/prompt line removed."""
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    assert lines[0].startswith("# source:"), f"{name}: line 1 must name the source"
    lines = lines[1:]
    if lines and _PROMPT.match(lines[0]):
        lines = lines[1:]
    return "".join(lines)


class AnsibleExit(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


class AnsibleFail(AnsibleExit):
    pass


@pytest.fixture
def run_module(monkeypatch):
    """run_module(module, args, check_mode=False) -> (failed, result)."""
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes

    def exit_json(self, **kwargs):
        raise AnsibleExit(kwargs)

    def fail_json(self, **kwargs):
        kwargs["failed"] = True
        raise AnsibleFail(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def run(module, args, check_mode=False):
        args = dict(args, _ansible_check_mode=check_mode, _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False)
        monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
        monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
        try:
            module.main()
        except AnsibleFail as exc:
            return True, exc.result
        except AnsibleExit as exc:
            return False, exc.result
        raise AssertionError("module returned without exit_json/fail_json")

    return run


@pytest.fixture
def commands(monkeypatch):
    """Serve the modules' bounded commands (module_utils/_command.run) from a table
    {argv tuple: (rc, out, err)}; record the calls. Every call must carry a time limit."""
    from ansible_collections.sparkops.cluster.plugins.module_utils import _command
    table, calls = {}, []

    def run(argv, timeout, env=None, stdin=None):
        assert timeout and timeout > 0, "every command runs with a bound"
        calls.append(list(argv))
        return table[tuple(argv)]

    monkeypatch.setattr(_command, "run", run)
    return table, calls


@pytest.fixture
def binaries(monkeypatch):
    """The programs get_bin_path finds: {name: path}, empty at first (none installed)."""
    from ansible.module_utils import basic
    present = {}
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: present.get(name) or (
                            self.fail_json(msg="Failed to find required executable %s" % name) if required else None))
    return present


@pytest.fixture
def fake_proc(monkeypatch):
    """/proc as captured: the meminfo fixture and one process holding 3 GiB."""
    from ansible_collections.sparkops.cluster.plugins.module_utils import _memory
    files = {"/proc/meminfo": fixture("proc_meminfo_debian12_x86_24g_3g_held.txt"),
             "/proc/4242/status": fixture("proc_status_python_3g_rssanon.txt")}
    monkeypatch.setattr(_memory, "read", lambda path: files[path])
    real_listdir = _memory.os.listdir
    monkeypatch.setattr(_memory.os, "listdir", lambda p: ["4242", "self", "meminfo"] if p == "/proc" else real_listdir(p))
    monkeypatch.setattr(_memory, "leak_check_scope", lambda: (True, None))
    return files
