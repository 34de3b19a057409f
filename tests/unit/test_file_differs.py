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
