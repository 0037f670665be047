"""Benchmark the code `fgi-rewrite` emits: ALIF recurrent SNN, original vs rewritten.

The FGI paper's setup (Otte 2024, arXiv 2406.00177): an adaptive-LIF recurrent layer (hidden 128,
batch 128; the input concatenated with the previous step's spikes goes through one bias-free
linear map), a leaky-integrator readout, cross-entropy on the time-mean of the readout, Adam.
Inputs are synthetic (uniform in [0, 1), like sequential-MNIST intensities; random labels), so
nothing is downloaded.

The *original* is ``benchmarks/rsnn_model.py`` (a custom-backward SuperSpike ``autograd.Function``
used through an alias). The *rewritten* model is produced at benchmark time: the original is copied
to a temporary directory and ``python -m fgi_rewrite`` rewrites the copy in place. Both are imported
from their copies and run side by side, interleaved, in this process, from the same initial weights.

Cells: {eager, TorchScript (torch.jit.script), torch.compile(fullgraph=True)} x
{train (forward + backward + Adam step), no_grad (inference), fwd+grad (forward with autograd on,
no backward)}. Per cell: warm-up (the first call, which scripts/compiles, and a few more) is timed
separately and excluded; then ``--reps`` timed calls per variant, alternating which variant goes
first; medians are reported.

    python benchmarks/rsnn.py                      # CPU defaults (T=16), a few minutes on 2 cores
    python benchmarks/rsnn.py --seq-len 28 56 --backends eager script
    python benchmarks/rsnn.py --json out.json      # machine-readable results (for plot.py)

Extra variants (for trying other emitted forms by hand; not part of the default run) can be added
with ``--variant LABEL=PATH``: PATH must define ``RSNN`` with the same constructor. ``--exact``
adds the exact form (``--exact-higher-order``, emitted where a project differentiates twice), and
``--modes ... penalty`` a training step with an input-gradient penalty (``create_graph=True``):

    python benchmarks/rsnn.py --exact --modes train no_grad fwd_grad penalty
"""

from __future__ import annotations

import argparse
import copy
import datetime
import importlib.util
import io
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
MODEL_SOURCE = HERE / "rsnn_model.py"

BACKENDS = ("eager", "script", "compile")
MODES = ("train", "no_grad", "fwd_grad", "penalty")
DEFAULT_MODES = ("train", "no_grad", "fwd_grad")
BACKEND_LABEL = {"eager": "eager", "script": "TorchScript", "compile": "compile(fullgraph)"}
MODE_LABEL = {
    "train": "train step",
    "no_grad": "no_grad",
    "fwd_grad": "fwd+grad",
    "penalty": "penalty step",
}
DEVICE = torch.device("cpu")  # set from --device in main()
# The timer of the timed repetitions (--clock): wall time, or the CPU time of this process, which
# other processes on a shared machine disturb far less (meaningful with --threads 1 on CPU).
CLOCK: Callable[[], float] = time.perf_counter


