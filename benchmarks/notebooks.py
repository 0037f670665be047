"""What a Jupyter notebook costs the tool compared with the same code in a module.

Generates, in a temporary directory, a large notebook as Jupyter writes it: a surrogate defined
in one cell and applied in every third of ``--cells`` code cells (each with a line magic or a
shell escape every few cells, a markdown cell between code cells, and a PNG output of
``--output-kb`` in every code cell), the same code cells concatenated into a ``.py`` module
(the magics' own code kept), and the notebook again without the surrogate (nothing to rewrite:
the prefilter's case). Each is timed in process, ``run([path], Options(check=True,
verify="none"))``, ``--reps`` times in alternating order; medians of the CPU time are printed,
and the notebook's overhead (reading the JSON, masking, mapping positions back to cells,
writing the cells back) is the difference with the module.

    python benchmarks/notebooks.py                     # 300 cells, 20 kB outputs, 5 repetitions
    python benchmarks/notebooks.py --cells 1000 --output-kb 5
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fgi_rewrite import Options, run  # noqa: E402

SURROGATE = """class SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, slope=5.0):
        ctx.save_for_backward(v)
        ctx.slope = slope
        return (v > 0).float()

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad / (1.0 + ctx.slope * v.abs()) ** 2, None"""


def code_cells(count: int, surrogate: bool) -> list[str]:
    cells = ["%matplotlib inline\nimport torch\nimport math", SURROGATE if surrogate else "x = 0"]
    for i in range(count - 2):
        call = f"SpikeFn.apply(v{i} - 0.5)" if surrogate and i % 3 == 0 else f"v{i}.sigmoid()"
        magic = "%time w = 1\n" if i % 5 == 0 else "!echo step\n" if i % 7 == 0 else ""
        cells.append(
            f"v{i} = torch.randn(8, 4)\n"
            f"def layer_{i}(v, w=0.5):\n    return torch.tanh(v * w) + math.pi\n"
            f"{magic}s{i} = {call}\ns{i}.sum()"
        )
    return cells


def notebook(cells: list[str], output_kb: int) -> str:
    image = base64.b64encode(bytes(range(256)) * (output_kb * 3)).decode()[: output_kb * 1024]
    out = []
    for i, source in enumerate(cells):
        out.append({"cell_type": "markdown", "id": f"m{i}", "metadata": {}, "source": [f"## {i}"]})
        out.append(
            {
                "cell_type": "code",
                "execution_count": i + 1,
                "id": f"c{i}",
                "metadata": {},
                "outputs": [
                    {
                        "data": {"image/png": image, "text/plain": ["<Figure>"]},
                        "metadata": {},
                        "output_type": "display_data",
                    }
                ],
                "source": source.splitlines(True),
            }
        )
    body = {"cells": out, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(body, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def as_module(cells: list[str]) -> str:
    lines = [
        line.replace("%time ", "")
        for cell in cells
        for line in cell.splitlines()
        if not line.startswith(("%matplotlib", "!"))
    ]  # the magics' own code stays, so that both have the same statements
    return "\n".join(lines) + "\n"


def timed(path: Path) -> tuple[float, int]:
    """CPU seconds of this process (the run has no subprocess with ``verify="none"``): on a
    shared machine they vary less than wall time."""
    start = time.process_time()
    report = run([path], Options(check=True, verify="none"))
    assert not report.internal_errors, report.internal_errors
    return time.process_time() - start, report.call_sites


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--output-kb", type=int, default=20)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        (root / "pyproject.toml").write_text("")
        cells = code_cells(args.cells, surrogate=True)
        paths = {
            "notebook": root / "big.ipynb",
            "module": root / "big.py",
            "notebook without surrogate": root / "plain" / "big.ipynb",
        }
        paths["notebook"].write_text(notebook(cells, args.output_kb), encoding="utf-8")
        paths["module"].write_text(as_module(cells), encoding="utf-8")
        paths["notebook without surrogate"].parent.mkdir()
        (paths["notebook without surrogate"].parent / "pyproject.toml").write_text("")
        plain = notebook(code_cells(args.cells, surrogate=False), args.output_kb)
        paths["notebook without surrogate"].write_text(plain, encoding="utf-8")
        times: dict[str, list[float]] = {name: [] for name in paths}
        sites: dict[str, int] = {}
        for _ in range(args.reps):
            for name, path in paths.items():
                seconds, sites[name] = timed(path)
                times[name].append(seconds)
        print(f"{args.cells} code cells, {args.output_kb} kB outputs; medians of {args.reps}")
        for name, path in paths.items():
            size = path.stat().st_size / 1e6
            median = statistics.median(times[name])
            print(f"{name:28} {size:6.1f} MB  {median:6.3f} s CPU  {sites[name]} call sites")
        overhead = statistics.median(times["notebook"]) - statistics.median(times["module"])
        print(f"notebook overhead: {overhead:+.3f} s")


if __name__ == "__main__":
    main()
