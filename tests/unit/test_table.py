"""data/known_failures.yml is the one table: every id cited anywhere exists, every row
has public sources, every rule has its row and every row's rule exists, and no text a
user reads cites the project's internal documents."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from ansible_collections.sparkops.cluster.plugins.plugin_utils import _rules
from conftest import REPO

ROWS = yaml.safe_load((REPO / "data" / "known_failures.yml").read_text())
TABLE = _rules.Table(ROWS)
CITED = re.compile(r"\b((?:KF|PLAN|INV|SEC)-\d+)\b")
SHIPPED = ("plugins", "roles", "playbooks", "recipes", "inventory", "data", "docs", "README.md", "CHANGELOG.md")
INTERNAL = re.compile(r"(?i:\bseeds? ?[-#]?\d{3}\b)|KNOWN_FAILURES|shared/(?:seeds|DESIGN|ENVIRONMENT|KNOWN)")


def shipped_files():
    for name in SHIPPED:
        path = REPO / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            if f.suffix in (".py", ".yml", ".yaml", ".md", ".j2", ".sh", ".cfg", ".txt", ""):
                yield f


def test_every_cited_id_is_a_row():
    missing = {}
    for f in shipped_files():
        for row_id in CITED.findall(f.read_text(errors="replace")):
            if row_id not in TABLE:
                missing.setdefault(row_id, []).append(str(f.relative_to(REPO)))
    assert not missing, "ids cited but not in data/known_failures.yml: %s" % missing


def test_every_row_has_public_sources_and_no_internal_one():
    for row in ROWS:
        assert row["sources"], row["id"]
        for source in row["sources"]:
            assert not INTERNAL.search(source) and "sparkops" not in source.lower() or source.startswith(
                ("sparkops.cluster docs/", "sparkops.cluster README")), (row["id"], source)


def test_every_rule_has_its_row_and_every_named_rule_exists():
    registered = {(row_id, fn.__name__) for row_id, _stage, fn in _rules.RULES}
    named = set()
    for row in ROWS:
        rule = (row.get("detect") or {}).get("rule")
        for name in ([rule] if isinstance(rule, str) else rule or []):
            named.add((row["id"], name))
    assert {r for r, _n in registered} <= set(TABLE.rows), "rules registered under no row"
    assert registered == named, "rule names in the table and in _rules differ: %s" % (registered ^ named)


def test_no_user_facing_text_cites_internal_documents():
    hits = []
    for f in shipped_files():
        for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            if INTERNAL.search(line):
                hits.append("%s:%d: %s" % (f.relative_to(REPO), n, line.strip()))
    assert not hits, "\n".join(hits)


def test_rows_named_by_recipes_render_with_the_recipe_names():
    names = {"architecture": "a", "model": "m", "version": "0.1", "min_version": "0.1", "nodes": 2}
    for path in (REPO / "recipes").glob("*.yml"):
        for bad in yaml.safe_load(path.read_text()).get("known_bad") or []:
            finding = TABLE.finding(bad["row"], bad["option"], **names)
            assert finding["reason"] and finding["fix"], (path.name, bad)


@pytest.mark.parametrize("rows, words", [
    ([{"id": "X-1", "title": "t", "reason": "r", "fix": "f", "sources": [], "severity": "refuse"}], "lacks sources"),
    ([{"id": "X-1", "title": "t", "reason": "r", "fix": "f", "sources": ["s"], "severity": "maybe"}], "refuse or warn"),
    ([{"id": "X-1", "title": "t", "reason": "r", "fix": "f", "sources": ["s"], "severity": "warn", "accept": True}] * 2,
     "used twice"),
    ([{"id": "X-1", "title": "t", "reason": "r", "fix": "f", "sources": ["s"], "severity": "warn"}],
     "accept must be true or false"),
    ([{"id": "X-1", "title": "t", "reason": "r", "fix": "f", "sources": ["s"], "severity": "warn",
       "detect": {"patterns": ["(unclosed"]}}], "is not a regular expression"),
])
def test_a_broken_table_is_named(rows, words):
    with pytest.raises(_rules.TableError, match=re.escape(words)):
        _rules.Table(rows)


def test_a_row_whose_words_name_a_value_its_rule_does_not_give():
    table = _rules.Table([{"id": "X-1", "title": "t", "reason": "{nope}", "fix": "f", "sources": ["s"],
                           "severity": "warn", "accept": True}])
    with pytest.raises(_rules.TableError, match="row X-1 names 'nope'"):
        table.finding("X-1", "--x")


USER_ROW = {"id": "USER-1", "title": "Our NFS stalls the load", "reason": "the load reads from NFS", "fix": "copy first",
            "sources": ["our runbook"], "severity": "refuse", "accept": True,
            "detect": {"patterns": ["nfs: server \\S+ not responding"]}}


def test_a_users_table_adds_rows_and_reopens_none():
    table = _rules.Table(copy.deepcopy(ROWS))
    table.extend(dict(USER_ROW), "/srv/infra/data/known_failures.yml")
    assert "USER-1" in table and table.extra == {"USER-1"}
    assert any(p["id"] == "USER-1" for p in table.log_patterns())
    for row, words in [(dict(USER_ROW, id="PLAN-9", accept=True), "PLAN-9 is a row of the collection's table; give "
                                                                  "your row an id of your own"),
                       (dict(USER_ROW, id="USER-2", detect={"rule": "heads_divide"}), "detects by detect.patterns"),
                       (dict(USER_ROW, id="USER-3", accept="yes"), "accept must be true or false"),
                       (dict(USER_ROW, id="USER-4", detect={"watch": "stopped_rank"}), "detect.watch names a check"),
                       (dict(USER_ROW, id="USER-5", detect={"kernel_patterns": ["nfs: ("]}),
                        "detect.kernel_patterns: 'nfs: (' is not a regular expression"),
                       (dict(USER_ROW, id="USER-6", detect={"kernel_patterns": "nfs"}),
                        "detect.kernel_patterns must be a list")]:
        with pytest.raises(_rules.TableError, match=re.escape(words)):
            table.extend(row, "/srv/infra/data/known_failures.yml")
    assert not table.acceptable("PLAN-9")
    # a row of yours may watch the kernel's log: the watchdog matches it
    table.extend(dict(USER_ROW, id="USER-7", detect={"kernel_patterns": ["nfs: server \\S+ not responding"]}), "ours")
    assert next(p for p in table.log_patterns() if p["id"] == "USER-7")["kernel_patterns"] == [
        "nfs: server \\S+ not responding"]


def test_every_row_says_whether_it_can_be_accepted_and_hard_rows_cannot():
    for row in ROWS:
        assert isinstance(row["accept"], bool), row["id"]
        if row["id"].startswith(("PLAN-", "INV-")) or row["id"] in ("KF-100", "SEC-1", "SEC-2", "SEC-3", "SEC-4",
                                                                    "SEC-5", "SEC-7", "SEC-8"):
            assert row["accept"] is False, row["id"]
