# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How fast model_copy sends weights to several receivers through rsync daemons, against one
TCP stream and a raw read of the same files, on one host of many cores, in one run:

  python3 scripts/bench_copy.py DIR [--files 8] [--mib 1024] [--receivers 3] [--streams 1,4,8]
                                    [--cached] [--out result.json]

What a 4-node cluster's head does when model_sync_transport is rsyncd, with the network taken
out: the receivers are rsync daemons on this host's loopback (one per receiver, configured
as model_sync's transfer_rsyncd.yml configures a node's), so the bound is the CPUs, the
memory and the disk, not a link. It needs rsync, and ansible-core importable (the module runs
as Ansible runs it: the module file with its arguments in a JSON file).

Writes FILES shards of MIB MiB of random bytes under DIR/src, then times:
  - a raw sequential read of them (8 MiB reads), from the disk where the page cache can be
    dropped (root) or the file's pages evicted (posix_fadvise), and from the page cache;
  - one TCP stream over 127.0.0.1 (socket.sendfile of the shards into a reader that discards);
  - for each --streams value, model_copy from DIR/src to every receiver at once (one module
    run per receiver, started together), the receivers' copies removed and the shards'
    pages evicted before each round (--cached: kept in the page cache, read once first, so
    that the source's disk does not bound the copy); each receiver's rate is its bytes over the module's own
    seconds, the aggregate all bytes over the round's wall time.
Prints and writes JSON; the ratios are of the copy's rates to one TCP stream's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_files import drop_caches, raw_read, report, shards

REPO = Path(__file__).resolve().parents[1]
MODULE = REPO / "plugins" / "modules" / "model_copy.py"
BASE_PORT = 18730
# model_sync's rsync options for the rsyncd transport (roles/model_sync/vars/main.yml) and
# those of its model_copy task (roles/model_sync/tasks/weights_copy.yml)
RSYNC = ["rsync", "--archive", "--copy-links", "--partial", "--one-file-system", "--timeout=300", "--contimeout=20",
         "--whole-file", "--ignore-times"]


def gb_s(nbytes, seconds):
    return round(nbytes / seconds / 1e9, 3)


def evict(paths):
    """Drop the page cache (root), else each file's clean pages (posix_fadvise): how it did."""
    if drop_caches():
        return "drop_caches"
    for path in paths:
        with open(path, "rb") as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return "posix_fadvise"


def timed_read(paths):
    start = time.monotonic()
    return raw_read(paths), time.monotonic() - start


def tcp_stream(paths):
    """One TCP connection over loopback: the shards sent with sendfile, read and discarded."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    got = {}

    def reader():
        conn = server.accept()[0]
        buf = bytearray(4 << 20)
        view, n = memoryview(buf), 0
        while True:
            k = conn.recv_into(view)
            if not k:
                break
            n += k
        got["bytes"], got["end"] = n, time.monotonic()
        conn.close()

    thread = threading.Thread(target=reader)
    thread.start()
    start = time.monotonic()
    with socket.create_connection(server.getsockname(), timeout=60) as client:
        for path in paths:
            with open(path, "rb") as f:
                client.sendfile(f)
    thread.join(300)
    server.close()
    return got["bytes"], got["end"] - start


class Receiver:
    """An rsync daemon on loopback with one write-only module, as transfer_rsyncd.yml sets up."""

    def __init__(self, root, index):
        self.dir = root / ("receiver-%d" % index)
        self.dest = self.dir / "model"
        self.port = BASE_PORT + index
        self.dir.mkdir(parents=True)
        (self.dir / "secrets").write_text("sparkops:bench-password\n")
        (self.dir / "secrets").chmod(0o600)
        (self.dir / "password").write_text("bench-password\n")
        (self.dir / "password").chmod(0o600)
        user = "root" if os.geteuid() == 0 else str(os.geteuid())
        (self.dir / "rsyncd.conf").write_text(
            "address = 127.0.0.1\nport = %d\nuse chroot = no\npid file = %s/pid\n"
            "[sparkops]\n    path = %s\n    read only = no\n    write only = yes\n    list = no\n"
            "    uid = %s\n    gid = %s\n    auth users = sparkops\n    secrets file = %s/secrets\n"
            "    strict modes = yes\n    hosts allow = 127.0.0.1\n    hosts deny = *\n    max connections = 64\n"
            "    lock file = %s/lock\n    timeout = 300\n"
            % (self.port, self.dir, self.dest, user, os.getegid() if user != "root" else "root", self.dir, self.dir))
        self.proc = subprocess.Popen(["rsync", "--daemon", "--no-detach", "--config=%s" % (self.dir / "rsyncd.conf")],
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "daemon.log", "wb"),
                                     start_new_session=True)
        for _attempt in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the rsync daemon on port %d did not listen: %s" % (self.port, self.dir / "daemon.log"))

    def empty(self):
        shutil.rmtree(self.dest, ignore_errors=True)
        self.dest.mkdir()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def copy_round(src, files, receivers, streams, work):
    """model_copy to every receiver at once; each module run's result and the round's wall time."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(work / "collections")] + sys.path))
    procs = []
    start = time.monotonic()
    for r in receivers:
        args = work / ("args-%d.json" % r.port)
        args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
            "src": str(src), "dest": "rsync://sparkops@127.0.0.1:%d/sparkops/" % r.port, "files": files,
            "rsync": RSYNC + ["--password-file=%s" % (r.dir / "password")], "streams": streams, "timeout": 3600}}))
        procs.append(subprocess.Popen([sys.executable, str(MODULE), str(args)], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE))
    results = []
    try:
        for proc in procs:
            # the module's own timeout (3600 s) ends its rsync streams first
            out, err = proc.communicate(timeout=3660)
            try:
                result = json.loads(out)
            except ValueError:
                raise RuntimeError("model_copy printed no JSON (rc %s): %s %s"
                                   % (proc.returncode, out[-400:], err[-400:]))
            if result.get("failed"):
                raise RuntimeError("model_copy failed: %s" % result.get("msg"))
            results.append(result)
    finally:  # a failed round leaves no module run behind
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results, time.monotonic() - start


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--receivers", type=int, default=3)
    ap.add_argument("--streams", default="1,4,8")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--cached", action="store_true", help="keep the shards in the page cache for the copies")
    args = ap.parse_args(argv)
    if shutil.which("rsync") is None:
        sys.exit("rsync is not on PATH")
    src = args.dir / "src"
    paths = shards(src, args.files, args.mib)
    files = {p.name: p.stat().st_size for p in paths}
    total = sum(files.values())
    how = evict(paths)
    n, seconds = timed_read(paths)
    cold = {"seconds": round(seconds, 3), "gb_s": gb_s(n, seconds), "evicted_by": how}
    n, seconds = timed_read(paths)
    warm = {"seconds": round(seconds, 3), "gb_s": gb_s(n, seconds)}
    n, seconds = tcp_stream(paths)
    tcp = {"bytes": n, "seconds": round(seconds, 3), "gb_s": gb_s(n, seconds)}
    result = {"host": platform.node(), "cpus": os.cpu_count(), "rsync": subprocess.run(
        ["rsync", "--version"], capture_output=True, text=True, timeout=10, check=False).stdout.splitlines()[0],
        "files": args.files, "bytes": total, "receivers": args.receivers, "shards_cached_for_copies": args.cached,
        "raw_read_disk": cold, "raw_read_page_cache": warm, "tcp_one_stream_loopback": tcp, "rounds": []}
    work = Path(tempfile.mkdtemp(prefix="bench-copy-", dir=args.dir))
    (work / "collections" / "ansible_collections" / "sparkops").mkdir(parents=True)
    (work / "collections" / "ansible_collections" / "sparkops" / "cluster").symlink_to(REPO)
    receivers = []
    try:
        receivers = [Receiver(work, i) for i in range(args.receivers)]
        for streams in (int(s) for s in args.streams.split(",")):
            for r in receivers:
                r.empty()
            if args.cached:
                raw_read(paths)
                how = None
            else:
                how = evict(paths)
            results, wall = copy_round(src, files, receivers, streams, work)
            for r in receivers:  # the copy is whole: every file, every byte
                copied = {p.name: p.stat().st_size for p in r.dest.iterdir()}
                if copied != files:
                    raise RuntimeError("receiver %s got %s, not %s" % (r.dest, copied, files))
            per = [gb_s(total, res["seconds"]) for res in results]
            together = total * len(receivers) / wall / 1e9
            result["rounds"].append({
                "streams": streams, "wall_seconds": round(wall, 3), "module_seconds": [res["seconds"] for res in results],
                "per_receiver_gb_s": per, "all_receivers_gb_s": round(together, 3),
                "per_receiver_of_tcp": round(min(per) / tcp["gb_s"], 3),
                "all_of_tcp": round(together / tcp["gb_s"], 3),
                "shards_evicted_by": how})
    finally:
        for r in receivers:
            r.stop()
        shutil.rmtree(work, ignore_errors=True)
    report(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
