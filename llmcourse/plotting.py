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


class LiveLossPlot:
    """A loss plot that redraws itself while a model trains: pass it as the trainer's ``callback``.

        live = LiveLossPlot("LLaMA-style, 3 layers")
        Trainer(model, train_ids, val_ids, config, callback=live).fit()

    In JupyterLab the figure updates in place after every evaluation; in a script (or a committed
    notebook) the last state is what remains. ``unit`` labels the y axis.
    """

    def __init__(self, title: str = "", unit: str = "loss (nats per token)", log_x: bool = False):
        self.title, self.unit, self.log_x = title, unit, log_x
        self._handle = None
        self.fig = None

    def __call__(self, trainer) -> None:
        import matplotlib.pyplot as plt

        h = trainer.history
        if self.fig is None:
            self.fig, self.ax = plt.subplots(figsize=(7, 3.6))
            plt.close(self.fig)  # shown through the display handle only, not again at the cell's end
        ax = self.ax
        ax.clear()
        # markers: the first evaluation is a single point, which a line alone would not draw
        ax.plot(h.steps, h.train_loss, marker="o", ms=3, label="train (mean since last point)")
        ax.plot(h.steps, h.val_loss, marker="o", ms=3, label="validation sample")
        total = trainer.config.steps
        if total is not None:
            ax.set_xlim(0, total)
        if self.log_x:
            ax.set_xscale("log")
        ax.set(xlabel="step", ylabel=self.unit,
               title=f"{self.title}  step {h.steps[-1]}: train {h.train_loss[-1]:.3f}, val {h.val_loss[-1]:.3f}")
        ax.legend()
        self._show()

    def _show(self) -> None:
        from IPython.display import display

        if self._handle is None:
            self._handle = display(self.fig, display_id=True)
        else:
            self._handle.update(self.fig)
