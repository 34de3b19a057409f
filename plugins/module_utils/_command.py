# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running external programs from a module: a bounded time, the C locale, output read
as bytes and decoded with replacement, and no process left behind.

Each program runs in a process group of its own. When its time is up, or when the
module itself is stopped (SIGTERM, SIGHUP, SIGINT: ansible-playbook interrupted, the
connection lost), the whole group gets SIGTERM, then SIGKILL two seconds later. A
program stuck in the kernel (a wedged nvidia-smi in uninterruptible sleep) cannot be
killed by anyone; the module still returns, and says so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

TERM_GRACE = 2.0     # seconds between SIGTERM and SIGKILL of the group
REAP_WAIT = 5.0      # seconds to wait for a killed group to exit before giving up on it
_GUARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_running = set()     # process group ids of the programs running now
_lock = threading.Lock()
_previous = {}


class CommandTimeout(Exception):
    """A program ran past its limit; its group was killed."""

    def __init__(self, argv, limit, output, unkillable=False):
        self.argv, self.limit, self.output, self.unkillable = argv, limit, output, unkillable
        tail = last_line(output)
        super().__init__("%s did not finish within %ss%s; last output line: %s" % (
            " ".join(argv), limit,
            " and could not be killed (stuck in the kernel: reboot the node)" if unkillable else " and was killed",
            tail if tail else "(none)"))


def decode(data):
    """Text of a program's output: UTF-8, a stray byte replaced by U+FFFD (never an error)."""
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def last_line(text):
    lines = [line.strip() for line in decode(text).splitlines() if line.strip()]
    return lines[-1][-300:] if lines else ""


def _kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_all(signum, frame):
    with _lock:
        groups = list(_running)
    for pgid in groups:
        _kill_group(pgid, signal.SIGKILL)
    handler = _previous.get(signum, signal.SIG_DFL)
    if callable(handler):
        handler(signum, frame)
    else:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def guard():
    """Kill the running programs' groups when this process is told to stop.

    Call it from the main thread before starting programs from other threads (signal
    handlers can only be set from the main thread); run() calls it itself.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _GUARDED:
        current = signal.getsignal(sig)
        if current is not _stop_all:
            _previous[sig] = current
            signal.signal(sig, _stop_all)


def run(argv, timeout, env=None, stdin=None):
    """Run argv for at most `timeout` seconds: (rc, stdout, stderr) as text.

    Raises CommandTimeout (its group killed) past the limit, OSError when argv[0]
    cannot be started. The group is killed after a normal exit too, so a child the
    program left running does not outlive it.
    """
    if not timeout or timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds, got %r" % (timeout,))
    guard()
    environ = dict(os.environ, LC_ALL="C", LANG="C")
    environ.update(env or {})
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ,
                            start_new_session=True, close_fds=True)
    with _lock:
        _running.add(proc.pid)
    try:
        try:
            out, err = proc.communicate(input=stdin, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            partial = decode(exc.stdout) + decode(exc.stderr)
            _kill_group(proc.pid, signal.SIGTERM)
            try:
                out, err = proc.communicate(timeout=TERM_GRACE)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid, signal.SIGKILL)
                try:
                    out, err = proc.communicate(timeout=REAP_WAIT)
                except subprocess.TimeoutExpired:
                    for pipe in (proc.stdout, proc.stderr):
                        pipe.close()
                    raise CommandTimeout(argv, timeout, partial, unkillable=True)
            raise CommandTimeout(argv, timeout, partial + decode(out) + decode(err))
        return proc.returncode, decode(out), decode(err)
    finally:
        _kill_group(proc.pid, signal.SIGKILL)  # whatever the program left in its group
        with _lock:
            _running.discard(proc.pid)


def run_module_tool(module, argv, timeout, ok=(0,), env=None):
    """rc, stdout, stderr of argv run by a module; fail_json naming the command, the limit
    and the last output line when it times out or cannot start, and the rc when it is not
    in `ok` (None: any rc)."""
    try:
        rc, out, err = run(argv, timeout, env=env)
    except CommandTimeout as exc:
        module.fail_json(msg=str(exc), cmd=argv, timeout=timeout, stdout=exc.output)
    except OSError as exc:
        module.fail_json(msg="cannot run %s: %s" % (argv[0], exc), cmd=argv)
    if ok is not None and rc not in ok:
        module.fail_json(msg="%s failed (rc=%d): %s" % (" ".join(argv), rc, last_line(err or out) or "no output"),
                         rc=rc, stdout=out, stderr=err, cmd=argv)
    return rc, out, err


def run_tool(module, argv, timeout):
    """stdout of argv (a hardware tool); the module fails on a timeout or a non-zero exit."""
    return run_module_tool(module, argv, timeout)[1]


def remaining(deadline, cap):
    """Seconds left until a monotonic deadline, at most cap and at least 1."""
    return max(1.0, min(cap, deadline - time.monotonic()))


def require_positive(module, *names):
    """Fail naming the first option that is not above 0 (a limit of 0 would mean none)."""
    for name in names:
        value = module.params.get(name)
        if value is not None and value <= 0:
            module.fail_json(msg="%s must be above 0, got %s (it is a limit: 0 or less would mean none)" % (name, value))
