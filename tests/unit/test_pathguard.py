"""The guard of the copy's writes (plugins/module_utils/_pathguard.py): run for real on
directories made here, the way the copy key's forced command and the rsync daemon's pre-xfer
exec run it on a receiving node. A component another user owns or may write into, or a
symbolic link on the way, is refused with its name; a root-owned sticky directory is not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ansible_collections.sparkops.cluster.plugins.module_utils import _pathguard
from conftest import REPO

GUARD = REPO / "plugins" / "module_utils" / "_pathguard.py"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")


@pytest.fixture
def models(tmp_path):
    os.chmod(tmp_path, 0o755)
    path = tmp_path / "var" / "lib" / "models"
    path.mkdir(parents=True)
    for p in (tmp_path / "var", tmp_path / "var" / "lib", path):
        os.chmod(p, 0o755)
    return path


def run_guard(path, *program):
    return subprocess.run([sys.executable, str(GUARD), str(path)] + list(program), capture_output=True, text=True,
                          timeout=30)


@root_only
def test_a_tree_of_root_that_no_one_else_writes_passes_and_runs_the_program(models):
    assert _pathguard.problems(str(models)) == []
    assert _pathguard.problems(str(models / "not-yet")) == []  # root creates what is missing
    done = run_guard(models, "/bin/echo", "rrsync", "ran")
    assert done.returncode == 0 and done.stdout == "rrsync ran\n"


@root_only
def test_a_component_another_user_owns_is_refused(models):
    os.chown(models.parent, 65534, 65534)
    assert _pathguard.problems(str(models)) == ["%s is owned by uid 65534, not root" % models.parent]
    done = run_guard(models, "/bin/echo", "must not run")
    assert done.returncode == 1 and not done.stdout
    assert done.stderr == "sparkops.cluster: refused to write into %s: %s is owned by uid 65534, not root\n" % (
        models, models.parent)


@root_only
def test_a_component_others_may_write_into_is_refused_unless_sticky_and_roots(models):
    os.chmod(models.parent, 0o777)
    assert _pathguard.problems(str(models)) == ["%s is writable by its group and everyone (mode 0777)" % models.parent]
    os.chmod(models.parent, 0o1777)  # as /tmp: no one renames what root owns in it
    assert _pathguard.problems(str(models)) == []
    os.chmod(models, 0o775)
    assert _pathguard.problems(str(models)) == ["%s is writable by its group (mode 0775)" % models]


@root_only
def test_a_symbolic_link_on_the_way_is_refused(models, tmp_path):
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir(mode=0o755)
    link = models / "qwen"
    link.symlink_to(elsewhere)
    assert _pathguard.problems(str(link / "sub")) == ["%s is a symbolic link" % link]
    (models / "file").write_text("x")
    assert _pathguard.problems(str(models / "file")) == ["%s is not a directory" % (models / "file")]


def test_a_relative_path_is_refused():
    assert _pathguard.problems("models/qwen") == ["'models/qwen' is not an absolute path"]
    done = run_guard("models/qwen")
    assert done.returncode == 1 and "is not an absolute path" in done.stderr
