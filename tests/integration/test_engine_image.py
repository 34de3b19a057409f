"""The engine_image role on a node (a container of the simulated node image, the build
machine's Docker engine through its socket), reached by Ansible as a node: it builds the
serving image from a base without Ray (the simulated engine image, as vLLM's own images
since 0.19.1) plus Ray from the wheels tests/images/build.sh downloads, builds nothing the
second time, says in check mode what a moved base would make it build, then builds it, and
names a missing base."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from _containers import CPUS, ENGINE_IMAGE, NODE_IMAGE

REPO = Path(__file__).resolve().parents[2]
WHEELS = "/var/lib/sparkops-sim/wheels/ray-2.60.0"  # tests/images/build.sh (test_sim.py checks the version)


def sh(*argv, check=True, timeout=300, stdin=None):
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, input=stdin)
    if check and done.returncode:
        raise AssertionError("%s: rc %d\n%s%s" % (" ".join(argv), done.returncode, done.stdout, done.stderr))
    return done


@pytest.fixture(scope="module")
def node():
    """A node container with the host's Docker socket, and a base image of our own tag (a
    copy of the engine image's ID, which the test can move), removed afterwards."""
    if not Path(WHEELS, ".complete").exists():
        pytest.fail("no Ray wheels in %s: run tests/images/build.sh (scripts/test.sh does)" % WHEELS)
    run = uuid.uuid4().hex[:8]
    name, base, built = "sparkops-test-%s-node" % run, "sparkops-test/base:%s" % run, "sparkops-test/vllm-ray:%s" % run
    try:
        sh("docker", "tag", ENGINE_IMAGE, base)
        sh("docker", "run", "-d", "--name", name, *CPUS, "-v", "/var/run/docker.sock:/var/run/docker.sock",
           "--entrypoint", "sleep", NODE_IMAGE, "infinity")
        yield name, base, built
    finally:
        sh("docker", "rm", "-f", name, check=False)
        sh("docker", "image", "rm", "-f", built, base, check=False)


def deploy(tmp_path, node, base, built, *args):
    """ansible-playbook of the role on the node, as the deploy includes it on the head."""
    play = [{"hosts": "all", "gather_facts": False,
             "vars": {"engine_image_build": {"base": base, "ray": "2.60.0", "pip": [], "image": built},
                      "engine_image_wheels_dir": WHEELS},
             "roles": ["sparkops.cluster.engine_image"]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    (tmp_path / "hosts.yml").write_text(json.dumps({"all": {"hosts": {node: {
        "ansible_connection": "community.docker.docker", "ansible_python_interpreter": "/usr/bin/python3"}}}}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               PATH="%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]))
    done = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml")] + list(args),
                          capture_output=True, text=True, env=env, timeout=900, check=False, cwd=str(REPO))
    try:  # the JSON callback's document, then profile_tasks' recap (ansible.cfg)
        out = json.JSONDecoder().raw_decode(done.stdout[done.stdout.index("{"):])[0]
    except ValueError:
        raise AssertionError(done.stdout[-3000:] + done.stderr[-3000:])
    stats = out["stats"][node]
    tasks = {t["task"]["name"].split(" : ", 1)[-1]: t["hosts"][node] for p in out["plays"] for t in p["tasks"]
             if node in t["hosts"]}
    return done.returncode, stats, tasks


def image(ref, fmt):
    return sh("docker", "image", "inspect", "-f", fmt, ref).stdout.strip()


def test_built_once_rebuilt_when_the_base_moves_and_a_missing_base_named(tmp_path, node):
    name, base, built = node
    rc, stats, tasks = deploy(tmp_path, name, base, built)
    assert rc == 0 and stats["changed"] > 0, tasks
    ray = sh("docker", "run", "--rm", *CPUS, "--network", "none", "--entrypoint", "python3", built, "-c",
             "import ray; print(ray.__version__)").stdout.strip()
    assert ray == "2.60.0"
    first = image(built, "{{.Id}}")
    assert image(built, '{{index .Config.Labels "sparkops.cluster/base-id"}}') == image(base, "{{.Id}}")

    rc, stats, tasks = deploy(tmp_path, name, base, built)
    assert rc == 0 and stats["changed"] == 0, tasks
    assert image(built, "{{.Id}}") == first

    # a new release of the base under the same tag
    sh("docker", "build", "-q", "-t", base, "-", stdin="FROM %s\nLABEL org.sparkops.test=moved\n" % base)
    rc, stats, tasks = deploy(tmp_path, name, base, built, "--check")
    said = tasks["Say what is built (pip installs Ray into the image, minutes), or would be in check mode"]
    assert rc == 0 and said["changed"] and "check mode: would build %s" % built in said["msg"], tasks
    assert image(built, "{{.Id}}") == first  # check mode built nothing
    rc, stats, tasks = deploy(tmp_path, name, base, built)
    assert rc == 0 and image(built, "{{.Id}}") != first
    assert image(built, '{{index .Config.Labels "sparkops.cluster/base-id"}}') == image(base, "{{.Id}}")
    assert sh("docker", "exec", name, "test", "-e", "/var/lib/sparkops/engine-image", check=False).returncode == 1

    rc, stats, tasks = deploy(tmp_path, name, base + "-absent", built + "-absent")
    told = tasks["The head has the base image"]
    assert rc == 2 and "the recipe's engine.image %s-absent" % base in told["msg"], tasks
    assert "pull or load it there (docker pull %s-absent)" % base in told["msg"]
