"""Model manifests (module_utils/_sync.py) on real directory trees with Hugging Face
cache symlinks, as `hf download` leaves them: snapshots/<rev>/<file> -> ../../blobs/<hash>."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils import _sync

WEIGHTS = os.urandom(3 * 1024 * 1024 + 17)
CONFIG = b'{"architectures": ["Qwen2ForCausalLM"]}\n'


def hf_cache(root):
    """models--org--name/{blobs,refs,snapshots/abc123} with the snapshot files as links."""
    repo = root / "models--org--tiny"
    (repo / "blobs").mkdir(parents=True)
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    for name, data in (("model.safetensors", WEIGHTS), ("config.json", CONFIG)):
        digest = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / digest).write_bytes(data)
        os.symlink(os.path.join("..", "..", "blobs", digest), repo / "snapshots" / "abc123" / name)
    return repo / "snapshots" / "abc123"


def test_manifest_resolves_cache_links(tmp_path):
    snap = hf_cache(tmp_path)
    m = _sync.manifest(str(snap))
    assert m["count"] == 2 and m["total_bytes"] == len(WEIGHTS) + len(CONFIG) and m["dangling"] == []
    assert m["files"]["model.safetensors"]["sha256"] == hashlib.sha256(WEIGHTS).hexdigest()
    assert m["files"]["model.safetensors"]["link"].endswith("/blobs/" + hashlib.sha256(WEIGHTS).hexdigest())


def test_copy_that_kept_links_is_dangling_and_not_in_sync(tmp_path):
    head = _sync.manifest(str(hf_cache(tmp_path / "head")))
    # what `cp -a` / `rsync -a` of the snapshot alone gives a worker: links into a blobs/ it lacks
    worker = tmp_path / "worker" / "snap"
    shutil.copytree(tmp_path / "head" / "models--org--tiny" / "snapshots" / "abc123", worker, symlinks=True)
    diff = _sync.compare(head, _sync.manifest(str(worker)))
    assert diff["dangling"] == ["config.json", "model.safetensors"] and diff["missing"] == ["config.json", "model.safetensors"]
    assert diff["to_copy"] == ["config.json", "model.safetensors"]
    assert not _sync.in_sync(diff)
    assert _sync.describe("spark-beta", diff).startswith("spark-beta: 2 missing (config.json, model.safetensors); ")


def test_resolved_copy_is_in_sync_and_a_truncated_file_is_not(tmp_path):
    snap = hf_cache(tmp_path / "head")
    head = _sync.manifest(str(snap))
    worker = tmp_path / "worker"
    shutil.copytree(snap, worker, symlinks=False)  # links resolved, as rsync -L does
    m = _sync.manifest(str(worker))
    assert _sync.in_sync(_sync.compare(head, m)) and all(f["link"] is None for f in m["files"].values())
    (worker / "model.safetensors").write_bytes(WEIGHTS[:1024])
    diff = _sync.compare(head, _sync.manifest(str(worker)))
    assert diff["differ"] == ["model.safetensors (%d B on the head, 1024 B here)" % len(WEIGHTS)]
    assert diff["to_copy"] == ["model.safetensors"]


def test_same_size_other_bytes_is_caught_by_checksum_only(tmp_path):
    snap = hf_cache(tmp_path / "head")
    head = _sync.manifest(str(snap))
    worker = tmp_path / "worker"
    shutil.copytree(snap, worker, symlinks=False)
    (worker / "model.safetensors").write_bytes(bytes(len(WEIGHTS)))
    diff = _sync.compare(head, _sync.manifest(str(worker)))
    assert diff["differ"] == ["model.safetensors (checksum differs)"] and diff["to_copy"] == ["model.safetensors"]
    sizes_only = _sync.compare(_sync.manifest(str(snap), checksum=False), _sync.manifest(str(worker), checksum=False))
    assert _sync.in_sync(sizes_only)


def test_extra_file_is_reported_but_does_not_break_sync(tmp_path):
    snap = hf_cache(tmp_path / "head")
    worker = tmp_path / "worker"
    shutil.copytree(snap, worker, symlinks=False)
    (worker / "notes.txt").write_text("x")
    diff = _sync.compare(_sync.manifest(str(snap)), _sync.manifest(str(worker)))
    assert diff["extra"] == ["notes.txt"] and _sync.in_sync(diff) and diff["to_copy"] == []


@pytest.mark.parametrize("checksum", [True, False])
def test_empty_directory(tmp_path, checksum):
    assert _sync.manifest(str(tmp_path), checksum)["count"] == 0


# --- the model path rsync --delete may write -----------------------------------------------

@pytest.mark.parametrize("path, words", [
    ("/etc/.", "resolves to /etc, which is not a directory below model_sync_roots"),
    ("/root/.ssh", "resolves to /root/.ssh"),
    ("/var/lib", "resolves to /var/lib"),
    ("/tmp/..", "resolves to /, which"),
    ("", "model_sync_path is empty"),
    ("models/x", "is relative"),
    ("/var/lib/sparkops/models", "not a directory below"),             # a root itself
    ("/var/lib/sparkops/models/../../..", "resolves to /var, which"),  # climbing out
])
def test_a_model_path_that_could_delete_a_system_is_refused(path, words):
    with pytest.raises(ValueError) as err:
        _sync.safe_model_path(path, ["/var/lib/sparkops/models", "/srv/models"], ismount=lambda p: False)
    assert words in str(err.value)


def test_a_symlink_out_of_the_roots_is_followed_and_refused(tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    (root / "qwen").symlink_to("/etc")
    with pytest.raises(ValueError, match="resolves to /etc"):
        _sync.safe_model_path(str(root / "qwen"), [str(root)])


def test_a_model_directory_below_a_root_is_resolved(tmp_path):
    root = tmp_path / "models"
    (root / "qwen").mkdir(parents=True)
    assert _sync.safe_model_path(str(root / "qwen") + "/", [str(root)]) == str((root / "qwen").resolve())
    with pytest.raises(ValueError, match="is a mount point"):
        _sync.safe_model_path(str(root / "qwen"), [str(root)], ismount=lambda p: True)


def test_the_manifest_module_refuses_before_reading(run_module, tmp_path):
    from ansible_collections.sparkops.cluster.plugins.modules import model_manifest
    failed, r = run_module(model_manifest, {"path": "/etc/.", "roots": [str(tmp_path)]})
    assert failed and "resolves to /etc" in r["msg"] and "manifest" not in r
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    failed, r = run_module(model_manifest, {"path": str(tmp_path / "m"), "roots": [str(tmp_path)]})
    assert not failed and r["realpath"] == str((tmp_path / "m").resolve()) and r["manifest"]["count"] == 1


def shards(root, sizes):
    """safetensors-like shards of the given sizes (bytes), random contents."""
    root.mkdir(parents=True, exist_ok=True)
    for i, size in enumerate(sizes):
        (root / ("model-%05d-of-%05d.safetensors" % (i + 1, len(sizes)))).write_bytes(os.urandom(size))
    return root


def test_checksums_in_parallel_equal_checksums_one_by_one(tmp_path):
    model = shards(tmp_path / "m", [1 << 20, 3 << 20, 17, 0, 2 << 20, 5 << 20])
    one = _sync.manifest(str(model), jobs=1)
    many = _sync.manifest(str(model), jobs=4)
    assert one == many and one["count"] == 6
    for rel, entry in many["files"].items():
        assert entry["sha256"] == hashlib.sha256((model / rel).read_bytes()).hexdigest(), rel


def test_jobs_files_are_hashed_at_once(tmp_path, monkeypatch):
    """Four jobs and four files: the four checksums must be running together to pass the
    barrier (a pool that hashed one at a time would leave it broken after its timeout)."""
    import threading
    barrier = threading.Barrier(4, timeout=30)
    real = _sync.sha256

    def together(path):
        barrier.wait()
        return real(path)

    monkeypatch.setattr(_sync, "sha256", together)
    model = shards(tmp_path / "m", [1 << 10] * 4)
    assert all(f["sha256"] for f in _sync.manifest(str(model), jobs=4)["files"].values())


def test_the_largest_files_are_hashed_first(tmp_path, monkeypatch):
    order = []
    real = _sync.sha256
    monkeypatch.setattr(_sync, "sha256", lambda path: order.append(os.path.getsize(path)) or real(path))
    _sync.manifest(str(shards(tmp_path / "m", [10, 5000, 300, 70000])), jobs=1)
    assert order == [70000, 5000, 300, 10]


def test_default_jobs_one_per_cpu_at_most_sixteen(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(20)), raising=False)
    assert _sync.default_jobs() == 16
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert _sync.default_jobs() == 2


def test_model_manifest_refuses_negative_jobs(run_module, tmp_path):
    from ansible_collections.sparkops.cluster.plugins.modules import model_manifest
    failed, r = run_module(model_manifest, {"path": str(tmp_path), "jobs": -1})
    assert failed and r["msg"] == "jobs must be 0 (one per CPU) or more, got -1"


def hashed(monkeypatch):
    """The files sha256() reads, in a list."""
    seen = []
    real = _sync.sha256
    monkeypatch.setattr(_sync, "sha256", lambda path: seen.append(os.path.basename(path)) or real(path))
    return seen


def test_an_unchanged_directory_is_not_read_again(tmp_path, monkeypatch):
    model = shards(tmp_path / "m", [1 << 20, 3 << 20, 17])
    first = _sync.manifest(str(model), cache={}, racy_ns=0)
    assert first["cached"] == 0 and first["hashed_bytes"] == (1 << 20) + (3 << 20) + 17 and len(first["cache"]) == 3
    seen = hashed(monkeypatch)
    second = _sync.manifest(str(model), cache=first["cache"], racy_ns=0)
    assert seen == [] and second["cached"] == 3 and second["hashed_bytes"] == 0
    assert second["files"] == first["files"]


def tick_after(ctime_ns, probe):
    """Wait until the file system's clock has moved past ctime_ns (a condition, bounded)."""
    for dummy in range(100000):
        probe.write_bytes(b"x")
        if probe.stat().st_ctime_ns > ctime_ns:
            return
    raise AssertionError("the file system's clock did not move")


