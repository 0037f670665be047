"""Time and peak memory of ``fgi-rewrite --check --verify none`` on one big generated module.

Two projects, each a single module of about ``--size-mb`` MB in the style of generated code
(a weight table and a small layer function per entry):

* **no call**: nothing a surrogate could use (the module imports torch, nothing else);
* **one call**: the same with a surrogate Function and one call of it at the end.

Each is run in a fresh process (``python -m fgi_rewrite``); wall time, CPU time (user + system)
and peak resident memory (``ru_maxrss`` of that process) are printed. ``--source DIR`` runs the
checkout in DIR instead of this one (put first on ``PYTHONPATH``), to compare with another
commit::

    python benchmarks/big_file.py
    git worktree add /tmp/before <commit> && python benchmarks/big_file.py --source /tmp/before
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

SURROGATE = """

class SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (1.0 + 10.0 * x.abs()) ** 2


def fire(v):
    return SpikeFn.apply(v - 1.0)
"""


def generated_module(size: int) -> str:
    """About ``size`` characters of generated-looking code (deterministic)."""
    draw = random.Random(0)
    lines = ['"""Lookup tables, written by a code generator."""', "import torch", "", ""]
    written = 0
    index = 0
    while written < size:
        values = ", ".join(f"{draw.uniform(-1, 1):.8f}" for _ in range(8))
        table = f"W_{index} = torch.tensor([{values}])"
        layer = f"def layer_{index}(x):\n    return torch.relu(x * W_{index}[0] + W_{index}[1])\n"
        lines += [table, layer]
        written += len(table) + len(layer) + 2
        index += 1
    return "\n".join(lines) + "\n"


def measure(source: Path, project: Path) -> dict[str, Any]:
    """One run in a fresh process: wall and CPU seconds, peak resident memory in MB."""
    env = {**os.environ, "PYTHONPATH": str(source), "FGI_REWRITE_VERIFY": "none"}
    command = [sys.executable, "-m", "fgi_rewrite", "--check", "--verify", "none", str(project)]
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=project
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode() if process.stderr else ""
    return {
        "exit_status": os.waitstatus_to_exitcode(status),
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KB on Linux
        "summary": stderr.strip().splitlines()[-1] if stderr.strip() else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=5.0)
    parser.add_argument("--source", type=Path, default=REPO, help="checkout to run")
    parser.add_argument("--cases", default="no-call,one-call")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    text = generated_module(int(args.size_mb * 1_000_000))
    results = {}
    with tempfile.TemporaryDirectory() as temp:
        for case in args.cases.split(","):
            project = Path(temp) / case
            (project / ".git").mkdir(parents=True)
            module = project / "tables.py"
            module.write_text(text + (SURROGATE if case == "one-call" else ""))
            results[case] = {"bytes": module.stat().st_size, **measure(args.source, project)}
            print(case, json.dumps(results[case]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
