"""model_copy: several rsync streams at once, with the real rsync between two local
directories (the role runs it from the head to a node over the rail)."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils import _sync
from ansible_collections.sparkops.cluster.plugins.modules import model_copy

pytestmark = pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed (scripts/lib.sh installs it)")

RSYNC = ["rsync", "--archive", "--copy-links", "--partial", "--timeout=60"]


def checkpoint(root):
    """A small checkpoint's layout: shards, an index, a config, a file in a subdirectory, a link."""
    (root / "sub").mkdir(parents=True)
    for i in range(1, 6):
        (root / ("model-%05d-of-00005.safetensors" % i)).write_bytes(os.urandom(200_000 + i * 1000))
    (root / "model.safetensors.index.json").write_text("{}")
    (root / "config.json").write_text('{"architectures": ["Qwen2ForCausalLM"]}')
    (root / "sub" / "tokenizer.json").write_text("{}" * 1000)
    (root / "blob").write_bytes(b"weights behind a link")
    (root / "linked.bin").symlink_to(root / "blob")
    return _sync.manifest(str(root))


def test_streams_copy_every_file_with_its_bytes(run_module, tmp_path):
    src, dst = tmp_path / "head", tmp_path / "node"
    dst.mkdir()
    head = checkpoint(src)
    failed, r = run_module(model_copy, {"src": str(src), "dest": str(dst), "files": head["files"], "rsync": RSYNC,
                                        "streams": 3})
    assert not failed, r
    assert r["changed"] and len(r["streams"]) == 3 and all(s["rc"] == 0 for s in r["streams"])
    assert sum(s["files"] for s in r["streams"]) == head["count"] == 10
    assert r["bytes"] == head["total_bytes"] == sum(s["bytes"] for s in r["streams"])
    node = _sync.manifest(str(dst))
    assert _sync.in_sync(_sync.compare(head, node)), _sync.compare(head, node)
    assert not os.path.islink(dst / "linked.bin")  # --copy-links: the bytes, not a link into a cache


def test_a_missing_local_destination_is_created_before_the_streams(run_module, tmp_path):
    # each rsync creates a missing destination itself: at once, all but the first can fail with
    # 'mkdir ... failed: File exists (17)' (seen in CI, 2026-12-03; 1 of 320 plain rsyncs here)
    src, dst = tmp_path / "head", tmp_path / "new" / "node"
    head = checkpoint(src)
    failed, r = run_module(model_copy, {"src": str(src), "dest": str(dst), "files": head["files"], "rsync": RSYNC,
                                        "streams": 8})
    assert not failed, r
    assert len(r["streams"]) == 8 and all(s["rc"] == 0 for s in r["streams"])
    assert _sync.in_sync(_sync.compare(head, _sync.manifest(str(dst))))


def test_check_mode_plans_and_copies_nothing(run_module, tmp_path):
    src, dst = tmp_path / "head", tmp_path / "node"
    dst.mkdir()
    head = checkpoint(src)
    failed, r = run_module(model_copy, {"src": str(src), "dest": str(dst), "files": head["files"], "rsync": RSYNC},
                           check_mode=True)
    assert not failed and r["changed"] and len(r["streams"]) == 4 and r["seconds"] == 0.0
    assert all(s["rc"] is None for s in r["streams"])
    assert not os.listdir(dst)


def test_a_failed_stream_is_named(run_module, tmp_path):
    src = tmp_path / "head"
    head = checkpoint(src)
    (src / "config.json").unlink()  # listed, then gone: rsync exits 23 for that stream
    failed, r = run_module(model_copy, {"src": str(src), "dest": str(tmp_path / "node"), "files": head["files"],
                                        "rsync": RSYNC, "streams": 2})
    assert failed
    assert r["msg"].startswith("1 of 2 copy streams to %s failed; first: rsync stream " % (tmp_path / "node"))
    assert "exited 23" in r["msg"] and "config.json" in r["msg"]


@pytest.mark.parametrize("files, why", [
    ({"a": {"sha256": "00"}}, "files['a'] has no size in bytes"),
    ({"../etc/passwd": {"size": 1}}, "is not a path inside src"),
    ({"/etc/passwd": {"size": 1}}, "is not a path inside src"),
    ({"a": {"size": True}}, "has no size in bytes"),
])
def test_bad_files_are_named(run_module, tmp_path, files, why):
    failed, r = run_module(model_copy, {"src": str(tmp_path), "dest": str(tmp_path), "files": files, "rsync": RSYNC})
    assert failed and why in r["msg"]


