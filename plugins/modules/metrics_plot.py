#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: metrics_plot
short_description: Draw named Prometheus series of the last hours as one PNG
description:
  - Draws the series read by M(sparkops.cluster.metrics_query), one panel per name, one line per series (labelled by
    its C(node) label, else C(instance)), against the time before the end of the range (minutes up to three hours,
    else hours), into a PNG file.
  - Meant for the controller (run it with C(delegate_to=localhost)); needs matplotlib there.
version_added: 0.3.0
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
  series:
    description: The C(series) of M(sparkops.cluster.metrics_query) (name -> list of {metric, points}).
    type: dict
    required: true
  end:
    description: The end of the range (unix seconds), M(sparkops.cluster.metrics_query)'s C(end).
    type: float
    required: true
  dest:
    description: Path of the PNG to write; its directory must exist.
    type: path
    required: true
  title:
    description: The figure's title.
    type: str
    default: The cluster, the last hours
  labels:
    description:
      - Each panel's label, by the series' name (e.g. C(generation_tok_s) -> C(Generation (tokens/s))); the panels are
        drawn in this order, then any other name in alphabetical order, labelled by its name.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Draw the last hours on the controller
  sparkops.cluster.metrics_plot:
    series: "{{ metrics.series }}"
    end: "{{ metrics.end }}"
    dest: "{{ lookup('ansible.builtin.env', 'HOME') }}/.cache/sparkops/status/last-hours.png"
  delegate_to: localhost
"""

RETURN = r"""
dest:
  description: Path of the PNG.
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


def _label(metric):
    return metric.get("node") or metric.get("instance") or metric.get("__name__") or "series"


def _unit(series, end):
    """(seconds per unit, its name): minutes for a range of up to three hours, else hours."""
    times = [float(t) for one in series.values() for s in one for t, _v in s.get("points") or []]
    return (60.0, "minutes") if not times or end - min(times) <= 3 * 3600 else (3600.0, "hours")


def draw(series, end, title, labels=None):
    labels = labels or {}
    names = [n for n in labels if n in series] + sorted(n for n in series if n not in labels)
    per, unit = _unit(series, end)
    fig, axes = pyplot.subplots(len(names), 1, figsize=(10, 2.2 * len(names) + 0.6), squeeze=False, sharex=True)
    for ax, name in zip(axes[:, 0], names):
        lines = 0
        for one in sorted(series[name], key=lambda s: _label(s.get("metric") or {})):
            points = [(float(t), v) for t, v in one.get("points") or [] if v is not None]
            if points:
                ax.plot([(t - end) / per for t, _v in points], [v for _t, v in points],
                        label=_label(one.get("metric") or {}))
                lines += 1
        if not lines:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(labels.get(name, name), fontsize=9, loc="left")
        ax.grid(True, alpha=0.3)
        if lines > 1:  # one line per node: name them; a cluster-wide sum needs no legend
            ax.legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("%s before the end of the range" % unit)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return figure_bytes(fig, 90)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            series=dict(type="dict", required=True),
            end=dict(type="float", required=True),
            dest=dict(type="path", required=True),
            title=dict(type="str", default="The cluster, the last hours"),
            labels=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    if MATPLOTLIB_ERROR:
        module.fail_json(msg=missing_required_lib("matplotlib", reason="to draw the metrics on the controller"),
                         exception=MATPLOTLIB_ERROR)
    p = module.params
    if not p["series"] or not all(isinstance(v, list) for v in p["series"].values()):
        module.fail_json(msg="series must map each name to a list of series (metrics_query's series)")
    require_directory(module, p["dest"])
    png = draw(p["series"], p["end"], p["title"], p["labels"])
    changed = write_if_changed(module, p["dest"], png)
    module.exit_json(changed=changed, dest=p["dest"], size=len(png))


if __name__ == "__main__":
    main()
