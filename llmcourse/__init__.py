"""llmcourse: the tested memory of the course.

Every notebook starts with::

    import llmcourse
    llmcourse.setup_notebook()

and later notebooks import what earlier ones built (``llmcourse.ngram``, ``llmcourse.tokenization``,
...) instead of copying it. Each idea lives in a module named for it; see ``COURSE.md`` for the map.
"""

from llmcourse.notebook import device, in_ci, progress, seed_everything, setup_notebook

__version__ = "0.2.0"
__all__ = ["__version__", "device", "in_ci", "progress", "seed_everything", "setup_notebook"]