def synchronize() -> None:
    """Wait for queued GPU work, so that a timer reads the work's end and not its launch."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


# --------------------------------------------------------------------------------------------
# Producing and importing the variants
# --------------------------------------------------------------------------------------------


def strip_skip(source: str) -> str:
    """The repository's baseline marks its call ``# fgi: skip`` (so that a repository-wide run of
    the tool leaves it alone); the copies benchmarked here must not carry the marker."""
    return source.replace("  # fgi: skip", "")


def rewrite_copy(
    workdir: Path, style: str, label: str = "rewritten", options: tuple[str, ...] = ()
) -> tuple[Path, float, str]:
    """Copy the original model into ``workdir/<label>`` and rewrite it with the installed tool
    (``options``: more command-line options, e.g. ``--exact-higher-order``)."""
    dest = workdir / label
    dest.mkdir()
    target = dest / MODEL_SOURCE.name
    shutil.copy2(MODEL_SOURCE, target)
    target.write_text(strip_skip(MODEL_SOURCE.read_text()))
    cmd = [sys.executable, "-m", "fgi_rewrite", "--style", style, *options, str(target)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"fgi-rewrite failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    if target.read_text() == strip_skip(MODEL_SOURCE.read_text()):
        sys.exit(f"fgi-rewrite did not change {target}:\n{proc.stdout}{proc.stderr}")
    return target, elapsed, (proc.stdout + proc.stderr).strip()


def import_path(path: Path, name: str) -> ModuleType:
    # Registered in sys.modules and backed by a real file so that TorchScript can read its source.
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Variant:
    label: str
    module: ModuleType
    path: Path


# --------------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------------


@dataclass
class Cell:
    """One (backend, mode, variant): a zero-argument step function, or why there is none."""

    fn: Callable[[], Any] | None
    note: str = ""
    first_s: float = math.nan  # the first call (scripting/compiling happens here)
    warmup_s: float = math.nan  # first call + the further warm-up calls
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else math.nan


def first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text.split(". ")[0]
    return f"{type(exc).__name__}: {text[:160]}"


def build_model(
    variant: Variant, backend: str, state: dict[str, torch.Tensor], n_in: int
) -> tuple[nn.Module, nn.Module, str]:
    """(trainable module, callable module, note). Raises if the backend refuses the model."""
    model = variant.module.RSNN(n_in).to(DEVICE)
    model.load_state_dict(copy.deepcopy(state))
    note = ""
    if backend == "eager":
        return model, model, note
    if backend == "script":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = torch.jit.script(model)
        python_ops = scripted.forward.graph.findAllNodes("prim::PythonOp")
        if python_ops:
            note = f"scripted with {len(python_ops)} opaque prim::PythonOp (calls back into Python)"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.jit.save(scripted, io.BytesIO())
        except Exception as exc:  # noqa: BLE001 - the reason is the result
            note = (note + "; " if note else "") + "torch.jit.save fails: " + first_line(exc)
        return scripted, scripted, note
    if backend == "compile":
        compiled = torch.compile(model, fullgraph=True)
        return model, compiled, note
    raise ValueError(backend)


def make_step(
    mode: str, trainable: nn.Module, call: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float
) -> Callable[[], Any]:
    loss_fn = nn.CrossEntropyLoss()
    if mode == "train":
        opt = torch.optim.Adam(trainable.parameters(), lr=lr)

        def train() -> Any:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(call(x), y)
            loss.backward()
            opt.step()
            return loss

        return train
    if mode == "no_grad":

        def infer() -> Any:
            with torch.no_grad():
                return call(x)

        return infer
    if mode == "fwd_grad":

        def forward() -> Any:
            with torch.enable_grad():
                return call(x)

        return forward
    if mode == "penalty":
        opt = torch.optim.Adam(trainable.parameters(), lr=lr)

        def penalized() -> Any:
            # An input-gradient penalty: differentiates the surrogate gradient (create_graph).
            opt.zero_grad(set_to_none=True)
            inputs = x.detach().requires_grad_()
            loss = loss_fn(call(inputs), y)
            (grad_x,) = torch.autograd.grad(loss, inputs, create_graph=True)
            total = loss + grad_x.norm()  # scale-free: d norm / d param is visible at any |g|
            total.backward()
            opt.step()
            return total

        return penalized
    raise ValueError(mode)


# --------------------------------------------------------------------------------------------
# Sanity: first training step of both variants from the same weights
# --------------------------------------------------------------------------------------------


def sanity(
    variants: list[Variant], state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> list[str]:
    lines = []
    ref_loss = None
    ref_grads: dict[str, torch.Tensor] = {}
    for variant in variants:
        model = variant.module.RSNN(x.shape[-1]).to(DEVICE)
        model.load_state_dict(copy.deepcopy(state))
        out = model(x)
        loss = nn.functional.cross_entropy(out, y)
        loss.backward()
        grads = {
            n: (torch.zeros_like(p) if p.grad is None else p.grad.detach().clone())
            for n, p in model.named_parameters()
        }
        with torch.no_grad():
            out_ng = model(x)
        if ref_loss is None:
            ref_loss, ref_grads, ref_out = loss.detach(), grads, out_ng
            lines.append(f"{variant.label:>10}: loss {loss.item():.9g}")
            continue
        same_loss = torch.equal(loss.detach(), ref_loss)
        same_out = torch.equal(out_ng, ref_out)
        worst = 0.0
        for name, g in grads.items():
            r = ref_grads[name]
            rel = ((g - r).abs().max() / r.abs().max().clamp_min(1e-30)).item()
            worst = max(worst, rel)
            ok = torch.allclose(g, r, rtol=1e-4, atol=1e-7)
            if not ok:
                lines.append(f"  MISMATCH: gradient of {name} differs (max rel {rel:.2e})")
        lines.append(
            f"{variant.label:>10}: loss {loss.item():.9g} "
            f"({'bitwise equal' if same_loss else f'DIFFERENT: {(loss - ref_loss).item():.3g}'}), "
            f"no_grad output {'bitwise equal' if same_out else 'DIFFERENT'}, "
            f"max |grad diff| / max |grad| = {worst:.2e}"
        )
    return lines


def penalty_sanity(
    variants: list[Variant], state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> list[str]:
    """The penalty step's parameter gradients (second derivatives through the surrogate) of each
    variant against the original's: the exact form matches, the fast form does not."""
    grads: dict[str, dict[str, torch.Tensor]] = {}
    for variant in variants:
        model = variant.module.RSNN(x.shape[-1]).to(DEVICE)
        model.load_state_dict(copy.deepcopy(state))
        inputs = x.detach().requires_grad_()
        loss = nn.functional.cross_entropy(model(inputs), y)
        (grad_x,) = torch.autograd.grad(loss, inputs, create_graph=True)
        (loss + grad_x.norm()).backward()
        grads[variant.label] = {
            n: torch.zeros_like(p) if p.grad is None else p.grad
            for n, p in model.named_parameters()
        }
    reference = grads[variants[0].label]
    lines = []
    for variant in variants[1:]:
        worst = max(
            ((g - reference[n]).abs().max() / reference[n].abs().max().clamp_min(1e-30)).item()
            for n, g in grads[variant.label].items()
        )
        lines.append(
            f"{variant.label:>10}: penalty step, max |grad diff| / max |grad| = {worst:.2e}"
        )
    return lines