def test_a_file_rewritten_with_its_size_and_mtime_kept_is_read_again(tmp_path, monkeypatch):
    model = shards(tmp_path / "m", [4096, 4096])
    first = _sync.manifest(str(model), cache={}, racy_ns=0)
    victim = model / "model-00001-of-00002.safetensors"
    st = victim.stat()
    tick_after(st.st_ctime_ns, tmp_path / "probe")
    victim.write_bytes(os.urandom(4096))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))  # what a careless (or hostile) copy leaves
    seen = hashed(monkeypatch)
    second = _sync.manifest(str(model), cache=first["cache"], racy_ns=0)
    assert seen == [victim.name] and second["cached"] == 1
    assert second["files"][victim.name]["sha256"] == hashlib.sha256(victim.read_bytes()).hexdigest()
    assert second["files"][victim.name]["sha256"] != first["files"][victim.name]["sha256"]


def test_a_file_changed_just_now_is_not_cached(tmp_path):
    model = shards(tmp_path / "m", [10])
    m = _sync.manifest(str(model), cache={})  # the default window: the shard was written just now
    assert m["files"]["model-00001-of-00001.safetensors"]["sha256"] and m["cache"] == {}


def test_the_cache_file_round_trip_and_a_broken_one(tmp_path):
    path = _sync.cache_file(str(tmp_path / "cache"), str(tmp_path / "m"))
    assert _sync.load_cache(path) == ({}, None)
    entries = {"/m/a": [1, 2, 3, 4, 5, "ab"]}
    _sync.save_cache(path, entries)
    assert _sync.load_cache(path) == (entries, None)
    assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == "0o700"
    with open(path, "wb") as fh:
        fh.write(b"\xff{not json")
    cache, warning = _sync.load_cache(path)
    assert cache == {} and warning.startswith("manifest cache %s ignored (" % path)
    with open(path, "w") as fh:
        fh.write('{"version": 99, "entries": {}}')
    assert _sync.load_cache(path)[1].endswith("(not a version 1 cache): every file is hashed again")


