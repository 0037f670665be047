"""Benchmark the tool itself: ``fgi-rewrite --check`` versus ``black --check`` on the same trees.

Trees:

* **corpus**: the 9-library SNN corpus (about 1,000 Python files), fetched and unpacked by
  ``../shared/tools/get_corpus.sh DEST`` (idempotent: a second call only checks hashes). DEST is
  ``--corpus-dir``, else ``$FGI_CORPUS_DIR``, else ``~/.cache/fgi-rewrite-corpus``; the tree timed
  is ``DEST/src``.
* **no-surrogate**: standard-library packages (``json``, ``email``, ``asyncio``, ...) and the
  installed ``click`` and ``libcst`` packages copied to a temporary directory: no
  ``autograd.Function`` at all, so the prefilter should make ``fgi-rewrite`` nearly free.

Per tree and repetition, in alternating order: ``fgi-rewrite --check`` (CLI defaults, which verify
every rewrite in a torch subprocess), ``fgi-rewrite --check --verify none`` (analysis only) and
``black --check``. Black's cache goes to a fresh empty directory for every run, so black does its
full work each time. Wall times (medians) and ratios to black are printed; the difference between
the two fgi-rewrite runs divided by the number of rewritten call sites is the verification cost
per rewrite.

    python benchmarks/tool_speed.py                      # 3 repetitions
    python benchmarks/tool_speed.py --reps 1 --trees corpus
    python benchmarks/tool_speed.py --profile out.prof   # + cProfile of fgi-rewrite on the corpus
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_GET_CORPUS = REPO.parent / "shared" / "tools" / "get_corpus.sh"
STDLIB_PACKAGES = (
    "json",
    "email",
    "asyncio",
    "concurrent",
    "importlib",
    "logging",
    "unittest",
    "xml",
    "http",
    "urllib",
)
SITE_PACKAGES = ("click", "libcst")


def bin_of(name: str) -> list[str]:
    """The tool next to this interpreter (the venv's), else on PATH, else ``python -m``."""
    here = Path(sys.executable).with_name(name)
    if here.exists():
        return [str(here)]
    found = shutil.which(name)
    if found:
        return [found]
    return [sys.executable, "-m", name.replace("-", "_")]


def fetch_corpus(dest: Path, script: Path) -> Path:
    start = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(script), str(dest)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": os.environ.get("PYTHON", sys.executable)},
    )
    if proc.returncode != 0:
        sys.exit(f"{script} failed ({proc.returncode}):\n{proc.stderr}")
    print(f"corpus: {script} {dest}: {time.perf_counter() - start:.1f} s")
    for line in proc.stdout.splitlines():
        print("  " + line)
    return dest / "src"


def plain_tree(dest: Path) -> Path:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    purelib = Path(sysconfig.get_paths()["purelib"])
    for name in STDLIB_PACKAGES:
        if (stdlib / name).is_dir():
            shutil.copytree(
                stdlib / name,
                dest / name,
                ignore=shutil.ignore_patterns("__pycache__", "test", "tests"),
            )
    for name in SITE_PACKAGES:
        if (purelib / name).is_dir():
            shutil.copytree(
                purelib / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "tests")
            )
    return dest


