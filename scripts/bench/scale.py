# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy at several cluster sizes, measured (scripts/bench.sh scale runs it; not a test).

    scale.py RAW.json N [N ...]

For each N: the simulated cluster of N nodes (scripts/bench/cluster.py), the weights on the
head (molecule/cluster/prepare.yml), then, each timed and read back from Ansible's JSON
callback: the deploy from scratch, a second deploy (it must change nothing), the teardown;
then the cluster is removed. The recipe is the simulation's (inventory/simulated, sim.yml)
with tensor parallel N across the N nodes. The model's load is the load watch and the first
completion of the deploy (vLLM's work); the rest is orchestration. Writes RAW.json;
scripts/bench_report.py scale turns it into rates, ratios and a plot. Run as root on the
machine whose Docker engine runs the nodes, from a checkout with the test venv on PATH.
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SIM = REPO / "inventory" / "simulated" / "group_vars" / "sparkops_nodes" / "sim.yml"
CLUSTER = [sys.executable, str(REPO / "scripts" / "bench" / "cluster.py")]
# the tasks of the deploy whose time is vLLM's own load, not the orchestration's
LOAD_TASKS = ("Wait for the model to load", "Read the API as a client would")
RUN_TIMEOUT = 3600
SMOKE_DEADLINE = 900


def overrides(nodes):
    """The simulation's recipe overrides with the cluster's size and tensor parallel size, and
    a first completion allowed SMOKE_DEADLINE seconds: on a 2-core machine the CPU inductor
    compiles the tiny model in every rank at once (59 s at 4 ranks with an empty cache, more
    than the default 120 s at 8)."""
    sim = yaml.safe_load(SIM.read_text())["sparkops_recipe_overrides"]
    sim = dict(sim, nodes=nodes, parallelism=dict(sim.get("parallelism") or {}, tensor=nodes, pipeline=1))
    return {"sparkops_recipe_overrides": sim, "vllm_serve_smoke_deadline": SMOKE_DEADLINE}


def machine_cpu():
    """CPU-s this machine has spent busy since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as fh:
        ticks = [int(v) for v in fh.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def container_cpu():
    """CPU-s each running container has spent, by name, from its cgroup (cgroup_cpu). A
    container's cgroup holds what `docker exec` runs in it (the nodes' modules) and the
    cgroups below it."""
    names = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True,
                           timeout=60, check=True).stdout.split()
    pids = subprocess.run(["docker", "inspect", "--format", "{{.Name}} {{.State.Pid}}"] + names, capture_output=True,
                          text=True, timeout=60, check=True).stdout.split("\n") if names else []
    spent = {}
    for line in filter(None, pids):
        name, pid = line.lstrip("/").split()
        try:
            with open("/proc/%s/cgroup" % pid) as fh:
                seconds = cgroup_cpu(fh.read())
        except OSError:
            continue  # it stopped since
        if seconds is not None:
            spent[name] = seconds
    return spent


def cgroup_cpu(proc_cgroup, root="/sys/fs/cgroup"):
    """CPU-s of the cgroup that a /proc/PID/cgroup text names: cgroup v1's cpuacct.usage (ns)
    or v2's cpu.stat usage_usec; the parent of an init.scope (systemd in a container moves
    itself there). None when no such file can be read."""
    groups = dict(line.split(":", 2)[1:] for line in proc_cgroup.split("\n") if line.count(":") >= 2)
    for controller, name in (("cpuacct", "cpuacct.usage"), ("cpu,cpuacct", "cpuacct.usage"), ("", "cpu.stat")):
        if controller not in groups:
            continue
        path = "%s%s%s/%s" % (root, "/" + controller if controller else "",
                              groups[controller].rsplit("/init.scope", 1)[0], name)
        try:
            with open(path) as fh:
                text = fh.read()
        except OSError:
            continue
        if name == "cpu.stat":
            return int(dict(line.split() for line in text.splitlines())["usage_usec"]) / 1e6
        return int(text.split()[0]) / 1e9
    return None


def cpu_split(before, after, machine, tree):
    """The machine's CPU-s of a run split by where they went: inside the simulated nodes
    (their modules and services), inside the engine containers (Ray, vLLM), the controller's
    process tree (ansible-playbook, its workers and their `docker exec` clients), and the rest
    (the Docker engine serving those execs, and the machine's other work)."""
    grew = {name: after[name] - before.get(name, 0.0) for name in after}
    engines = sum(v for name, v in grew.items() if name.startswith("sparkops-engine-"))
    nodes = sum(grew.values()) - engines
    return {"machine": round(machine, 1), "nodes": round(nodes, 1), "engines": round(engines, 1),
            "controller_tree": round(tree, 1), "rest": round(machine - nodes - engines - tree, 1)}


def controller_cpu(proc, deadline):
    """Wait for ansible-playbook (killed past the deadline); the CPU-s its main process had
    spent when last seen (utime + stime of /proc/PID/stat, sampled every 0.2 s)."""
    spent = 0.0
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            sys.exit("ansible-playbook ran past %d s: killed" % RUN_TIMEOUT)
        try:
            with open("/proc/%d/stat" % proc.pid) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            spent = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.2)
    return spent


