"""What formatting the inserted code with black costs a run (rewrite/formatting.py).

Runs ``fgi-rewrite --diff --verify none --jobs 1`` in this process over the given trees (default:
snntorch and spikingjelly of the SNN corpus) and times every call of ``formatting.format_code``
(black's formatting of a block, a generated function, an import, or the check of an edited
statement), and, in a fresh interpreter, black's import. Prints the run's wall time, the time
spent formatting and per rewritten call site.

    python benchmarks/formatting_cost.py
    python benchmarks/formatting_cost.py ~/.cache/fgi-rewrite-corpus/src/norse --reps 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fgi_rewrite.pipeline import run as run_module
from fgi_rewrite.rewrite import formatting

CORPUS = Path(os.environ.get("FGI_CORPUS_DIR", "~/.cache/fgi-rewrite-corpus")).expanduser() / "src"
DEFAULT_TREES = [CORPUS / "snntorch", CORPUS / "spikingjelly"]


def black_import_seconds() -> float:
    code = "import time; t = time.perf_counter(); import black; print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout)


def timed(spent: list[float], function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=Path, default=DEFAULT_TREES)
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args()
    spent: list[float] = []
    formatting.format_code = timed(spent, formatting.format_code)  # type: ignore[assignment]
    walls, formats, sites = [], [], 0
    for _ in range(args.reps):
        spent.clear()
        start = time.perf_counter()
        report = run_module.run(args.trees, run_module.Options(diff=True, jobs=1))
        walls.append(time.perf_counter() - start)
        formats.append(sum(spent))
        sites = sum(len(r.call_sites) for r in report.changed)
    calls = len(spent)
    imported = black_import_seconds()
    print(f"trees: {', '.join(str(t) for t in args.trees)}")
    print(f"run (median of {args.reps}): {statistics.median(walls):.2f} s, {sites} call sites")
    print(
        f"formatting: {statistics.median(formats):.3f} s in {calls} calls of format_code "
        f"({1000 * statistics.median(formats) / max(calls, 1):.1f} ms each, "
        f"{1000 * statistics.median(formats) / max(sites, 1):.1f} ms per call site)"
    )
    print(f"black import (fresh interpreter): {imported:.3f} s")


if __name__ == "__main__":
    main()
