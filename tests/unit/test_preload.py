"""The callback sparkops.cluster.preload: which Jinja plugins it finds in the collection's
files (plugin_utils/_preload.py), and that it loads them, on the collection itself."""

from __future__ import annotations

import json
import subprocess
import sys

from ansible_collections.sparkops.cluster.plugins.plugin_utils._preload import collection_names, jinja_names
from conftest import REPO


def test_filters_and_tests_by_fqcn():
    text = """
    a: "{{ x | community.general.keep_keys(target=['a']) |sparkops.cluster.plan_node(h) }}"
    b: >-
      {{ y
         | ansible.utils.ipaddr('prefix') }}
    when: z is ansible.builtin.match('^a') or w is not ansible.builtin.truthy
    c: "{{ v | default('x') | map('extract', hostvars) }}"
    """
    filters, tests = jinja_names(text)
    assert filters == {"community.general.keep_keys", "sparkops.cluster.plan_node", "ansible.utils.ipaddr"}
    assert tests == {"ansible.builtin.match", "ansible.builtin.truthy"}


def test_a_task_name_ending_in_is_is_not_a_test():
    # roles/engine_container/tasks/previous.yml has such a task: "- name: Say where the old image is"
    text = "    - name: Say where the old image is\n      ansible.builtin.debug:\n        msg: hi\n"
    assert jinja_names(text) == (set(), set())


def test_the_collections_own_files():
    filters, tests = collection_names(str(REPO))
    # used by roles/netplan (templates/rails.yaml.j2), roles/engine_container, roles/vllm_serve
    assert {"ansible.utils.ipaddr", "community.general.json_query", "community.general.keep_keys",
            "sparkops.cluster.plan_node", "sparkops.cluster.file_differs"} <= set(filters)
    assert filters == sorted(filters) and tests == sorted(tests)


def test_an_unreadable_file_is_passed_over(tmp_path):
    tasks = tmp_path / "roles" / "r" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text("x: \"{{ a | ns.coll.good }}\"\n")
    (tasks / "broken.yml").write_bytes(b"x: \"{{ a | ns.coll.bad }}\xff\xfe\"\n")
    (tasks / "notes.txt").write_text("{{ a | ns.coll.other }}")  # not a task, playbook or template file
    assert collection_names(str(tmp_path)) == (["ns.coll.good"], [])


# the plugin loader is set up once per process, before the collection is imported: each case
# runs in a fresh Python, as ansible-playbook's main process is
_RUN = """
import json, sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader([sys.argv[1]])
from ansible_collections.sparkops.cluster.plugins.callback.preload import preload
class Display:
    lines = []
    def vvv(self, msg):
        self.lines.append(msg)
display = Display()
loaded, passed = preload(sys.argv[2], display)
print(json.dumps({"loaded": loaded, "passed": passed, "lines": display.lines,
                  "modules": sorted(m for m in sys.modules if ".plugins.filter." in m)}))
"""


def preload_in_a_fresh_python(root):
    out = subprocess.run([sys.executable, "-c", _RUN, str(REPO / ".collections"), str(root)], capture_output=True,
                         text=True, timeout=120, check=True, cwd=REPO).stdout
    return json.loads(out.splitlines()[-1])


def test_every_name_the_collection_uses_loads():
    got = preload_in_a_fresh_python(REPO)
    # a name here is a typo or a plugin of a collection galaxy.yml does not pull in
    assert got["passed"] == []
    assert "community.general.keep_keys" in got["loaded"] and "ansible.builtin.to_json" in got["loaded"]
    # loaded means imported in this process: a worker forked after it finds the module
    assert "ansible_collections.community.general.plugins.filter.keep_keys" in got["modules"]
    assert got["lines"][-1].startswith("sparkops.cluster.preload: %d Jinja plugins loaded" % len(got["loaded"]))


def test_a_plugin_that_does_not_load_is_passed_over(tmp_path):
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    # no such collection, and no such filter in this one
    (playbooks / "p.yml").write_text("a: \"{{ x | nosuch.coll.filter }}\"\nb: \"{{ x | sparkops.cluster.no_such_filter }}\"\n")
    got = preload_in_a_fresh_python(tmp_path)
    assert got["passed"] == ["nosuch.coll.filter", "sparkops.cluster.no_such_filter"]
    assert got["loaded"] == ["ansible.builtin.to_json", "ansible.builtin.match"]
