"""The file_differs filter on what the real ansible.builtin.stat and ansible.builtin.find
modules return for files in a temporary directory."""

from __future__ import annotations

import grp
import os
import pwd

import pytest
from ansible.errors import AnsibleFilterError
from ansible.modules import find, stat

from ansible_collections.sparkops.cluster.plugins.filter.file_differs import FilterModule

differs = FilterModule().filters()["file_differs"]
ME, MY_GROUP = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def stat_of(run_module, path):
    failed, r = run_module(stat, {"path": str(path), "get_mime": False, "get_attributes": False})
    assert not failed
    return dict(r, item=str(path))


@pytest.fixture
def dropin(tmp_path):
    path = tmp_path / "60-sparkops.conf"
    path.write_text("[Login]\nRemoveIPC=no\n")
    path.chmod(0o644)
    return path


def test_the_same_content_mode_owner_and_group_is_no_write(run_module, dropin):
    st = stat_of(run_module, dropin)
    assert differs(st, content="[Login]\nRemoveIPC=no\n", mode="0644", owner=ME, group=MY_GROUP) is False
    # a loop of stats, the path picking one
    other = stat_of(run_module, dropin.parent / "missing.conf")
    assert differs({"results": [other, st]}, str(dropin), "[Login]\nRemoveIPC=no\n", "0644") is False


@pytest.mark.parametrize("change, want", [
    ("content", {"content": "[Login]\nRemoveIPC=yes\n"}),
    ("mode", {"mode": "0600"}),
    ("owner", {"owner": "nobody-of-this-test"}),
    ("group", {"group": "nogroup-of-this-test"}),
])
def test_any_difference_is_a_write(run_module, dropin, change, want):
    args = dict({"content": "[Login]\nRemoveIPC=no\n", "mode": "0644", "owner": ME, "group": MY_GROUP}, **want)
    assert differs(stat_of(run_module, dropin), **args) is True, change


def test_a_missing_file_a_directory_and_no_checksum_are_writes(run_module, dropin):
    assert differs(stat_of(run_module, dropin.parent / "missing.conf"), content="x") is True
    assert differs(stat_of(run_module, dropin.parent), mode="0755") is True  # not a regular file
    failed, r = run_module(stat, {"path": str(dropin), "get_checksum": False})
    assert differs(r, content="[Login]\nRemoveIPC=no\n") is True
    assert differs({"skipped": True}, content="x") is True


def test_find_results_count_like_stat(run_module, dropin, tmp_path):
    (tmp_path / "other.yaml").write_text("network: {}\n")
    failed, r = run_module(find, {"paths": [str(tmp_path)], "patterns": ["60-sparkops.conf", "absent.conf"],
                                  "get_checksum": True})
    assert not failed and len(r["files"]) == 1
    assert differs(r, str(dropin), "[Login]\nRemoveIPC=no\n", "0644", ME, MY_GROUP) is False
    assert differs(r, str(dropin), "[Login]\nRemoveIPC=yes\n") is True
    assert differs(r, str(tmp_path / "absent.conf"), "x") is True


def test_a_path_the_results_do_not_hold_is_named():
    with pytest.raises(AnsibleFilterError, match="no stat result for /etc/x among the 0 given"):
        differs({"results": []}, "/etc/x", "x")
    with pytest.raises(AnsibleFilterError, match="give a registered stat result"):
        differs("text", content="x")


def test_file_facts_reads_several_files_in_one_call_and_the_filter_takes_it(run_module, dropin, tmp_path):
    from ansible_collections.sparkops.cluster.plugins.modules import file_facts
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(dropin)
    paths = [str(dropin), str(tmp_path / "missing"), str(tmp_path / "dir"), str(tmp_path / "link")]
    failed, r = run_module(file_facts, {"paths": paths})
    assert not failed and not r["changed"] and list(r["files"]) == paths
    f = r["files"]
    # the same figures as ansible.builtin.stat's
    st = stat_of(run_module, dropin)["stat"]
    assert {k: f[str(dropin)][k] for k in ("mode", "pw_name", "gr_name", "checksum", "size")} == \
        {k: st[k] for k in ("mode", "pw_name", "gr_name", "checksum", "size")}
    assert f[paths[1]] == {"exists": False}
    assert f[paths[2]]["isdir"] and "checksum" not in f[paths[2]]
    assert f[paths[3]]["islnk"] and not f[paths[3]]["isreg"]  # the link itself, not its target
    assert differs(r, str(dropin), "[Login]\nRemoveIPC=no\n", "0644", ME, MY_GROUP) is False
    assert differs(r, paths[1], "x") is True and differs(r, paths[2], mode="0755") is True
    with pytest.raises(AnsibleFilterError, match="file_facts read no /etc/other"):
        differs(r, "/etc/other", "x")
    failed, r = run_module(file_facts, {"paths": ["relative/path"]})
    assert failed and r["msg"] == "paths must be absolute: relative/path"


def test_a_directory_is_judged_as_one(run_module, tmp_path):
    from ansible_collections.sparkops.cluster.plugins.modules import file_facts
    d = tmp_path / "ray"
    d.mkdir(mode=0o700)
    d.chmod(0o700)
    failed, r = run_module(file_facts, {"paths": [str(d)]})
    assert differs(r, str(d), mode="0700", owner=ME, group=MY_GROUP, kind="directory") is False
    assert differs(r, str(d), mode="0755", kind="directory") is True
    assert differs(r, str(d), mode="0700") is True  # a directory is no regular file
    with pytest.raises(AnsibleFilterError, match="kind is file or directory"):
        differs(r, str(d), kind="socket")
