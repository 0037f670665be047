"""Plot the JSON results of ``rsnn.py`` (and optionally ``tool_speed.py``) into one PNG.

    python benchmarks/plot.py --rsnn rsnn.json [--tool tool.json] -o docs/benchmarks.png

Needs matplotlib (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BACKEND_LABEL = {"eager": "eager", "script": "TorchScript", "compile": "compile\n(fullgraph)"}
MODE_LABEL = {
    "train": "training step (fwd + bwd + Adam)",
    "no_grad": "inference (no_grad)",
    "fwd_grad": "forward with autograd on",
}
COLORS = {"original": "#8c8c8c", "rewritten": "#1f77b4"}


def rsnn_axes(axes: list[Any], data: dict[str, Any], result: dict[str, Any]) -> None:
    variants = data["variants"]
    cells = {(c["backend"], c["mode"], c["variant"]): c for c in result["cells"]}
    backends = [b for b in ("eager", "script", "compile") if any(k[0] == b for k in cells)]
    modes = [m for m in ("train", "no_grad", "fwd_grad") if any(k[1] == m for k in cells)]
    width = 0.8 / len(variants)
    for ax, mode in zip(axes, modes, strict=False):
        top = 0.0
        for i, variant in enumerate(variants):
            xs, ys = [], []
            for j, backend in enumerate(backends):
                cell = cells.get((backend, mode, variant))
                median = cell["median_s"] if cell else math.nan
                if median is None or (isinstance(median, float) and math.isnan(median)):
                    continue
                xs.append(j + (i - (len(variants) - 1) / 2) * width)
                ys.append(median * 1e3)
            top = max([top, *ys])
            ax.bar(xs, ys, width, label=variant, color=COLORS.get(variant))
        for j, backend in enumerate(backends):
            o = cells.get((backend, mode, variants[0]))
            r = cells.get((backend, mode, variants[1])) if len(variants) > 1 else None
            if o and r and o["median_s"] and r["median_s"]:
                ratio = o["median_s"] / r["median_s"]
                ax.annotate(
                    f"{ratio:.2f}x",
                    (j, max(o["median_s"], r["median_s"]) * 1e3),
                    ha="center",
                    va="bottom",
                    fontsize=9,
                    color="#2ca02c" if ratio >= 1.0 else "#ff7f0e" if ratio >= 0.97 else "#d62728",
                )
            elif o and not o["median_s"] or o and o["note"].startswith("n/a"):
                ax.annotate("n/a", (j, 0), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(backends)), [BACKEND_LABEL[b] for b in backends])
        ax.set_ylim(0, top * 1.18 if top else 1)
        ax.set_title(f"{MODE_LABEL[mode]}, T={result['seq_len']}", fontsize=10)
        ax.set_ylabel("median ms per call")
    axes[0].legend(fontsize=8, loc="upper right")


def tool_axes(ax: Any, data: dict[str, Any]) -> None:
    labels = []
    groups = []
    for r in data["results"]:
        labels.append(f"{r['tree']}\n({r['files']} files)")
        groups.append(r["median_s"])
    tools = list(dict.fromkeys(t for g in groups for t in g))
    width = 0.8 / len(tools)
    palette = ["#1f77b4", "#aec7e8", "#8c8c8c"]
    for i, tool in enumerate(tools):
        xs = [j + (i - (len(tools) - 1) / 2) * width for j in range(len(groups))]
        ys = [g.get(tool, 0.0) for g in groups]
        ax.bar(xs, ys, width, label=tool, color=palette[i % len(palette)])
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(f"{y:.1f}", (x, y), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(groups)), labels)
    ax.set_ylabel("median wall s")
    ax.set_title("tool speed: --check on a tree", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_ylim(0, max(max(g.values()) for g in groups) * 1.25)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rsnn", type=Path, required=True, help="JSON written by rsnn.py --json")
    p.add_argument("--tool", type=Path, help="JSON written by tool_speed.py --json")
    p.add_argument("-o", "--output", type=Path, default=Path("docs/benchmarks.png"))
    args = p.parse_args()

    data = json.loads(args.rsnn.read_text())
    results = data["results"]
    n_modes = len({c["mode"] for c in results[0]["cells"]})
    rows = len(results) + (1 if args.tool else 0)
    fig, grid = plt.subplots(rows, n_modes, figsize=(4.2 * n_modes, 3.6 * rows), squeeze=False)
    for row, result in enumerate(results):
        rsnn_axes(list(grid[row]), data, result)
    if args.tool:
        tool_axes(grid[-1][0], json.loads(args.tool.read_text()))
        for ax in grid[-1][1:]:
            ax.axis("off")
    m = data["machine"]
    fig.suptitle(
        f"fgi-rewrite benchmarks, {m['date'][:10]}: {m['cpu']}, {m['cores']} cores, "
        f"{m['threads']} threads, torch {m['torch']} (CPU); ALIF RSNN B={data['args']['batch']}, "
        f"H=128; labels: original/rewritten time ratio (>1: rewritten faster; orange: within 3%)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