def test_model_manifest_caches_and_rehash_reads_all(run_module, tmp_path, monkeypatch):
    from ansible_collections.sparkops.cluster.plugins.modules import model_manifest
    model = shards(tmp_path / "m", [100, 200])
    monkeypatch.setattr(_sync, "RACY_NS", 0)  # the shards were written just now
    args = {"path": str(model), "cache_dir": str(tmp_path / "cache")}
    failed, r = run_module(model_manifest, args)
    assert not failed and r["manifest"]["cached"] == 0 and "cache" not in r["manifest"]
    failed, r = run_module(model_manifest, args)
    assert not failed and r["manifest"]["cached"] == 2 and r["manifest"]["hashed_bytes"] == 0
    failed, r = run_module(model_manifest, dict(args, rehash=True))
    assert not failed and r["manifest"]["cached"] == 0 and r["manifest"]["hashed_bytes"] == 300


# --- split_streams: the files of a parallel copy ---

def test_split_streams_balances_bytes_largest_first():
    # a checkpoint's shape: equal shards, a few small files
    sizes = {"model-%05d-of-00008.safetensors" % i: 4 * 2**30 for i in range(1, 9)}
    sizes.update({"config.json": 700, "tokenizer.json": 11 * 2**20, "model.safetensors.index.json": 60000})
    lists = _sync.split_streams(sizes, 4)
    assert len(lists) == 4
    assert sorted(p for paths in lists for p in paths) == sorted(sizes)  # every file once
    loads = [sum(sizes[p] for p in paths) for paths in lists]
    assert max(loads) - min(loads) <= max(sizes.values())
    assert all(paths == sorted(paths) for paths in lists)


