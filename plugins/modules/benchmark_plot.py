#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: benchmark_plot
short_description: Plot a serving benchmark (tok/s and TTFT against concurrency) as a PNG
description:
  - Draws the levels measured by M(sparkops.cluster.serving_benchmark) - output tok/s,
    per-request decode tok/s (with the recipe's expected band) and time to first token,
    each against concurrency, one line per prompt length - into a PNG file.
  - Meant for the controller (run it with C(delegate_to=localhost)); needs matplotlib there.
version_added: 0.1.0
author: sparkops.cluster developers (@sparkops)
requirements:
  - matplotlib >= 3.5
extends_documentation_fragment:
  - sparkops.cluster.attributes
attributes:
  check_mode:
    support: full
    details: Draws the image in memory and reports whether it would differ from O(dest).
  diff_mode:
    support: none
  idempotent:
    support: full
    details: The image is written only when its bytes differ.
options:
  levels:
    description: The C(level) of each serving_benchmark result.
    type: list
    elements: dict
    required: true
  dest:
    description: Path of the PNG to write; its directory must exist.
    type: path
    required: true
  title:
    description: Title of the figure.
    type: str
    default: Serving benchmark
  band:
    description: "[low, high] expected decode tok/s, drawn as a band."
    type: list
    elements: float
"""

EXAMPLES = r"""
- name: Plot the sweep on the controller
  sparkops.cluster.benchmark_plot:
    levels: "{{ sweep.results | map(attribute='level') }}"
    dest: "{{ playbook_dir }}/benchmark.png"
    title: qwen397b on 4 DGX Spark
    band: [25, 28]
  delegate_to: localhost
"""

RETURN = r"""
dest:
  description: The PNG written.
  returned: always
  type: str
size:
  description: Bytes of the PNG.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.sparkops.cluster.plugins.module_utils._png import (
    MATPLOTLIB_ERROR, figure_bytes, pyplot, require_directory, write_if_changed)

from ansible_collections.sparkops.cluster.plugins.module_utils._bench import plot_levels


def draw(levels, title, band):
    fig, axes = pyplot.subplots(1, 3, figsize=(15, 4.5))
    series = sorted({lv["prompt_words"] for lv in levels})
    panels = ((axes[0], lambda lv: lv["output_tok_s"], "output tok/s (all requests)"),
              (axes[1], lambda lv: lv["decode_tok_s"], "decode tok/s per request"),
              (axes[2], lambda lv: (lv["ttft_ms"] or {}).get("p50"), "time to first token p50 (ms)"))
    for ax, value, label in panels:
        for words in series:
            points = sorted((lv["concurrency"], value(lv)) for lv in levels
                            if lv["prompt_words"] == words and value(lv) is not None)
            if points:
                ax.plot([pt[0] for pt in points], [pt[1] for pt in points], marker="o", label="prompt ~%d words" % words)
        ax.set_xlabel("concurrency")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.set_xscale("log", base=2)
        ticks = sorted({lv["concurrency"] for lv in levels})
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks])
        ax.minorticks_off()
    if band:
        axes[1].axhspan(band[0], band[1], color="green", alpha=0.15, label="expected %g-%g" % (band[0], band[1]))
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return figure_bytes(fig, 100)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            levels=dict(type="list", elements="dict", required=True),
            dest=dict(type="path", required=True),
            title=dict(type="str", default="Serving benchmark"),
            band=dict(type="list", elements="float"),
        ),
        supports_check_mode=True,
    )
    if MATPLOTLIB_ERROR:
        module.fail_json(msg=missing_required_lib("matplotlib", reason="to draw the benchmark plot on the controller"),
                         exception=MATPLOTLIB_ERROR)
    p = module.params
    try:
        levels = plot_levels(p["levels"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if p["band"] is not None and (len(p["band"]) != 2 or p["band"][0] > p["band"][1]):
        module.fail_json(msg="band must be [low, high] with low <= high, got %s" % p["band"])
    require_directory(module, p["dest"])
    png = draw(levels, p["title"], p["band"])
    changed = write_if_changed(module, p["dest"], png)
    module.exit_json(changed=changed, dest=p["dest"], size=len(png))


if __name__ == "__main__":
    main()