def playbook(inventory, path, extra, label):
    """One ansible-playbook run with the JSON callback: its seconds, per-host stats, the
    seconds of the load tasks, and the number of tasks that ran on a node."""
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    argv = ["ansible-playbook", "-i", str(inventory), str(path), "-e", "@" + extra]
    containers, children = container_cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
    began, machine = time.monotonic(), machine_cpu()
    with tempfile.TemporaryFile(mode="w+") as stdout:
        proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
        main_cpu = controller_cpu(proc, began + RUN_TIMEOUT)
        seconds = time.monotonic() - began
        machine = machine_cpu() - machine
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)  # ansible-playbook's tree, waited for
        split = cpu_split(containers, container_cpu(), machine, reaped.ru_utime + reaped.ru_stime
                          - children.ru_utime - children.ru_stime)
        stdout.seek(0)
        out = stdout.read()
    doc = json.loads(out[out.index("{"):out.rindex("}") + 1])
    if proc.returncode != 0:
        failed = [(t["task"]["name"], h, r.get("msg")) for p in doc["plays"] for t in p["tasks"]
                  for h, r in t["hosts"].items() if r.get("failed") and not r.get("ignore_errors")]
        sys.exit("%s failed (rc %d): %s" % (label, proc.returncode, failed[:3]))
    load = 0.0
    ran = 0
    tasks = []
    for play in doc["plays"]:
        for task in play["tasks"]:
            d = task["task"]["duration"]
            took = (datetime.datetime.fromisoformat(d["end"].replace("Z", "+00:00"))
                    - datetime.datetime.fromisoformat(d["start"].replace("Z", "+00:00"))).total_seconds()
            if any(task["task"]["name"].split(" : ")[-1].startswith(name) for name in LOAD_TASKS):
                load += took
            hosts = sum(1 for r in task["hosts"].values() if not r.get("skipped"))
            ran += hosts > 0
            tasks.append([task["task"]["name"], round(took, 2), hosts])
    return {"seconds": round(seconds, 2), "load_seconds": round(load, 2),
            "orchestration_seconds": round(seconds - load, 2), "tasks_run": ran,
            "changed": {h: s["changed"] for h, s in doc["stats"].items()},
            # CPU-s of the whole machine (every node, engine and the controller), split by where
            # they went (cpu_split), and of the controller's main process alone (its strategy loop)
            "cpu_seconds": dict(split, controller_main_process=round(main_cpu, 1)),
            # every task in order: its name, seconds and the number of nodes it ran on
            "tasks": tasks}


def measure(nodes, workdir):
    inventory = Path(workdir) / ("inventory-%d" % nodes)
    extra = str(Path(workdir) / ("overrides-%d.json" % nodes))
    Path(extra).write_text(json.dumps(overrides(nodes)))
    subprocess.run(CLUSTER + ["up", str(nodes), str(inventory)], check=True, timeout=600)
    try:
        subprocess.run(["ansible-playbook", "-i", str(inventory), "molecule/cluster/prepare.yml"], cwd=REPO,
                       check=True, capture_output=True, timeout=600)
        first = playbook(inventory, "playbooks/deploy-qwen397b.yml", extra, "deploy at %d nodes" % nodes)
        second = playbook(inventory, "playbooks/deploy-qwen397b.yml", extra, "second deploy at %d nodes" % nodes)
        teardown = playbook(inventory, "playbooks/teardown.yml", extra, "teardown at %d nodes" % nodes)
    finally:
        subprocess.run(CLUSTER + ["down", str(inventory)], check=False, timeout=600)
    if any(second["changed"].values()):
        sys.exit("the second deploy at %d nodes changed %s: not a run with nothing to change" % (nodes, second["changed"]))
    return {"nodes": nodes, "deploy": first, "second_deploy": second, "teardown": teardown}


def main(argv):
    if len(argv) < 3 or not all(a.isdigit() for a in argv[2:]):
        sys.exit(__doc__)
    raw = {"when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "cpus": os.cpu_count(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="sparkops-bench-") as workdir:
        for n in argv[2:]:
            raw["runs"].append(measure(int(n), workdir))
            # written after every size: a later size that fails keeps the earlier ones
            Path(argv[1]).write_text(json.dumps(raw, indent=2) + "\n")
    print(json.dumps(raw, indent=2))


if __name__ == "__main__":
    main(sys.argv)
