"""No crash, no unintended change: ``fgi-rewrite --check --verify none`` over unrelated code.

Runs the tool in process (``fgi_rewrite.pipeline.run.run`` with ``check=True, verify="none"``:
nothing is ever written) over the standard library of the Python that the venv is built on and over
the venv's site-packages (torch's own sources included). Nothing is copied: the tool is pointed at
the directories themselves. Two defaults of the CLI are switched off because they would hide these
trees: the default excludes (they name ``site-packages`` and ``.venv``; only ``__pycache__`` and
VCS directories are excluded here) and ``.gitignore`` (a pyenv Python's standard library lies in
pyenv's git work tree, whose ``.gitignore`` ignores ``/versions``).

The standard library is one run (its package directories and top-level modules given
explicitly); each top-level entry of site-packages is a run of its own (a package directory, or
the top-level modules together). Reported:

* files scanned, wall time (total and per run);
* crashes: internal errors, an exception out of ``run()``, and FGI901/FGI902 on a file that
  Python itself compiles (a parse failure of the tool on valid Python);
* unparsable inputs, listed apart: FGI901 on files that Python itself cannot compile either
  (lib2to3's Python 2 test data, deliberately broken test files, other encodings);
* files that would change, with their call sites: these must be true surrogate Functions;
* refusals and other diagnostics by code (not failures: a refused Function is left alone).

    python benchmarks/robustness.py                       # stdlib + venv site-packages
    python benchmarks/robustness.py --json out.json       # also the raw results
    python benchmarks/robustness.py --paths DIR...        # other trees (each one run)
    python benchmarks/robustness.py --idempotence DIR...  # rewrite a temporary copy of each
                                                          # DIR, then --check it: no change

Exit status 0 when there is no crash and no changed file, else 1.
``tests/test_robustness_corpus.py`` runs a sample of about 1,000 files in CI; docs/robustness.md
has the figures for the full run.
"""

from __future__ import annotations

import argparse
import ast
import collections
import datetime
import json
import os
import platform
import shutil
import sys
import sysconfig
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fgi_rewrite import Options, run  # noqa: E402
from fgi_rewrite.core import codes  # noqa: E402

# Only what never holds source: bytecode caches and VCS internals.
EXCLUDE = r"/(__pycache__|\.git|\.hg|\.svn)/"
OPTIONS = Options(check=True, verify="none", gitignore=False, exclude=EXCLUDE)


@dataclass
class Unit:
    """One run of the tool: a name and the paths given to it."""

    name: str
    paths: list[Path]


@dataclass
class Result:
    name: str
    files: int = 0
    seconds: float = 0.0
    crashes: list[str] = field(default_factory=list)
    unparsable: list[str] = field(default_factory=list)
    changed: list[dict[str, object]] = field(default_factory=list)
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    notable: list[str] = field(default_factory=list)  # refusals and warnings, rendered
    exit_code: int | None = None


def stdlib_dir() -> Path:
    """The standard library of the Python the venv is built on (``sys.base_prefix``)."""
    return Path(sysconfig.get_path("stdlib", vars={"installed_base": sys.base_prefix}))


def site_packages_dir() -> Path:
    return Path(sysconfig.get_path("purelib"))


def _has_python(directory: Path) -> bool:
    return any(name.endswith(".py") for _, _, names in os.walk(directory) for name in names)


def units_of(tree: Path, *, one_run: bool, skip: frozenset[str] = frozenset()) -> list[Unit]:
    """Package directories and top-level modules of ``tree``: one unit, or one per entry."""
    packages, modules = [], []
    for entry in sorted(tree.iterdir()):
        if entry.name in skip or entry.name == "__pycache__" or entry.is_symlink():
            continue
        if entry.is_dir() and _has_python(entry):
            packages.append(entry)
        elif entry.is_file() and entry.suffix == ".py":
            modules.append(entry)
    if one_run:
        return [Unit(tree.name, [*packages, *modules])]
    units = [Unit(p.name, [p]) for p in packages]
    if modules:
        units.append(Unit("(top-level modules)", modules))
    return units


