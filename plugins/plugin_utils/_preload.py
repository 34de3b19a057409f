# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Jinja filters and tests that the collection's roles and playbooks name by FQCN, read
from their files: the callback sparkops.cluster.preload loads them on the controller before
any task forks a worker, so that a worker does not import them again for every host and task.
Pure functions; tests/unit/test_preload.py tests them on the collection's own files."""

from __future__ import annotations

import os
import re

# `| ns.coll.name` (a filter) and `is [not] ns.coll.name` (a test), FQCN only: short names are
# ansible.builtin's (loaded together, as one set) or Jinja's own
_FQCN = r"([A-Za-z_]\w*\.[A-Za-z_]\w*\.[A-Za-z_]\w*)"
_FILTER = re.compile(r"\|\s*" + _FQCN)
# on one line, and not a YAML key (a task name ending in "is" above its module's name)
_TEST = re.compile(r"\bis[ \t]+(?:not[ \t]+)?" + _FQCN + r"(?![\w.:])")
# where the collection's tasks and templates live, and the files read there
DIRECTORIES = ("roles", "playbooks")
SUFFIXES = (".yml", ".yaml", ".j2")


def jinja_names(text):
    """(filters, tests): the sets of FQCNs that TEXT uses as a filter or as a test."""
    return set(_FILTER.findall(text)), set(_TEST.findall(text))


def collection_names(root):
    """(filters, tests) named in the task, playbook and template files below ROOT's roles/ and
    playbooks/, each sorted. A file that cannot be read or decoded is passed over: the
    preload only saves time, it never stops a run."""
    filters, tests = set(), set()
    for directory in DIRECTORIES:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, directory)):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.endswith(SUFFIXES):
                    continue
                try:
                    with open(os.path.join(dirpath, name), encoding="utf-8") as fh:
                        found = jinja_names(fh.read())
                except (OSError, UnicodeDecodeError):
                    continue
                filters |= found[0]
                tests |= found[1]
    return sorted(filters), sorted(tests)