# --------------------------------------------------------------------------------------------
# Running one sequence length
# --------------------------------------------------------------------------------------------


def run_length(args: argparse.Namespace, variants: list[Variant], seq_len: int) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    x = torch.rand(seq_len, args.batch, args.n_in, device=DEVICE)
    y = torch.randint(0, 10, (args.batch,), device=DEVICE)
    init = variants[0].module.RSNN(args.n_in).to(DEVICE)
    state = {k: v.detach().clone() for k, v in init.state_dict().items()}

    print(f"\n=== T={seq_len}, B={args.batch}, n_in={args.n_in}, hidden={init.n_hidden} ===")
    print("sanity (eager, first training step from the same weights):")
    sanity_lines = sanity(variants, state, x, y)
    if "penalty" in args.modes:
        sanity_lines += penalty_sanity(variants, state, x, y)
    for line in sanity_lines:
        print("  " + line)

    cells: dict[tuple[str, str, str], Cell] = {}
    for backend in args.backends:
        for variant in variants:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    trainable, call, note = build_model(variant, backend, state, args.n_in)
            except Exception as exc:  # noqa: BLE001
                reason = first_line(exc)
                kind = {"script": "not scriptable", "compile": "does not compile"}[backend]
                for mode in args.modes:
                    cells[(backend, mode, variant.label)] = Cell(
                        None, f"n/a ({variant.label} {kind}: {reason})"
                    )
                continue
            for mode in args.modes:
                step = make_step(mode, trainable, call, x, y, args.lr)
                cell = Cell(step, note)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        t0 = time.perf_counter()
                        step()
                        synchronize()
                        cell.first_s = time.perf_counter() - t0
                        for _ in range(args.warmup):
                            step()
                        synchronize()
                        cell.warmup_s = time.perf_counter() - t0
                except Exception as exc:  # noqa: BLE001
                    kind = {
                        "eager": "fails",
                        "script": "fails scripted",
                        "compile": "fails to compile",
                    }
                    cell = Cell(None, f"n/a ({variant.label} {kind[backend]}: {first_line(exc)})")
                cells[(backend, mode, variant.label)] = cell
                print(
                    f"  warm-up {BACKEND_LABEL[backend]:>18} {MODE_LABEL[mode]:>10} "
                    f"{variant.label:>10}: first call {cell.first_s:8.3f} s, "
                    f"warm-up total {cell.warmup_s:8.3f} s"
                    + (f"  [{cell.note}]" if cell.note else "")
                )

        # Timed runs for this backend: all modes, variants interleaved, order alternating per rep.
        for mode in args.modes:
            live = [v for v in variants if cells[(backend, mode, v.label)].fn is not None]
            for rep in range(args.reps):
                order = live if rep % 2 == 0 else live[::-1]
                for variant in order:
                    cell = cells[(backend, mode, variant.label)]
                    assert cell.fn is not None
                    synchronize()
                    t0 = CLOCK()
                    for _ in range(args.number):
                        cell.fn()
                    synchronize()
                    cell.times.append((CLOCK() - t0) / args.number)

    return {"seq_len": seq_len, "cells": cells, "sanity": sanity_lines}


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def fmt_ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1e3:.2f}"


