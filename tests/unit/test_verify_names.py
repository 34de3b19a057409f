"""molecule/cluster: a name that a task registers (or sets with set_fact) is never also a
play's or a task's `vars:` name. A registered variable outranks `vars:` (Ansible's variable
precedence) and outlives its play, so a later play's `vars: {__x: ...}` would silently read
an earlier play's result: the mp play's watch assertion read the serving play's `__watch`
and failed only in the full run, never when run alone by its tag."""

from __future__ import annotations

import yaml

from conftest import REPO

SCENARIO = REPO / "molecule" / "cluster"
BLOCKS = ("block", "rescue", "always")


def tasks_of(items):
    for task in items or []:
        if isinstance(task, dict) and "import_playbook" not in str(task):
            yield task
            for key in BLOCKS:
                yield from tasks_of(task.get(key))


def names():
    registered, as_vars = {}, {}
    topics = sorted((SCENARIO / "topics").glob("*.yml"))
    files = topics + sorted((SCENARIO / "tasks").glob("*.yml"))
    for path in files:
        doc = yaml.safe_load(path.read_text()) or []
        plays = doc if path in topics else [{"tasks": doc}]
        for play in plays:
            for name in play.get("vars") or {}:
                as_vars.setdefault(name, path.name)
            for task in tasks_of(play.get("tasks")):
                if "register" in task:
                    registered.setdefault(task["register"], path.name)
                facts = task.get("ansible.builtin.set_fact")
                if isinstance(facts, dict):
                    for name in facts:
                        if name != "cacheable":
                            registered.setdefault(name, path.name)
                for name in task.get("vars") or {}:
                    as_vars.setdefault(name, path.name)
    return registered, as_vars


def test_no_registered_name_is_also_a_vars_name():
    registered, as_vars = names()
    assert len(registered) > 50 and len(as_vars) > 50  # the walk found the scenario's names
    clash = sorted(set(registered) & set(as_vars))
    assert not clash, "registered or set_fact and also under vars: (the registered value wins): %s" % clash
