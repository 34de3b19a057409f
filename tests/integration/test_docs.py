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