def fmt_x(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def paired_ratio(original: Cell, other: Cell) -> float:
    """Median over repetitions of original/other, each pair timed back to back: less sensitive
    than the ratio of medians to load that drifts during a run."""
    if not original.times or len(original.times) != len(other.times):
        return math.nan
    return statistics.median(a / b for a, b in zip(original.times, other.times, strict=True))


def table(args: argparse.Namespace, variants: list[Variant], result: dict[str, Any]) -> str:
    cells = result["cells"]
    orig = variants[0].label
    head = ["backend", "mode"]
    for v in variants:
        head.append(f"{v.label} ms")
    for v in variants[1:]:
        head.append(f"{orig}/{v.label} (paired)")
    for v in variants:
        head.append(f"{v.label} vs eager {orig}")
    rows = [head]
    notes: list[str] = []
    for backend in args.backends:
        for mode in args.modes:
            base = cells.get(("eager", mode, orig))
            base_t = base.median if base is not None else math.nan
            row = [BACKEND_LABEL[backend], MODE_LABEL[mode]]
            medians = {}
            for v in variants:
                cell = cells[(backend, mode, v.label)]
                medians[v.label] = cell.median
                if cell.fn is None:
                    row.append(cell.note)
                else:
                    row.append(fmt_ms(cell.median))
                    if cell.note:
                        notes.append(f"{BACKEND_LABEL[backend]} {v.label}: {cell.note}")
            for v in variants[1:]:
                ratio = fmt_x(medians[orig] / medians[v.label])
                paired = paired_ratio(cells[(backend, mode, orig)], cells[(backend, mode, v.label)])
                row.append(ratio if math.isnan(paired) else f"{ratio} ({paired:.2f}x)")
            for v in variants:
                row.append(fmt_x(base_t / medians[v.label]))
            rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for note in dict.fromkeys(notes):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def min_table(args: argparse.Namespace, variants: list[Variant], result: dict[str, Any]) -> str:
    """Fastest of the repetitions: on a shared machine, the least disturbed measurement."""
    cells = result["cells"]
    orig = variants[0].label
    head = ["backend", "mode"] + [f"{v.label} min ms" for v in variants]
    head += [f"{orig}/{v.label}" for v in variants[1:]]
    rows = [head]
    for backend in args.backends:
        for mode in args.modes:
            row = [BACKEND_LABEL[backend], MODE_LABEL[mode]]
            mins = {}
            for v in variants:
                times = cells[(backend, mode, v.label)].times
                mins[v.label] = min(times) if times else math.nan
                row.append(fmt_ms(mins[v.label]))
            row += [fmt_x(mins[orig] / mins[v.label]) for v in variants[1:]]
            rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def warmup_table(args: argparse.Namespace, variants: list[Variant], result: dict[str, Any]) -> str:
    cells = result["cells"]
    head = ["backend", "mode"] + [f"{v.label} first / warm-up s" for v in variants]
    rows = [head]
    for backend in args.backends:
        for mode in args.modes:
            row = [BACKEND_LABEL[backend], MODE_LABEL[mode]]
            for v in variants:
                c = cells[(backend, mode, v.label)]
                row.append("n/a" if c.fn is None else f"{c.first_s:.3f} / {c.warmup_s:.3f}")
            rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.is_available(),
        "device": str(DEVICE),
        "gpu": torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else None,
        "loadavg_start": os.getloadavg()[0],
    }


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--seq-len", type=int, nargs="+", default=[16], help="sequence length(s) T (paper: 28..784)"
    )
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--n-in", type=int, default=28, help="inputs per step (28: row-wise sMNIST)")
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    p.add_argument(
        "--modes",
        nargs="+",
        choices=MODES,
        default=list(DEFAULT_MODES),
        help="penalty: a training step with an input-gradient penalty (create_graph=True); "
        "the fast rewrite's second derivative is wrong there, so time it only beside --exact",
    )
    p.add_argument("--reps", type=int, default=30, help="timed repetitions per cell and variant")
    p.add_argument("--number", type=int, default=1, help="calls per timed repetition")
    p.add_argument("--warmup", type=int, default=5, help="warm-up calls after the first one")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--device", default="cpu", help="cpu or cuda (timings synchronize the GPU)")
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="cpu: time the repetitions by this process's CPU time (time.process_time), for a "
        "busy shared machine; use it with --threads 1 on CPU",
    )
    p.add_argument(
        "--style", choices=("inline", "function"), default="inline", help="fgi-rewrite --style"
    )
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--fresh-compile-cache",
        action="store_true",
        help="use an empty inductor cache, so compile warm-up times are cold-start times",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="an extra model file to time against the original (experiments)",
    )
    p.add_argument(
        "--exact",
        action="store_true",
        help="also time the exact form (fgi-rewrite --exact-higher-order), the form emitted "
        "where the project differentiates twice",
    )
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)

    global DEVICE, CLOCK
    DEVICE = torch.device(args.device)
    if args.clock == "cpu":
        if DEVICE.type != "cpu":
            p.error("--clock cpu measures CPU work only: use it with --device cpu")
        CLOCK = time.process_time
    torch.set_num_threads(args.threads)
    info = machine()
    print(
        f"{info['date']}  {info['cpu']}, {info['cores']} cores, "
        f"torch.set_num_threads({args.threads}), torch {info['torch']}, "
        f"Python {info['python']}, device {info['device']}"
        + (f" ({info['gpu']})" if info["gpu"] else "")
        + ", "
        f"load average {info['loadavg_start']:.2f}"
    )
    if info["loadavg_start"] > 0.5 * (os.cpu_count() or 1):
        print("warning: the machine is busy; timings with several threads suffer most from that")
    with tempfile.TemporaryDirectory(prefix="fgi-bench-") as tmp:
        workdir = Path(tmp)
        if args.fresh_compile_cache:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(workdir / "inductor-cache")
        original_copy = workdir / "original" / MODEL_SOURCE.name
        original_copy.parent.mkdir()
        original_copy.write_text(strip_skip(MODEL_SOURCE.read_text()))
        rewritten, rewrite_s, tool_out = rewrite_copy(workdir, args.style)
        print(f"fgi-rewrite --style {args.style} on the model copy: {rewrite_s:.2f} s ({tool_out})")
        variants = [
            Variant("original", import_path(original_copy, "fgi_bench_original"), original_copy),
            Variant("rewritten", import_path(rewritten, "fgi_bench_rewritten"), rewritten),
        ]
        if args.exact:
            exact, exact_s, exact_out = rewrite_copy(
                workdir, args.style, "exact", ("--exact-higher-order",)
            )
            print(f"fgi-rewrite --exact-higher-order: {exact_s:.2f} s ({exact_out})")
            variants.append(Variant("exact", import_path(exact, "fgi_bench_exact"), exact))
        for spec in args.variant:
            label, _, path = spec.partition("=")
            src = Path(path).resolve()
            dst = workdir / label / src.name
            dst.parent.mkdir()
            shutil.copy2(src, dst)
            variants.append(Variant(label, import_path(dst, f"fgi_bench_{label}"), dst))

        results = []
        for seq_len in args.seq_len:
            result = run_length(args, variants, seq_len)
            results.append(result)
            print(
                f"\nwarm-up (excluded from the timings), T={seq_len}: first call / first + "
                f"{args.warmup} more calls, seconds"
            )
            print(warmup_table(args, variants, result))
            print(
                f"\nmedian of {args.reps} x {args.number} call(s), T={seq_len}, B={args.batch}; "
                f"ms per call ({args.clock} clock); original/x = ratio of medians, > 1: x "
                f"faster (in brackets: median of the ratios of back-to-back pairs); 'vs eager': "
                f"speed-up over the eager original"
            )
            print(table(args, variants, result))
            print(
                f"\nminimum of the {args.reps} repetitions (least disturbed by other load), "
                f"T={seq_len}"
            )
            print(min_table(args, variants, result))

    info["loadavg_end"] = os.getloadavg()[0]
    print(f"\nload average at the end: {info['loadavg_end']:.2f}")
    if args.json:
        payload = {
            "machine": info,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "rewrite_s": rewrite_s,
            "variants": [v.label for v in variants],
            "results": [
                {
                    "seq_len": r["seq_len"],
                    "sanity": r["sanity"],
                    "cells": [
                        {
                            "backend": b,
                            "mode": m,
                            "variant": lab,
                            "median_s": c.median,
                            "min_s": min(c.times) if c.times else math.nan,
                            "times_s": c.times,
                            "first_s": c.first_s,
                            "warmup_s": c.warmup_s,
                            "note": c.note,
                            "paired_ratio_vs_original": paired_ratio(
                                r["cells"][(b, m, variants[0].label)], c
                            ),
                        }
                        for (b, m, lab), c in r["cells"].items()
                    ],
                }
                for r in results
            ],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1, allow_nan=True))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
