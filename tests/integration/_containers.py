"""Containers of the integration tests that run a node's programs against Docker (imported by the tests)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid

NODE_IMAGE = os.environ.get("SPARKOPS_NODE_IMAGE", "sparkops/node:latest")
ENGINE_IMAGE = os.environ.get("SPARKOPS_ENGINE_IMAGE", "sparkops/engine:latest")
# one CPU at most for a test's container: scripts/test.sh runs these tests beside the cluster
# scenario, the long pole on CI's two cores (nice does not reach a container's processes)
CPUS = ("--cpus", "1")


def sh(*argv, check=True, timeout=120):
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode:
        raise AssertionError("%s: rc %d\n%s%s" % (" ".join(argv), done.returncode, done.stdout, done.stderr))
    return done


@contextlib.contextmanager
def node_and_engine():
    """A node container (the simulated node image, the host's Docker socket) and an engine
    container in its network namespace, both idle; removed afterwards."""
    name = "sparkops-test-%s" % uuid.uuid4().hex[:8]
    node, engine = name + "-node", name + "-engine"
    try:
        sh("docker", "run", "-d", "--name", node, *CPUS, "-v", "/var/run/docker.sock:/var/run/docker.sock",
           "--entrypoint", "sleep", NODE_IMAGE, "infinity")
        sh("docker", "run", "-d", "--name", engine, *CPUS, "--network", "container:" + node, "--entrypoint", "sleep",
           ENGINE_IMAGE, "infinity")
        yield node, engine
    finally:
        sh("docker", "rm", "-f", node, engine, check=False)
