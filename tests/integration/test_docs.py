"""Every plugin's documentation is its own: ansible-doc shows each filter's page (a
DOCUMENTATION in a file of several filters would shadow the others')."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import re

import pytest

REPO = Path(__file__).resolve().parents[2]
# every filter the collection's FilterModules return
FILTERS = sorted({name for path in (REPO / "plugins" / "filter").glob("*.py")
                  for name in re.findall(r'"(\w+)": _\w+', path.read_text().split("def filters(self):")[-1])})
ENV = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
           PATH="%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]))


def test_a_file_of_several_filters_has_no_documentation_of_its_own():
    for path in (REPO / "plugins" / "filter").glob("*.py"):
        text = path.read_text()
        several = len(re.findall(r'"(\w+)": _\w+', text.split("def filters(self):")[-1])) > 1
        assert not (several and re.search(r"^DOCUMENTATION\s*=", text, re.M)), "%s: its DOCUMENTATION would shadow each filter's .yml" % path.name
    assert len(FILTERS) >= 13


@pytest.mark.parametrize("name", FILTERS)
def test_filter_doc_is_its_own(name):
    out = subprocess.run(["ansible-doc", "-t", "filter", "--json", "sparkops.cluster." + name], env=ENV, cwd=REPO,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    doc = json.loads(out)["sparkops.cluster." + name]["doc"]
    assert doc["name"] == name and doc["short_description"]


def _listed(section):
    """The sparkops.cluster.* names in the first column of a table of docs/reference.md's section."""
    text = (REPO / "docs" / "reference.md").read_text()
    body = text.split("\n## %s\n" % section, 1)[1].split("\n## ", 1)[0]
    return sorted(set(re.findall(r"^\| `sparkops\.cluster\.([a-z0-9_<>]+)`", body, re.M)))


@pytest.mark.parametrize("kind, section", [("module", "Modules"), ("filter", "Filters")])
def test_the_reference_lists_every_plugin(kind, section):
    out = subprocess.run(["ansible-doc", "-t", kind, "-l", "--json", "sparkops.cluster"], env=ENV, cwd=REPO,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    found = sorted(name.split(".")[-1] for name in json.loads(out))
    assert _listed(section) == found, "docs/reference.md, %s: list exactly what ansible-doc -l finds" % section


def test_the_reference_lists_every_role_and_playbook():
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "tasks").is_dir())
    assert _listed("Roles") == roles
    playbooks = {p.stem for p in (REPO / "playbooks").glob("*.yml") if "-" not in p.stem}
    listed = set(_listed("Playbooks"))
    assert {p for p in playbooks if not p.startswith("deploy_")} | {"deploy_<recipe>"} == listed
