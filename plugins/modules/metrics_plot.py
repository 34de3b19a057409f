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
    its C(node) label, else C(instance)), against the hours before the end of the range, into a PNG file.
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

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.sparkops.cluster.plugins.module_utils._png import figure_bytes, require_directory, write_if_changed

try:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot
except ImportError:
    MATPLOTLIB_ERROR = traceback.format_exc()
else:
    MATPLOTLIB_ERROR = None


def _label(metric):
    return metric.get("node") or metric.get("instance") or metric.get("__name__") or "series"


def draw(series, end, title):
    names = sorted(series)
    fig, axes = pyplot.subplots(len(names), 1, figsize=(10, 2.6 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        drawn = False
        for one in sorted(series[name], key=lambda s: _label(s.get("metric") or {})):
            points = [(float(t), v) for t, v in one.get("points") or [] if v is not None]
            if points:
                ax.plot([(t - end) / 3600.0 for t, _v in points], [v for _t, v in points],
                        label=_label(one.get("metric") or {}))
                drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylabel(name, fontsize=8)
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("hours before the end of the range")
    fig.suptitle(title)
    fig.tight_layout()
    return figure_bytes(fig, pyplot, 90)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            series=dict(type="dict", required=True),
            end=dict(type="float", required=True),
            dest=dict(type="path", required=True),
            title=dict(type="str", default="The cluster, the last hours"),
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
    png = draw(p["series"], p["end"], p["title"])
    changed = write_if_changed(module, p["dest"], png)
    module.exit_json(changed=changed, dest=p["dest"], size=len(png))


if __name__ == "__main__":
    main()
