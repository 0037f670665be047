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
COLORS = {"original": "#8c8c8c", "rewritten": "#1f77b4", "strict-nonfinite": "#aec7e8"}


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
        ax.set_ylim(0, top * 1.45 if top else 1)  # room for the ratio labels and the legend
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


def device_label(machine: dict[str, Any]) -> str:
    if machine.get("gpu"):
        return f"{machine['gpu']}, torch {machine['torch']}"
    return f"CPU ({machine['cpu']}), {machine['threads']} threads, torch {machine['torch']}"


def merged_rows(files: list[Path]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """One row per (device, sequence length): the cells of every file run on it (e.g. the eager
    and TorchScript run and the compile run), in the order first seen."""
    rows: dict[tuple[str, int], tuple[str, dict[str, Any], dict[str, Any]]] = {}
    for path in files:
        data = json.loads(path.read_text())
        label = device_label(data["machine"])
        for result in data["results"]:
            key = (label, result["seq_len"])
            if key not in rows:
                rows[key] = (label, dict(data), {"seq_len": result["seq_len"], "cells": []})
            row_data, row = rows[key][1], rows[key][2]
            row_data["variants"] = list(dict.fromkeys([*row_data["variants"], *data["variants"]]))
            row["cells"].extend(result["cells"])
    return list(rows.values())


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--rsnn", type=Path, nargs="+", required=True, help="JSON files written by rsnn.py --json"
    )
    p.add_argument("--tool", type=Path, help="JSON written by tool_speed.py --json")
    p.add_argument("-o", "--output", type=Path, default=Path("docs/benchmarks.png"))
    args = p.parse_args()

    rows = merged_rows(args.rsnn)
    n_modes = max(len({c["mode"] for c in row["cells"]}) for _, _, row in rows)
    n_rows = len(rows) + (1 if args.tool else 0)
    fig, grid = plt.subplots(n_rows, n_modes, figsize=(4.2 * n_modes, 3.6 * n_rows), squeeze=False)
    for i, (label, data, result) in enumerate(rows):
        rsnn_axes(list(grid[i]), data, result)
        grid[i][0].annotate(
            label, (0, 1.13), xycoords="axes fraction", fontsize=9, fontweight="bold"
        )
    if args.tool:
        tool_axes(grid[-1][0], json.loads(args.tool.read_text()))
        for ax in grid[-1][1:]:
            ax.axis("off")
    date = json.loads(args.rsnn[0].read_text())["machine"]["date"][:10]
    fig.suptitle(
        f"fgi-rewrite benchmarks, {date}: ALIF RSNN, B=128, H=128; bar labels: original / "
        "rewritten time (> 1: rewritten faster; orange: within 3 %)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97), h_pad=2.5)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=100)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
