# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A PNG a module draws on the controller (benchmark_plot, metrics_plot): its directory
checked before the drawing, its bytes without a timestamp, written only when they differ
(so a second run with the same data changes nothing), atomically, never in check mode."""

from __future__ import annotations

import io
import os
import traceback

# matplotlib on the Agg backend, or the import's traceback where it is missing (the module
# then fails with missing_required_lib).
try:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot
except ImportError:
    pyplot = None
    MATPLOTLIB_ERROR = traceback.format_exc()
else:
    MATPLOTLIB_ERROR = None


def require_directory(module, dest):
    """Fail, naming the fix, when dest's directory does not exist."""
    directory = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(directory):
        module.fail_json(msg="dest %s: its directory %s does not exist; create it first (ansible.builtin.file "
                             "state=directory)" % (dest, directory))


def figure_bytes(fig, dpi):
    """The figure as PNG bytes, without matplotlib's Software stamp; the figure closed."""
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi, metadata={"Software": None})
    pyplot.close(fig)
    return out.getvalue()


def write_if_changed(module, dest, png):
    """Whether dest changes; written through the module's temporary directory and an atomic
    move, unless in check mode."""
    old = None
    if os.path.exists(dest):
        with open(dest, "rb") as fh:
            old = fh.read()
    changed = old != png
    if changed and not module.check_mode:
        tmp = os.path.join(module.tmpdir, os.path.basename(dest) or "plot.png")
        with open(tmp, "wb") as fh:
            fh.write(png)
        module.atomic_move(tmp, dest)
    return changed