def test_split_streams_fewer_files_than_streams_and_one_stream():
    assert _sync.split_streams({"a": 1, "b": 2}, 8) == [["b"], ["a"]]
    assert _sync.split_streams({"a": 1, "b": 2}, 1) == [["a", "b"]]
    assert _sync.split_streams({}, 4) == []


@pytest.mark.parametrize("streams", [0, -1, "4", None])
def test_split_streams_refuses_a_bad_count(streams):
    with pytest.raises(ValueError, match="streams must be 1 or more"):
        _sync.split_streams({"a": 1}, streams)


# --- rsync_local_dest: which destinations the copy creates itself ---

@pytest.mark.parametrize("dest, local", [
    ("/var/lib/sparkops/models/x", "/var/lib/sparkops/models/x"),
    ("relative/dir", "relative/dir"),
    ("./with:colon/after-slash", "./with:colon/after-slash"),
    ("root@192.168.100.11:", None),
    ("192.168.100.11:/models", None),
    ("host::module/path", None),
    ("rsync://sparkops@192.168.100.11:8873/model/", None),
])
def test_rsync_local_dest_follows_rsyncs_rule(dest, local):
    assert _sync.rsync_local_dest(dest) == local


# --- no second full read: the checksums a verified copy vouches for (model_sync, #41) ---------
ITEMIZED = os.path.join(os.path.dirname(__file__), "..", "fixtures", "rsync_itemize_changes.txt")


def test_the_files_rsync_wrote_are_read_from_its_itemized_output():
    with open(ITEMIZED) as fh:
        lines = fh.read().splitlines()
    # deletions, directories and the root's time are no written file; an escaped name stays escaped
    assert _sync.itemized_received(lines) == ["model-00001-of-00002.safetensors", "sub/with space.safetensors",
                                              "config.json", "new\\#012line.bin"]
    assert _sync.itemized_received(None) == [] and _sync.itemized_received([None, 3, ">f"]) == []


def test_a_verified_copy_vouches_only_for_what_it_wrote_and_the_head_hashed(tmp_path):
    (tmp_path / "a.safetensors").write_bytes(b"a" * 10)
    (tmp_path / "config.json").write_bytes(CONFIG)
    head = _sync.manifest(str(tmp_path))
    head["files"]["unhashed.bin"] = {"size": 1, "sha256": None, "link": None}
    known = _sync.verified_copy(head, ["a.safetensors", "unhashed.bin", "not-on-the-head"])
    assert known == {"a.safetensors": {"size": 10, "sha256": hashlib.sha256(b"a" * 10).hexdigest()}}


def test_known_checksums_are_taken_by_size_and_cached_and_a_wrong_size_is_read(tmp_path):
    node = tmp_path / "node"
    node.mkdir()
    (node / "a.safetensors").write_bytes(b"a" * 10)
    (node / "b.safetensors").write_bytes(b"b" * 20)
    (node / "config.json").write_bytes(CONFIG)
    vouched = "f" * 64  # not the file's real SHA-256: the manifest takes what it is given
    known = {"a.safetensors": {"size": 10, "sha256": vouched},
             "b.safetensors": {"size": 21, "sha256": "0" * 64},   # another size: read
             "config.json": {"size": len(CONFIG), "sha256": "not hex"}}  # not a SHA-256: read
    first = _sync.manifest(str(node), cache={}, racy_ns=0, known=known)
    assert first["files"]["a.safetensors"]["sha256"] == vouched
    assert first["files"]["b.safetensors"]["sha256"] == hashlib.sha256(b"b" * 20).hexdigest()
    assert first["trusted"] == 1 and first["trusted_bytes"] == 10 and first["hashed_bytes"] == 20 + len(CONFIG)
    # what was taken enters the cache: the next listing reads nothing
    second = _sync.manifest(str(node), cache=first["cache"], racy_ns=0)
    assert second["cached"] == 3 and second["hashed_bytes"] == 0 and second["files"] == first["files"]