def count_py(tree: Path) -> tuple[int, int]:
    files = [p for p in tree.rglob("*.py") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def run_timed(
    cmd: list[str], env: dict[str, str] | None = None, timeout: float | None = None
) -> tuple[float, int, str]:
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, -1, f"timed out after {timeout} s"
    return time.perf_counter() - start, proc.returncode, proc.stdout + proc.stderr


SUMMARY = re.compile(r"(\d+) files? scanned.*")
REWRITTEN = re.compile(r"(\d+) call sites? (?:would be )?rewritten")


def summary_of(output: str) -> str:
    match = SUMMARY.search(output)
    return match.group(0) if match else ""


def supports_verify(fgi: list[str]) -> bool:
    proc = subprocess.run([*fgi, "--help"], capture_output=True, text=True)
    return "--verify" in proc.stdout


def bench_tree(
    name: str,
    tree: Path,
    args: argparse.Namespace,
    fgi: list[str],
    black: list[str],
    has_verify: bool,
    scratch: Path,
) -> dict[str, Any]:
    n_files, n_bytes = count_py(tree)
    print(f"\n=== {name}: {tree} ({n_files} .py files, {n_bytes / 1e6:.1f} MB) ===")
    tools: dict[str, list[str]] = {"fgi-rewrite --check": [*fgi, "--check", str(tree)]}
    if has_verify:
        tools["fgi-rewrite --check --verify none"] = [
            *fgi,
            "--check",
            "--verify",
            "none",
            str(tree),
        ]
    if not args.skip_black:
        tools["black --check"] = [*black, "--check", "-q", str(tree)]
    times: dict[str, list[float]] = {k: [] for k in tools}
    outputs: dict[str, tuple[int, str]] = {}
    labels = list(tools)
    for rep in range(args.reps):
        order = labels if rep % 2 == 0 else labels[::-1]
        for label in order:
            env = dict(os.environ)
            cache = tempfile.mkdtemp(prefix="black-cache-", dir=scratch)
            env["BLACK_CACHE_DIR"] = cache  # black must not skip files it saw before
            elapsed, rc, out = run_timed(tools[label], env, args.timeout)
            times[label].append(elapsed)
            outputs[label] = (rc, out)
            shown = summary_of(out) if label.startswith("fgi") else ""
            print(
                f"  rep {rep + 1}: {label:<36} {elapsed:8.2f} s  exit {rc}"
                + (f"  ({shown})" if shown else "")
            )
            if rc not in (0, 1):
                tail = "\n".join(out.strip().splitlines()[-5:])
                print(f"    unexpected exit status {rc}:\n    " + tail.replace("\n", "\n    "))
    medians = {k: statistics.median(v) for k, v in times.items()}
    rewrites = 0
    fgi_out = outputs.get("fgi-rewrite --check", (0, ""))[1]
    match = REWRITTEN.search(fgi_out)
    if match:
        rewrites = int(match.group(1))
    verified = checked = 0
    if has_verify and rewrites:
        # One more (untimed) run for the counts: how many surrogates the verification ran on.
        proc = subprocess.run(
            [*fgi, "--check", "--format", "json", str(tree)],
            capture_output=True,
            text=True,
            timeout=args.timeout,
        )
        try:
            functions = json.loads(proc.stdout).get("functions", [])
            checked = sum(1 for f in functions if f.get("verification"))
            verified = sum(
                1 for f in functions if (f.get("verification") or {}).get("status") == "verified"
            )
        except (json.JSONDecodeError, AttributeError):
            pass
    return {
        "tree": name,
        "path": str(tree),
        "files": n_files,
        "bytes": n_bytes,
        "times_s": times,
        "median_s": medians,
        "rewrites": rewrites,
        "surrogates_checked": checked,
        "surrogates_verified": verified,
        "summary": summary_of(fgi_out),
    }


def report(results: list[dict[str, Any]], reps: int) -> str:
    lines = [f"median wall time of {reps} run(s), seconds; ratio = tool / black (goal <= 0.5)", ""]
    head = ["tree", "files", "tool", "median s", "min s", "vs black"]
    rows = [head]
    for r in results:
        black = r["median_s"].get("black --check")
        for tool, med in r["median_s"].items():
            ratio = "" if black is None or tool.startswith("black") else f"{med / black:.2f}x"
            rows.append(
                [
                    r["tree"],
                    str(r["files"]),
                    tool,
                    f"{med:.2f}",
                    f"{min(r['times_s'][tool]):.2f}",
                    ratio,
                ]
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for i, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in results:
        full = r["median_s"].get("fgi-rewrite --check")
        bare = r["median_s"].get("fgi-rewrite --check --verify none")
        if full is not None and bare is not None and r["surrogates_checked"]:
            n = r["surrogates_checked"]
            lines.append(
                f"{r['tree']}: verification (default --verify script) adds "
                f"{full - bare:.2f} s for {n} surrogates checked in one torch subprocess "
                f"({r['surrogates_verified']} verified) = {(full - bare) / n:.2f} s per "
                f"surrogate, {(full - bare) / max(r['rewrites'], 1):.2f} s per rewritten "
                f"call site ({r['summary']})"
            )
        elif r["summary"]:
            lines.append(f"{r['tree']}: {r['summary']}")
    return "\n".join(lines)


def profile(tree: Path, out: Path, top: int) -> None:
    print(f"\n=== cProfile: fgi-rewrite --check --verify none {tree} -> {out} ===")
    cmd = [
        sys.executable,
        "-m",
        "cProfile",
        "-o",
        str(out),
        "-m",
        "fgi_rewrite",
        "--check",
        "-q",
        "--verify",
        "none",
        str(tree),
    ]
    elapsed, rc, _ = run_timed(cmd)
    print(f"profiled run: {elapsed:.1f} s, exit {rc}")
    stats = pstats.Stats(str(out))
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--corpus-dir",
        type=Path,
        default=Path(
            os.environ.get("FGI_CORPUS_DIR", Path.home() / ".cache" / "fgi-rewrite-corpus")
        ),
        help="get_corpus.sh DEST (default $FGI_CORPUS_DIR or " "~/.cache/fgi-rewrite-corpus)",
    )
    p.add_argument(
        "--get-corpus",
        type=Path,
        default=Path(os.environ.get("FGI_GET_CORPUS", DEFAULT_GET_CORPUS)),
        help="path of get_corpus.sh (default ../shared/tools/get_corpus.sh)",
    )
    p.add_argument("--trees", nargs="+", choices=("corpus", "plain"), default=["corpus", "plain"])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--timeout", type=float, default=3600, help="seconds per tool run")
    p.add_argument("--skip-black", action="store_true")
    p.add_argument("--profile", type=Path, help="also profile one fgi-rewrite run on the corpus")
    p.add_argument("--top", type=int, default=25, help="profile lines to print")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)

    fgi = bin_of("fgi-rewrite")
    black = bin_of("black")
    version = subprocess.run([*fgi, "--version"], capture_output=True, text=True).stdout.strip()
    black_version = subprocess.run(
        [*black, "--version"], capture_output=True, text=True
    ).stdout.splitlines()[0]
    has_verify = supports_verify(fgi)
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    print(
        f"{date}  {os.cpu_count()} cores, Python {platform.python_version()}; {version}; "
        f"{black_version}; load average {os.getloadavg()[0]:.2f}"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="fgi-tool-speed-") as tmp:
        scratch = Path(tmp)
        corpus = None
        if "corpus" in args.trees or args.profile:
            corpus = fetch_corpus(args.corpus_dir, args.get_corpus)
        if "corpus" in args.trees:
            assert corpus is not None
            results.append(bench_tree("corpus", corpus, args, fgi, black, has_verify, scratch))
        if "plain" in args.trees:
            tree = plain_tree(scratch / "plain")
            results.append(bench_tree("no-surrogate", tree, args, fgi, black, has_verify, scratch))
        print()
        print(report(results, args.reps))
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
        if args.profile and corpus is not None:
            profile(corpus, args.profile, args.top)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "date": date,
                    "cores": os.cpu_count(),
                    "fgi_rewrite": version,
                    "black": black_version,
                    "results": results,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
