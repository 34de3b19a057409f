"""The supervisor of vllm serve (roles/vllm_serve/files/supervisor.py), run as the role
runs it (python3 -c SOURCE VERB ...; docker exec makes the started process its group's
leader, as start_new_session does here), with a stand-in for vllm serve: a process with a
child in its group, one that ends on SIGINT and one that ignores it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from conftest import REPO

SOURCE = (REPO / "roles" / "vllm_serve" / "files" / "supervisor.py").read_text()
# a stand-in for vllm serve with an engine core: a child in its group; on SIGINT both end
POLITE = ("import os, signal, subprocess, sys, time; "
          "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
          "signal.signal(signal.SIGINT, lambda *a: (child.terminate(), child.wait(), sys.exit(0))); "
          "print('serving', flush=True); time.sleep(300)")
# one whose engine core ignores SIGINT (an interrupted load): only the group's SIGKILL ends it
STUBBORN = ("import os, signal, subprocess, sys, time; "
            "child = subprocess.Popen([sys.executable, '-c', "
            "'import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(300)']); "
            "signal.signal(signal.SIGINT, lambda *a: sys.exit(0)); print('loading', flush=True); time.sleep(300)")


def run(*args, timeout=60):
    return subprocess.run([sys.executable, "-c", SOURCE] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout)


def start(tmp_path, program, stamp="stamp-1"):
    proc = subprocess.Popen([sys.executable, "-c", SOURCE, "start", str(tmp_path), stamp, sys.executable, "-c", program],
                            start_new_session=True)
    for _i in range(100):
        if (tmp_path / "vllm.log").exists() and (tmp_path / "vllm.log").read_text():
            break
        time.sleep(0.1)
    return proc


def test_start_probe_stop(tmp_path):
    proc = start(tmp_path, POLITE)
    try:
        # the recorded PID is the started process itself (exec, not a child)
        assert int((tmp_path / "vllm.pid").read_text()) == proc.pid
        assert (tmp_path / "vllm.log").read_text() == "serving\n"
        out = run("probe", tmp_path).stdout.splitlines()
        assert out[0] == "stamp-1" and out[1] in ("S", "R")
        stopped = run("stop", tmp_path, 20)
        assert stopped.stdout.startswith("stopped in ") and proc.wait(10) == 0
        assert not (tmp_path / "vllm.pid").exists()
        assert run("probe", tmp_path).stdout.splitlines() == ["stamp-1", "none"]
        assert run("stop", tmp_path, 20).stdout.strip() == "not running"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)


def test_a_group_that_ignores_sigint_is_killed(tmp_path):
    proc = start(tmp_path, STUBBORN, stamp="")
    try:
        out = run("stop", tmp_path, 2).stdout.strip()
        assert out == "killed after 2s", out
        proc.wait(10)
        # no process of its group is left
        left = [p for p in os.listdir("/proc") if p.isdigit() and _pgrp(p) == proc.pid]
        assert left == []
    finally:
        try:
            os.killpg(proc.pid, 9)
        except OSError:
            pass


def _pgrp(pid):
    try:
        raw = open("/proc/%s/stat" % pid).read()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    return int(fields[2]) if fields[0] not in ("Z", "X") else None


def test_a_recorded_pid_of_another_process_is_not_taken_for_vllm(tmp_path):
    """After the engine container restarts, the recorded PID can belong to another process:
    the start time recorded with it tells them apart."""
    (tmp_path / "vllm.stamp").write_text("old")
    (tmp_path / "vllm.pid").write_text("%d\n" % os.getpid())
    (tmp_path / "vllm.start").write_text("1\n")  # not this process's start time
    assert run("probe", tmp_path).stdout.splitlines() == ["old", "none"]
    assert run("stop", tmp_path, 1).stdout.strip() == "not running"


def test_usage():
    assert run().returncode == 2 and "usage" in run("stop", "/x", "soon").stderr
    assert run("wait", "/x", "stamp", "soon").returncode == 2


def test_wait_returns_once_the_start_it_follows_has_recorded_itself(tmp_path):
    """A detached start returns before its record is written (here: wait runs at once, no
    sleep); an earlier record, as after an engine container restart, is not taken for it."""
    (tmp_path / "vllm.stamp").write_text("old")
    (tmp_path / "vllm.pid").write_text("1\n")
    (tmp_path / "vllm.start").write_text("7\n")
    proc = subprocess.Popen([sys.executable, "-c", SOURCE, "start", str(tmp_path), "stamp-2", sys.executable, "-c",
                             POLITE], start_new_session=True)
    try:
        done = run("wait", tmp_path, "stamp-2", 30)
        assert done.returncode == 0 and done.stdout == "started %d\n" % proc.pid, done
        assert int((tmp_path / "vllm.pid").read_text()) == proc.pid
        assert run("probe", tmp_path).stdout.splitlines()[0] == "stamp-2"
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(10)


def test_wait_fails_within_its_bound_when_nothing_started(tmp_path):
    (tmp_path / "vllm.stamp").write_text("stamp-2")
    (tmp_path / "vllm.pid").write_text("%d\n" % os.getpid())
    (tmp_path / "vllm.start").write_text("1\n")  # a stale record: not this process's start time
    began = time.monotonic()
    done = run("wait", tmp_path, "stamp-2", 1)
    assert done.returncode == 1 and "not running 1s after its start" in done.stdout, done
    assert time.monotonic() - began < 30


def test_wait_does_not_take_a_live_record_of_another_plan(tmp_path):
    proc = start(tmp_path, POLITE, stamp="stamp-1")
    try:
        assert run("wait", tmp_path, "stamp-1", 1).returncode == 0
        assert run("wait", tmp_path, "stamp-2", 1).returncode == 1
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(10)
