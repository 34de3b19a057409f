# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Installed by sparkops.cluster's engine_container role on every node in persistent mode
(sparkops_persistent: true) as /usr/local/libexec/sparkops/engine-boot, and run by
sparkops-engine.service after a boot:

  engine-boot start CONFIG   wait for this node's rail address, on a worker for the Ray
                             head's GCS, start the engine container the deploy created,
                             and on the head wait until Ray has every node of the plan
  engine-boot stop CONFIG    stop the engine container gracefully (SIGINT, then wait)

CONFIG is the JSON the role writes from the plan (/etc/sparkops/engine-boot.json). Every
wait is bounded and says what it waits for, in the journal, every `report` seconds. The
exit status is non-zero, with one line naming what is missing, when a bound passes.
Python 3 standard library only: it runs on the node, outside Ansible.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

PREFIX = "sparkops engine-boot:"


def say(text):
    print("%s %s" % (PREFIX, text), flush=True)


def run(argv, timeout):
    """(rc, output) of a program, bounded; output decoded with replacement."""
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return 124, "%s did not end within %d s" % (argv[0], timeout)
    except OSError as exc:
        return 127, "%s: %s" % (argv[0], exc)
    return done.returncode, done.stdout.decode("utf-8", "replace")


def ray_missing(nodes_json, expected, gpus_per_node):
    """The planned nodes Ray does not list alive, and whether it has every GPU, from the
    JSON of ray.nodes(). The same reading as the collection's module_utils/_ray.py
    (cluster_state), which runs on the controller; tests/unit/test_persist.py holds the two
    to the same answers. Returns (missing names, gpus alive, gpus wanted) or raises ValueError."""
    nodes = json.loads(nodes_json[nodes_json.index("["):])
    alive = {n["NodeManagerAddress"]: float((n.get("Resources") or {}).get("GPU", 0)) for n in nodes if n["Alive"]}
    missing = sorted(name for address, name in expected.items() if address not in alive)
    return missing, sum(alive.values()), len(expected) * gpus_per_node


def wait(what, probe, deadline, report, clock=time.monotonic, sleep=time.sleep):
    """Call probe() until it returns (True, _) or the deadline (seconds) passes; say what is
    awaited and what probe() last said every `report` seconds. Returns (ok, last note)."""
    start = clock()
    said = start
    note = ""
    while True:
        ok, note = probe()
        if ok:
            say("%s: ready after %d s%s" % (what, clock() - start, "; " + note if note else ""))
            return True, note
        now = clock()
        if now - start >= deadline:
            return False, note
        if now - said >= report:
            say("waiting for %s (%d s of %d s)%s" % (what, now - start, deadline, ": " + note if note else ""))
            said = now
        sleep(min(5, max(0.1, deadline - (now - start))))


def address_probe(address):
    def probe():
        rc, out = run(["ip", "-o", "addr", "show"], 10)
        present = rc == 0 and any(" %s/" % address in line for line in out.splitlines())
        return present, "" if present else "not on any interface yet"
    return probe


def tcp_probe(host, port):
    def probe():
        try:
            with socket.create_connection((host, port), timeout=5):
                return True, ""
        except OSError as exc:
            return False, str(exc)
    return probe


def ray_probe(conf):
    argv = ["docker", "exec", conf["container"]] + conf["ray_query"]

    def probe():
        rc, out = run(argv, 60)
        if rc != 0:
            return False, "the head could not be queried (rc %d): %s" % (rc, out.strip()[-200:])
        try:
            missing, gpus, want = ray_missing(out, conf["expected"], conf["gpus_per_node"])
        except (ValueError, KeyError, TypeError) as exc:
            return False, "ray.nodes() gave no node list: %s" % exc
        whole = not missing and gpus >= want
        return whole, "%d/%d nodes, %g/%d GPU%s" % (
            len(conf["expected"]) - len(missing), len(conf["expected"]), gpus, want,
            "; missing: " + ", ".join(missing) if missing else "")
    return probe


def start(conf, report=30):
    ok, note = wait("this node's rail address %s" % conf["address"], address_probe(conf["address"]),
                    conf["wait_timeout"], report)
    if not ok:
        say("the rail address %s of %s is not configured after %d s: check its netplan and link (ip addr)"
            % (conf["address"], conf["node"], conf["wait_timeout"]))
        return 1
    head = conf.get("head")
    if head:
        ok, note = wait("the Ray head %s at %s:%d" % (head["name"], head["address"], head["port"]),
                        tcp_probe(head["address"], head["port"]), conf["wait_timeout"], report)
        if not ok:
            say("the Ray head %s does not answer at %s:%d after %d s (%s): start %s first, or check its "
                "sparkops-engine.service (journalctl -u sparkops-engine)"
                % (head["name"], head["address"], head["port"], conf["wait_timeout"], note, head["name"]))
            return 1
    rc, out = run(["docker", "start", conf["container"]], 120)
    if rc != 0:
        say("docker start %s failed (rc %d): %s. The container is made by the deploy: run it again"
            % (conf["container"], rc, out.strip()[-300:]))
        return 1
    say("engine container %s started" % conf["container"])
    if conf.get("expected"):
        ok, note = wait("Ray to list every node and GPU of the plan", ray_probe(conf), conf["wait_timeout"], report)
        if not ok:
            say("Ray is not whole after %d s: %s. On each missing node: journalctl -u sparkops-engine, "
                "docker logs %s" % (conf["wait_timeout"], note, conf["container"]))
            return 1
    return 0


def stop(conf):
    rc, out = run(["docker", "stop", "--time", str(conf["stop_timeout"]), conf["container"]], conf["stop_timeout"] + 30)
    say("docker stop %s: rc %d %s" % (conf["container"], rc, out.strip()[-200:]))
    return 0 if rc == 0 or "No such container" in out else 1


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        say("usage: engine-boot start|stop CONFIG")
        return 2
    try:
        with open(argv[2], encoding="utf-8") as f:
            conf = json.load(f)
    except (OSError, ValueError) as exc:
        say("cannot read %s (%s): run the deploy again to write it" % (argv[2], exc))
        return 2
    return start(conf) if argv[1] == "start" else stop(conf)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