@pytest.mark.parametrize("option", ["streams", "timeout", "stall"])
def test_limits_must_be_positive(run_module, tmp_path, option):
    failed, r = run_module(model_copy, {"src": str(tmp_path), "dest": str(tmp_path), "files": {}, "rsync": RSYNC,
                                        option: 0})
    assert failed and option in r["msg"]


def test_a_hung_stream_is_killed_at_the_limit(run_module, tmp_path):
    src = tmp_path / "head"
    head = checkpoint(src)
    # rsync's --rsh is the hang: a remote shell that never answers (sleep), as a dead peer would
    failed, r = run_module(model_copy, {"src": str(src), "dest": "nobody@peer:", "files": head["files"],
                                        "rsync": ["rsync", "--archive", "--rsh", "sh -c 'sleep 613' peer"], "streams": 2,
                                        "timeout": 2})
    assert failed and r["msg"].startswith("2 of 2 copy streams to nobody@peer: failed") and re.search("did not finish within [0-9.]+s and was killed", r["msg"])
    assert all(s["rc"] is None and s["seconds"] < 30 for s in r["streams"])
    left = [pid for pid in os.listdir("/proc") if pid.isdigit() and b"sleep\x00613" in cmdline(pid)]
    assert not left, "processes left behind: %s" % left


def cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def test_a_relay_sends_each_file_as_it_lands(run_module, tmp_path):
    # this node (mid) receives the shards from an upstream while it sends them on to dst: an
    # rsync from head to mid runs beside the relay, started after it, so every file of wait_for
    # lands while the relay runs; config.json and the tokenizer mid holds already go at once
    import subprocess
    import threading
    head_dir, mid, dst = tmp_path / "head", tmp_path / "mid", tmp_path / "node"
    head = checkpoint(head_dir)
    mid.mkdir()
    (mid / "sub").mkdir()
    shutil.copy(head_dir / "config.json", mid / "config.json")
    shutil.copy(head_dir / "sub" / "tokenizer.json", mid / "sub" / "tokenizer.json")
    arriving = sorted(r for r in head["files"] if r.endswith(".safetensors"))
    upstream = {}

    def upstream_copy():
        upstream["rc"] = subprocess.run(RSYNC + ["--whole-file"] + [str(head_dir / r) for r in arriving] + [str(mid)],
                                        timeout=120, check=False).returncode

    timer = threading.Timer(1.5, upstream_copy)
    timer.start()
    try:
        failed, r = run_module(model_copy, {"src": str(mid), "dest": str(dst),
                                            "files": {k: v for k, v in head["files"].items()
                                                      if k in arriving or k in ("config.json", "sub/tokenizer.json")},
                                            "wait_for": arriving, "rsync": RSYNC, "streams": 2, "stall": 60})
    finally:
        timer.join()
    assert upstream["rc"] == 0
    assert not failed, r
    assert sum(s["files"] for s in r["streams"]) == len(arriving) + 2
    assert r["waited"] > 0  # the streams waited for the shards to land
    for rel in arriving + ["config.json", "sub/tokenizer.json"]:
        assert (dst / rel).read_bytes() == (head_dir / rel).read_bytes(), rel


def test_a_relay_whose_upstream_stopped_fails_naming_the_files(run_module, tmp_path):
    head_dir, mid = tmp_path / "head", tmp_path / "mid"
    head = checkpoint(head_dir)
    mid.mkdir()
    shutil.copy(head_dir / "config.json", mid / "config.json")
    shard = "model-00001-of-00005.safetensors"
    (mid / shard).write_bytes(b"half a shard")  # what --partial leaves of an interrupted transfer: not its size
    failed, r = run_module(model_copy, {"src": str(mid), "dest": str(tmp_path / "node"),
                                        "files": {"config.json": head["files"]["config.json"], shard: head["files"][shard]},
                                        "wait_for": [shard], "rsync": RSYNC, "stall": 2})
    assert failed
    assert "1 files did not land in %s, and nothing was written there for 2 s (stall)" % mid in r["msg"], r["msg"]
    assert "first: %s" % shard in r["msg"]
    assert (tmp_path / "node" / "config.json").exists()  # what was there went
    assert not (tmp_path / "node" / shard).exists()


def test_wait_for_names_only_files_of_the_copy(run_module, tmp_path):
    failed, r = run_module(model_copy, {"src": str(tmp_path), "dest": str(tmp_path / "n"), "files": {"a": {"size": 1}},
                                        "wait_for": ["b"], "rsync": RSYNC})
    assert failed and "wait_for names files that are not in files (b)" in r["msg"]