def _diff(missing=(), differ=()):
    return {"missing": list(missing), "differ": ["%s (checksum differs)" % r for r in differ],
            "extra": [], "dangling": [], "to_copy": sorted(list(missing) + list(differ))}


ORDER = ["alpha", "beta", "gamma", "delta"]
SHARDS = ["a.safetensors", "b.safetensors", "config.json"]


def test_a_cold_start_relays_every_file_down_the_chain_in_play_order():
    diffs = {"alpha": _diff(), "beta": _diff(SHARDS), "gamma": _diff(SHARDS), "delta": _diff(SHARDS)}
    plan = _sync.relay_plan(ORDER, "alpha", diffs)
    assert [plan[h]["upstream"] for h in ORDER] == [None, "alpha", "beta", "gamma"]
    assert plan["beta"]["wait"] == [] and plan["gamma"]["wait"] == SHARDS and plan["delta"]["wait"] == SHARDS
    assert all(plan[h]["trusted"] == SHARDS for h in ORDER[1:])  # every hop received them in this copy
    assert all(plan[h]["stale"] == [] for h in ORDER)  # nothing stale: they were missing


def test_a_fan_out_sends_from_the_head_and_trusts_what_it_sent():
    diffs = {"alpha": _diff(), "beta": _diff(SHARDS), "gamma": _diff(SHARDS), "delta": _diff(SHARDS)}
    plan = _sync.relay_plan(ORDER, "alpha", diffs, relay=False)
    assert [plan[h]["upstream"] for h in ORDER] == [None, "alpha", "alpha", "alpha"]
    assert all(plan[h]["wait"] == [] and plan[h]["stale"] == [] and plan[h]["trusted"] == SHARDS for h in ORDER[1:])


def test_a_relay_skips_nodes_in_sync_and_trusts_only_what_every_hop_received():
    # beta is in sync; gamma lacks a shard and holds another config.json; delta lacks everything:
    # gamma forwards config.json as it lands (its stale copy removed first), b.safetensors
    # from its own older copy (not trusted: delta hashes it) and a.safetensors as it lands
    diffs = {"alpha": _diff(), "beta": _diff(), "gamma": _diff(["a.safetensors"], ["config.json"]),
             "delta": _diff(SHARDS)}
    plan = _sync.relay_plan(ORDER, "alpha", diffs)
    assert plan["beta"]["upstream"] is None
    assert plan["gamma"] == {"upstream": "alpha", "wait": [], "stale": ["config.json"],
                             "trusted": ["a.safetensors", "config.json"]}
    assert plan["delta"] == {"upstream": "gamma", "wait": ["a.safetensors", "config.json"], "stale": [],
                             "trusted": ["a.safetensors", "config.json"]}


def test_a_node_with_only_a_dangling_link_gets_the_heads_exact_pass_and_is_no_relay():
    diffs = {"alpha": _diff(), "beta": dict(_diff(), dangling=["x"]), "gamma": _diff(SHARDS)}
    plan = _sync.relay_plan(ORDER[:3], "alpha", diffs)
    assert plan["beta"]["upstream"] == "alpha" and plan["beta"]["trusted"] == []
    assert plan["gamma"]["upstream"] == "alpha" and plan["gamma"]["trusted"] == SHARDS


def test_ready_files_are_those_at_their_path_with_their_size(tmp_path):
    (tmp_path / "whole").write_bytes(b"x" * 10)
    (tmp_path / "partial").write_bytes(b"x" * 4)
    (tmp_path / ".whole2.Xy12ab").write_bytes(b"x" * 10)  # rsync's temporary name
    (tmp_path / "dir").mkdir()
    sizes = {"whole": 10, "partial": 10, "whole2": 10, "dir": 0}
    assert _sync.ready_files(str(tmp_path), list(sizes), sizes) == ["whole"]
    assert _sync.tree_bytes(str(tmp_path)) == 24
