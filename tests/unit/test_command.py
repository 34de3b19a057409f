"""module_utils/_command: bounded programs, no process left behind, bytes that may be broken."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils import _command


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid, within=5.0):
    deadline = time.monotonic() + within
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def test_output_and_rc_come_back_as_text():
    rc, out, err = _command.run(["sh", "-c", "echo out; echo err >&2; exit 3"], 10)
    assert (rc, out, err) == (3, "out\n", "err\n")


def test_runs_in_the_c_locale():
    rc, out, _err = _command.run(["sh", "-c", "echo $LC_ALL"], 10)
    assert out == "C\n"


def test_a_stray_byte_is_replaced_not_an_error():
    rc, out, _err = _command.run(["printf", "caf\\351 \\377ok\\n"], 10)
    assert out == "caf\ufffd \ufffdok\n"
    out.encode("utf-8")  # no lone surrogate: Ansible can serialize it


def test_a_hung_program_and_its_children_are_killed_at_the_limit(tmp_path):
    pids = tmp_path / "pids"
    script = "echo started; sleep 300 & echo $$ $! > %s; wait" % pids
    start = time.monotonic()
    with pytest.raises(_command.CommandTimeout) as err:
        _command.run(["sh", "-c", script], 1)
    assert time.monotonic() - start < 10
    assert "did not finish within 1s and was killed; last output line: started" in str(err.value)
    for pid in map(int, pids.read_text().split()):
        assert wait_gone(pid), "process %d outlived the limit" % pid


def test_a_program_that_ignores_sigterm_is_killed():
    start = time.monotonic()
    with pytest.raises(_command.CommandTimeout):
        _command.run([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                            "print('x', flush=True); time.sleep(300)"], 1)
    assert time.monotonic() - start < 1 + _command.TERM_GRACE + 5


def test_a_child_left_running_after_a_normal_exit_is_killed(tmp_path):
    pidfile = tmp_path / "child"
    # the child keeps no pipe open, so the program itself ends at once
    rc, _out, _err = _command.run(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $! > %s" % pidfile], 10)
    assert rc == 0 and wait_gone(int(pidfile.read_text()))


@pytest.mark.parametrize("limit", [0, -1, None])
def test_no_limit_is_refused(limit):
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        _command.run(["true"], limit)


def test_a_missing_program_is_an_oserror():
    with pytest.raises(OSError):
        _command.run(["/nonexistent/tool"], 5)


def test_a_stopped_module_kills_the_running_program(tmp_path):
    """SIGTERM to the module process (ansible-playbook interrupted, connection lost) takes
    the program's process group with it."""
    pidfile = tmp_path / "pid"
    code = ("import sys; sys.path.insert(0, %r); "
            "from ansible_collections.sparkops.cluster.plugins.module_utils import _command; "
            "_command.run(['sh', '-c', 'echo $$ > %s; sleep 300'], 600)") % (
        os.path.join(os.path.dirname(__file__), "..", "..", ".collections"), pidfile)
    module = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 20
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    tool = int(pidfile.read_text())
    module.send_signal(signal.SIGTERM)
    module.wait(timeout=20)
    assert module.returncode == -signal.SIGTERM
    assert wait_gone(tool), "the program outlived the module"