def python_compiles(path: Path) -> str | None:
    """None when Python itself parses the file, else its error (the file is never run)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, UnicodeDecodeError, LookupError) as exc:
        return f"{type(exc).__name__}: {exc}"
    except OSError as exc:
        return f"unreadable: {exc}"
    return None


def run_unit(unit: Unit) -> Result:
    result = Result(unit.name)
    start = time.perf_counter()
    try:
        report = run(unit.paths, OPTIONS)
    except BaseException as exc:  # noqa: BLE001 - a crash of the whole run is what we count
        if isinstance(exc, KeyboardInterrupt):
            raise
        result.seconds = time.perf_counter() - start
        result.crashes.append(f"run() raised {type(exc).__name__}: {exc}")
        return result
    result.seconds = time.perf_counter() - start
    result.files = report.files_scanned
    result.exit_code = report.exit_code()
    result.crashes.extend(f"internal error: {e}" for e in report.internal_errors)
    for diagnostic in report.diagnostics:
        result.codes[diagnostic.code.code] += 1
        if diagnostic.code.severity in (codes.Severity.REFUSAL, codes.Severity.WARNING):
            result.notable.append(diagnostic.render())
        if diagnostic.code in (codes.UnreadableFile, codes.UnwritableFile):
            path = diagnostic.location.path
            reason = python_compiles(path)
            if reason is None:
                result.crashes.append(f"{diagnostic.render()} (Python parses this file)")
            else:
                result.unparsable.append(f"{path}: {diagnostic.message}")
    for changed in report.changed:
        result.changed.append(
            {
                "path": str(changed.path),
                "call_sites": [
                    f"{site.surrogate} at {site.location}" for site in changed.call_sites
                ],
            }
        )
    return result


def idempotence(directory: Path, style: str) -> dict[str, object]:
    """Rewrite a temporary copy of ``directory`` (``verify="none"``: every rewrite the analysis
    accepts is written), then run again with ``check=True``: nothing may change."""
    with tempfile.TemporaryDirectory(prefix="fgi-idempotence-") as temp:
        root = Path(temp) / directory.name
        shutil.copytree(directory, root, ignore=shutil.ignore_patterns("__pycache__", ".git"))
        options = Options(verify="none", style=style, gitignore=False, exclude=EXCLUDE)
        first = run([root], options)
        snapshot = {p: p.read_bytes() for p in root.rglob("*.py")}
        second = run([root], replace(options, check=True))
        after = {p: p.read_bytes() for p in root.rglob("*.py")}
        return {
            "package": directory.name,
            "style": style,
            "files": first.files_scanned,
            "rewritten_files": len(first.changed),
            "call_sites": first.call_sites,
            "second_run_changes": [str(r.path.relative_to(root)) for r in second.changed],
            "bytes_changed_by_check": after != snapshot,
            "internal_errors": first.internal_errors + second.internal_errors,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", nargs="*", type=Path, help="trees to scan instead")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument(
        "--quiet", action="store_true", help="only the summary, not one line per run"
    )
    parser.add_argument(
        "--idempotence",
        nargs="*",
        type=Path,
        help="directories to copy, " "rewrite and check again (nothing may change)",
    )
    args = parser.parse_args(argv)
    if args.idempotence:
        failures = 0
        for directory in args.idempotence:
            for style in ("inline", "function"):
                row = idempotence(directory, style)
                bad = (
                    row["second_run_changes"]
                    or row["bytes_changed_by_check"]
                    or row["internal_errors"]
                )
                failures += bool(bad)
                print(json.dumps(row), flush=True)
        return 1 if failures else 0

    if args.paths:
        units = [Unit(str(p), [p]) for p in args.paths]
    else:
        stdlib, site = stdlib_dir(), site_packages_dir()
        units = [
            *units_of(stdlib, one_run=True, skip=frozenset({"site-packages", "dist-packages"})),
            *units_of(site, one_run=False),
        ]
        for unit in units[:1]:
            unit.name = f"stdlib {stdlib}"
    started, cpu_started = time.perf_counter(), time.process_time()
    results = []
    for unit in units:
        result = run_unit(unit)
        results.append(result)
        if not args.quiet:
            flags = []
            if result.crashes:
                flags.append(f"{len(result.crashes)} CRASH")
            if result.changed:
                flags.append(f"{len(result.changed)} CHANGED")
            print(
                f"{result.name:40s} {result.files:6d} files {result.seconds:7.1f} s"
                f"  {' '.join(flags)}",
                flush=True,
            )
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started

    files = sum(r.files for r in results)
    crashes = [c for r in results for c in r.crashes]
    unparsable = [u for r in results for u in r.unparsable]
    changed = [c for r in results for c in r.changed]
    by_code: collections.Counter[str] = collections.Counter()
    for r in results:
        by_code.update(r.codes)
    print()
    print(f"date        {datetime.date.today().isoformat()}")
    print(f"machine     {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"python      {platform.python_version()} ({sys.executable})")
    print(f"runs        {len(results)}")
    print(f"files       {files}")
    print(f"wall time   {wall:.1f} s ({1000 * wall / max(files, 1):.1f} ms per file)")
    print(f"CPU time    {cpu:.1f} s (this process)")
    print(f"crashes     {len(crashes)}")
    for crash in crashes:
        print(f"  {crash}")
    print(f"unparsable  {len(unparsable)} (Python itself cannot parse them either)")
    for item in unparsable:
        print(f"  {item}")
    print(f"changed     {len(changed)}")
    for item in changed:
        print(f"  {item['path']}: {', '.join(item['call_sites'])}")  # type: ignore[arg-type]
    print(f"diagnostics {dict(sorted(by_code.items()))}")
    for r in results:
        for line in r.notable:
            print(f"  {line}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "date": datetime.date.today().isoformat(),
                    "machine": platform.platform(),
                    "cpus": os.cpu_count(),
                    "files": files,
                    "wall_seconds": wall,
                    "cpu_seconds": cpu,
                    "crashes": crashes,
                    "unparsable": unparsable,
                    "changed": changed,
                    "diagnostics": dict(by_code),
                    "runs": [
                        {
                            "name": r.name,
                            "files": r.files,
                            "seconds": r.seconds,
                            "exit_code": r.exit_code,
                            "crashes": r.crashes,
                            "changed": r.changed,
                            "diagnostics": r.notable,
                        }
                        for r in results
                    ],
                },
                indent=1,
            )
        )
    return 0 if not crashes and not changed else 1


if __name__ == "__main__":
    sys.exit(main())
