"""The supervisor of `vllm serve` in an engine container: one program for the deploy's tasks
(docker exec CONTAINER python3 -c "$(this file)" VERB ...) and for the persistent mode's boot
script, which runs it the same way. Python 3 of the engine image, standard library only.

    start DIR STAMP ARGV...  write STAMP, this process's PID and start time under DIR, then
                             become ARGV (the same PID), its output DIR/vllm.log
    wait DIR STAMP SECONDS   wait until the vllm serve a start just began (docker exec
                             --detach returns before it records itself) runs under DIR with
                             STAMP; print "started PID" (0), or that it is not running (1)
    probe DIR                print the stamp (empty when none), then the state letter of the
                             vllm serve DIR records (R, S, T, ...; "none" when it does not run)
    stop DIR SECONDS         SIGINT to that vllm serve, wait until neither it nor any process of
                             its group (its engine core and workers: docker exec made it the
                             group's leader) is left, then SIGKILL the group; print what happened

A detached start returns before the new record is written: without the wait, a probe or a
stop right after it read the previous record (or none) and missed the process it started.
A PID recorded before the engine container restarted can belong to another process: the
start time (field 22 of /proc/PID/stat) recorded with it tells them apart. Killing vllm serve
alone once left its engine core and worker running, orphaned and holding their memory: a
load interrupted by another node's failure ignores SIGINT until the kill.
"""

import os
import signal
import sys
import time

GONE = ("Z", "X")  # a zombie or a dead process holds no memory


def _stat(pid):
    """(state, ppid, pgrp, start time) of a process from /proc/PID/stat, or None."""
    try:
        with open("/proc/%s/stat" % pid, "rb") as fh:
            raw = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()  # the name may hold spaces and parentheses
    return fields[0], int(fields[1]), int(fields[2]), fields[19]


def _read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def alive(state_dir):
    """The PID of the vllm serve the directory records, when it still runs as that process."""
    pid = _read(os.path.join(state_dir, "vllm.pid"))
    if not pid.isdigit():
        return None
    stat = _stat(pid)
    started = _read(os.path.join(state_dir, "vllm.start"))
    if stat is None or (started and stat[3] != started):
        return None
    return int(pid)


def start(state_dir, stamp, argv):
    os.makedirs(state_dir, exist_ok=True)
    with open(os.path.join(state_dir, "vllm.stamp"), "w") as fh:
        fh.write(stamp)
    with open(os.path.join(state_dir, "vllm.pid"), "w") as fh:
        fh.write("%d\n" % os.getpid())
    with open(os.path.join(state_dir, "vllm.start"), "w") as fh:
        fh.write("%s\n" % _stat("self")[3])
    log = os.open(os.path.join(state_dir, "vllm.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.execvp(argv[0], argv)


def wait(state_dir, stamp, seconds):
    """The caller stopped any earlier vllm serve first: a live record with the planned stamp
    is this start's (a stale PID's start time does not match; the start time is written
    after the PID)."""
    deadline = time.monotonic() + seconds
    while True:
        pid = alive(state_dir)
        if pid is not None and _read(os.path.join(state_dir, "vllm.stamp")) == stamp.strip():
            print("started %d" % pid)
            return 0
        if time.monotonic() >= deadline:
            print("vllm serve is not running %ds after its start: its log is %s"
                  % (seconds, os.path.join(state_dir, "vllm.log")))
            return 1
        time.sleep(0.2)


def probe(state_dir):
    print(_read(os.path.join(state_dir, "vllm.stamp")))
    pid = alive(state_dir)
    stat = _stat(pid) if pid else None
    print(stat[0] if stat else "none")


def _left(pid):
    """Whether the process or any process of its group is still there (and not a zombie)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(entry)
            if stat and stat[0] not in GONE and (int(entry) == pid or stat[2] == pid):
                return True
    return False


def _wait(pid, seconds):
    waited = 0
    while _left(pid) and waited < seconds:
        time.sleep(1)
        waited += 1
    return waited


def stop(state_dir, seconds):
    pid = alive(state_dir)
    if pid is None:
        print("not running")
        return 0
    os.kill(pid, signal.SIGINT)
    waited = _wait(pid, seconds)
    if _left(pid):
        for target in (-pid, pid):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError:
                pass
        _wait(pid, 10)
        print("killed after %ds" % seconds)
    else:
        print("stopped in %ds" % waited)
    for name in ("vllm.pid", "vllm.start"):
        try:
            os.unlink(os.path.join(state_dir, name))
        except OSError:
            pass
    return 0


def main(args):
    verb = args[0] if args else ""
    if verb == "start" and len(args) >= 4:
        start(args[1], args[2], args[3:])
    elif verb == "wait" and len(args) == 4 and args[3].isdigit():
        return wait(args[1], args[2], int(args[3]))
    elif verb == "probe" and len(args) == 2:
        probe(args[1])
    elif verb == "stop" and len(args) == 3 and args[2].isdigit():
        return stop(args[1], int(args[2]))
    else:
        sys.stderr.write("usage: supervisor start DIR STAMP ARGV... | wait DIR STAMP SECONDS | probe DIR"
                         " | stop DIR SECONDS\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
