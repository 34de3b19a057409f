# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: preload
type: aggregate
short_description: Load the collection's Jinja filters and tests once, before the workers fork
description:
  - ansible-core runs every task of every host in a worker process forked from the controller's
    main process, and a worker looks up and imports the Jinja filters and tests that the task's
    templates use. The main process templates little itself, so without this callback each worker
    loads them again (ansible.builtin's filter and test files, and every filter file of a
    collection whose filter it names) for every host and task.
  - At the start of each playbook this callback loads, in the main process, ansible.builtin's
    filters and tests and every filter and test that a role, playbook or template of
    sparkops.cluster names by FQCN (the others' collections' included); the workers forked after
    that find them loaded.
  - It changes no result and no output. A plugin that does not load is passed over (shown at
    -vvv); the task that uses it fails as it would without this callback.
  - Measured on the simulated 4-node cluster (a second deploy with nothing to change, on a 2-core
    machine), it saves about a sixth of the controller's CPU time; see docs/performance.md.
version_added: 0.2.0
requirements:
  - enabled in the configuration, e.g. C(callbacks_enabled = sparkops.cluster.preload) in the
    C([defaults]) section of C(ansible.cfg)
"""

import os
import time

from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import filter_loader, test_loader

from ansible_collections.sparkops.cluster.plugins.plugin_utils._preload import collection_names

# the collection's root: plugins/callback/preload.py is two levels below it
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# one name of each loader's builtin set: the first lookup loads all of ansible.builtin's files
BUILTIN = (("filter", "ansible.builtin.to_json"), ("test", "ansible.builtin.match"))


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sparkops.cluster.preload"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loaded = None  # (names loaded, names passed over) after the first playbook starts

    def v2_playbook_on_start(self, playbook):
        if self.loaded is None:
            self.loaded = preload(ROOT, self._display)


def preload(root, display):
    """Load ansible.builtin's Jinja plugins and those that ROOT's files name; returns
    (loaded, passed_over), lists of names."""
    began = time.monotonic()
    filters, tests = collection_names(root)
    loaders = {"filter": filter_loader, "test": test_loader}
    wanted = list(BUILTIN) + [("filter", n) for n in filters] + [("test", n) for n in tests]
    loaded, passed = [], []
    for kind, name in wanted:
        try:
            found = loaders[kind].get(name) is not None
        except Exception as e:  # a broken third-party plugin: its task says so, not the preload
            display.vvv("sparkops.cluster.preload: %s %s not loaded: %s" % (kind, name, e))
            found = False
        (loaded if found else passed).append(name)
    display.vvv("sparkops.cluster.preload: %d Jinja plugins loaded in %.2f s (%d passed over)"
                % (len(loaded), time.monotonic() - began, len(passed)))
    return loaded, passed
