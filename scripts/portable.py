"""The whole test suite where the arithmetic differs from the machine that made the committed outputs.

    python scripts/portable.py            # what `make portable` runs
    python scripts/portable.py --shards 1 # one process after the other

Every process runs on one thread with ATen's kernels without SIMD (``ATEN_CPU_CAPABILITY=default``) and
MKL and oneDNN held to AVX2, so reductions are split and rounded differently from a multi-threaded
AVX-512 run. A check that holds only on one CPU or one thread count fails here.

One thread per process leaves the other cores idle, so the suite is cut into shards (the package tests
with notebooks 00-06, and notebooks 07-14), run side by side, each writing its log to
``.portable/shard-N.log``. Without SIMD on one thread the training cells run several times longer, so
the per-cell limit is raised to 1,200 s: this run checks arithmetic, not the time budget (``make test``
does that). Exit status 0 when every shard passes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "default",
       "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
CELL_TIMEOUT_S = 1200


def shards(n: int) -> list[list[str]]:
    """The test paths of ``n`` shards (1 or 2), balanced by their run time in the portable setting."""
    nbs = ROOT / "notebooks"
    early = sorted(str(p.relative_to(ROOT)) for p in [*nbs.glob("0[0-6]_*.ipynb"), *nbs.glob("solutions/0[0-6]_*.ipynb")])
    late = sorted(str(p.relative_to(ROOT)) for p in [*nbs.glob("0[7-9]_*.ipynb"), *nbs.glob("1*.ipynb"),
                                                     *nbs.glob("solutions/0[7-9]_*.ipynb"), *nbs.glob("solutions/1*.ipynb")])
    if n == 1:
        return [["tests", *early, *late]]
    return [["tests", *early], late]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, choices=(1, 2), default=2, help="processes side by side (default 2)")
    parser.add_argument("pytest_args", nargs="*", help="more arguments for pytest, e.g. -x")
    args = parser.parse_args(argv)
    logs = ROOT / ".portable"
    logs.mkdir(exist_ok=True)
    env = {**os.environ, **ENV}
    print("portable run: " + " ".join(f"{k}={v}" for k, v in ENV.items()), flush=True)
    start, procs = time.time(), []
    for i, paths in enumerate(shards(args.shards), 1):
        log = logs / f"shard-{i}.log"
        cmd = [sys.executable, "-m", "pytest", "-q", f"--nbval-cell-timeout={CELL_TIMEOUT_S}", *args.pytest_args, *paths]
        print(f"shard {i}: {len(paths)} paths, log {log.relative_to(ROOT)}", flush=True)
        procs.append((i, log, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)))
    status = 0
    for i, log, proc in procs:
        rc = proc.wait()
        status = status or rc
        lines = log.read_text(errors="replace").splitlines()
        failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
        print(f"\nshard {i}: exit {rc}; {lines[-1] if lines else '(no output)'}", flush=True)
        for line in failed:
            print("  " + line)
    print(f"\nportable run {'passed' if status == 0 else 'FAILED'} in {time.time() - start:.0f} s "
          f"(logs in {logs.relative_to(ROOT)}/)")
    return status


if __name__ == "__main__":
    sys.exit(main())
