"""scripts/failed_tasks.py: the end of a CI log names the task that stopped molecule."""

from __future__ import annotations

import importlib.util

from conftest import REPO, fixture

SPEC = importlib.util.spec_from_file_location("failed_tasks", REPO / "scripts" / "failed_tasks.py")
failed_tasks = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(failed_tasks)

LOG = fixture("molecule_cluster_failed_persistent.log").splitlines()


def test_every_failure_with_its_play_and_task():
    found = failed_tasks.failures(LOG)
    # a failure the test expects (rescued), then the one that stopped the run
    assert [failure[1] for failure in found] == ["TASK [sparkops.cluster.model_sync : Load it]", "TASK [The status says so]"]
    play, block = found[-1][0], found[-1][2]
    assert play.startswith("PLAY [Persistent mode")
    assert block[0] == "fatal: [spark-alpha]: FAILED! =>"
    assert "    assertion: __status_rc == 0 and __status.healthy" in block
    # the message stops at the next result or header, or at the line limit
    assert not any(line.startswith("PLAY RECAP") for line in block)
    assert len(failed_tasks.failures(LOG, per_failure=5)[-1][2]) == 5


def test_main_prints_the_last_failures_and_the_failed_hosts(tmp_path, capsys, monkeypatch):
    log = tmp_path / "molecule.log"
    log.write_text("\n".join(LOG) + "\n")
    monkeypatch.setattr("sys.argv", ["failed_tasks.py", str(log), "--max", "1"])
    failed_tasks.main()
    out = capsys.readouterr().out
    assert "TASK [The status says so]" in out and "Load it" not in out
    assert "recap lines with failed hosts:\nspark-alpha                : ok=291" in out
    assert "spark-beta" not in out.split("recap lines with failed hosts:")[1]


def test_a_log_without_failed_tasks_shows_its_end(tmp_path, capsys, monkeypatch):
    log = tmp_path / "lint.log"
    log.write_text("".join("line %d\n" % i for i in range(50)))
    monkeypatch.setattr("sys.argv", ["failed_tasks.py", str(log)])
    failed_tasks.main()
    out = capsys.readouterr().out
    assert out.startswith("(no failed task in the log") and "line 49" in out and "line 29" not in out
