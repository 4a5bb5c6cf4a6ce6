"""Timeline PNG per workload: queue depth, desired and running tasks for every policy."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.policies.lower_bound import NAME as LOWER_BOUND
from bench.results import Result
from bench.workloads import Workload

PANELS = ((1, "queue depth (visible)"), (2, "desired tasks"), (3, "running tasks"))


def timeline_png(path: Path, workload: Workload, results: dict[str, Result]) -> dict[str, list[str]]:
    """Write the PNG; return each panel's title -> the policies drawn on it (in legend order)."""
    short = workload.window_s < 3 * 3600
    scale, unit = (60.0, "minutes") if short else (3600.0, "hours")
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(12, 9), sharex=True)
    for name, r in results.items():
        if not len(r.timeline):
            continue
        t = r.timeline[:, 0] / scale
        style = {"linestyle": "--", "color": "black", "linewidth": 1.0} if name == LOWER_BOUND else {"linewidth": 1.0}
        for ax, (column, _) in zip(axes, PANELS, strict=True):
            ax.step(t, r.timeline[:, column], where="post", label=r.label, **style)
    for ax, (_, title) in zip(axes, PANELS, strict=True):
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    if short:
        end = max(float(r.timeline[-1, 0]) for r in results.values() if len(r.timeline))
        axes[-1].set_xlim(0, min(end, 2 * 3600.0) / scale)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel(unit)
    fig.suptitle(f"{workload.name}: {workload.description}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    drawn = {
        title: [str(line.get_label()) for line in ax.get_lines()] for ax, (_, title) in zip(axes, PANELS, strict=True)
    }
    plt.close(fig)
    return drawn
