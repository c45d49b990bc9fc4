"""Figures: one house style so every plot in the course looks alike and reads well on GitHub."""

from __future__ import annotations

import matplotlib


def use_course_style() -> None:
    """Set matplotlib defaults: a readable size, a grid, no top/right spines, a PNG DPI that keeps
    committed notebooks small."""
    matplotlib.rcParams.update(
        {
            "figure.figsize": (7.0, 4.0),
            "figure.dpi": 80,
            "savefig.dpi": 80,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 12,
            "axes.labelsize": 11,
            "legend.frameon": False,
        }
    )
