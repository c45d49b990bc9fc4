"""How long each notebook takes, top to bottom in a fresh kernel, against the 4-minute budget.

    python benchmarks/course_runtime.py            # all notebooks, outputs not saved

The promise (COURSE.md): at most 240 s per notebook, 25 minutes for the course, on a 2-core CPU.
`pytest` prints the same table at the end of every test run.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from run_notebooks import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main([a for a in sys.argv[1:] if a != "--write"]))
