"""The registry of the collection's variables (plugin_utils/_settings): every sparkops_*
variable the playbooks and roles read is in it, the docs' table is generated from it, and
what else states a default or a type (role argument specs, flow/target.yml, _fabric's
readers) agrees with it."""

from __future__ import annotations

import re

import pytest
import yaml

from ansible_collections.sparkops.cluster.plugins.module_utils import _fabric
from ansible_collections.sparkops.cluster.plugins.plugin_utils import _settings
from conftest import REPO

# names of ours that are no variable a user sets: groups, facts and registered results the
# flow makes, and a key name
NOT_VARIABLES = {"sparkops_nodes", "sparkops_play_nodes", "sparkops_plan", "sparkops_node_facts", "sparkops_gpu",
                 "sparkops_memory", "sparkops_status", "sparkops_sync"}
REFERENCE = REPO / "docs" / "reference.md"
KINDS = {"list": list, "dict": dict, "int": int, "str": str, "bool": bool, "float": float, "path": str}


def referenced():
    found = set()
    for top in ("playbooks", "roles", "plugins"):
        for path in (REPO / top).rglob("*"):
            if path.suffix in (".yml", ".j2", ".py") and path.is_file():
                found |= set(re.findall(r"\bsparkops_[a-z0-9_]+", path.read_text()))
    return found - NOT_VARIABLES


def test_every_variable_read_is_in_the_registry():
    missing = sorted(referenced() - set(_settings.SETTINGS))
    assert not missing, "read by the playbooks or roles but not in plugin_utils/_settings.SETTINGS: %s" % missing


def test_the_reference_table_is_the_registry():
    text = REFERENCE.read_text()
    table = _settings.markdown()
    assert table in text, "docs/reference.md's inventory table differs from _settings.markdown(); paste:\n" + table


def test_role_argument_specs_agree_with_the_registry():
    seen = 0
    for spec_file in sorted((REPO / "roles").glob("*/meta/argument_specs.yml")):
        for entry, spec in (yaml.safe_load(spec_file.read_text())["argument_specs"] or {}).items():
            for name, option in (spec.get("options") or {}).items():
                if not name.startswith("sparkops_"):
                    continue
                seen += 1
                setting = _settings.SETTINGS[name]
                where = "%s %s %s" % (spec_file.parent.parent.name, entry, name)
                assert KINDS[option["type"]] is setting.kind, where
                if setting.default is _settings.REQUIRED:
                    assert option.get("required") is True, where
                else:
                    assert option.get("default") == setting.default, where
    assert seen >= 2  # the netplan role's sparkops_rails and sparkops_rail_mtu


def test_the_target_play_and_the_rail_readers_use_the_registry_defaults():
    target = yaml.safe_load((REPO / "playbooks" / "flow" / "target.yml").read_text())[0]
    assert "default('%s')" % _settings.SETTINGS["sparkops_target"].default in target["vars"]["__target"]
    rails = [{"name": "rail1", "netdev": "enp1s0f1np1", "rdma_device": "rocep1s0f1", "subnet": "192.168.100.0/24"}]
    planned = _fabric.rail_plan("spark", {"sparkops_rails": rails, "sparkops_node_index": 1})[0]
    assert planned["mtu"] == _settings.SETTINGS["sparkops_rail_mtu"].default
    assert planned["address"] == "192.168.100.%d" % (_settings.SETTINGS["sparkops_rail_host_offset"].default + 1)


def test_read_covers_the_plan_scope_only():
    assert set(_settings.read({})) == {name[len("sparkops_"):] for name in _settings.PLANNED}
    assert "rails" not in _settings.read({"sparkops_rails": "not read here"})


@pytest.mark.parametrize("value, expected", [
    (None, False), (False, False), (True, True), ("", False), ("0", False), ("false", False), (" Off ", False),
    ("no", False), (0, False), ("1", True), ("yes", True), ("auto", True), (1, True), ("FLASHINFER", True)])
def test_one_reading_of_on_and_off(value, expected):
    assert _settings.on(value) is expected
