"""Every role's meta/argument_specs.yml agrees with its defaults/main.yml: an option that has a
default there is not `required` (ansible-doc would show it required with no default), and a
default the spec states is the one defaults/main.yml sets (a spec that copies a default must
not drift from it)."""

from __future__ import annotations

import pytest
import yaml

from conftest import REPO

ROLES = sorted(p.parent.parent for p in (REPO / "roles").glob("*/meta/argument_specs.yml"))


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_specs_and_defaults_agree(role):
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    path = role / "defaults" / "main.yml"
    defaults = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    problems = []
    for entry, spec in specs.items():
        for name, option in (spec.get("options") or {}).items():
            if name not in defaults:
                continue
            if option.get("required"):
                problems.append("%s: %s is required but defaults/main.yml sets it" % (entry, name))
            if "default" in option and option["default"] != defaults[name]:
                problems.append("%s: %s default %r, defaults/main.yml %r" % (entry, name, option["default"],
                                                                           defaults[name]))
    assert not problems, problems
