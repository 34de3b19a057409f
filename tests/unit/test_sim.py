"""The simulation's pieces that must agree with each other: the Ray wheels tests/images/build.sh
downloads, the directory the simulated inventory gives the engine_image role, and the Ray
the shipped Ray recipes build (a disagreement fails the deploy's build with pip's "no
matching distribution", minutes into a CI run)."""

from __future__ import annotations

import re

import yaml

from conftest import REPO


def test_the_sim_downloads_the_ray_the_recipes_build():
    script = (REPO / "tests" / "images" / "build.sh").read_text()
    ray = re.search(r"^SIM_RAY=([0-9.]+)$", script, re.M).group(1)
    sim = yaml.safe_load((REPO / "inventory" / "simulated" / "group_vars" / "sparkops_nodes" / "sim.yml").read_text())
    assert sim["engine_image_wheels_dir"] == "/var/lib/sparkops-sim/wheels/ray-%s" % ray
    assert "wheels=/var/lib/sparkops-sim/wheels/ray-$SIM_RAY" in script
    built = {}
    for path in sorted((REPO / "recipes").glob("*.yml")):
        engine = yaml.safe_load(path.read_text())["engine"]
        if engine.get("build"):
            built[path.stem] = engine["build"]["ray"]
    assert set(built) >= {"qwen397b", "qwen397b-int4"} and set(built.values()) == {ray}, built
    # the simulated recipe overrides do not replace the build: the sim serves the built image
    assert "build" not in sim["sparkops_recipe_overrides"]["engine"]
