"""Real-world coverage: run ``fgi-rewrite`` on the 9-library SNN corpus and score it.

The corpus (snntorch, spikingjelly, norse, sinabs, rockpool, lava-dl, spikingtorch, bindsnet,
sinabs-exodus at pinned versions) is fetched and unpacked by ``../shared/tools/get_corpus.sh DEST``
(idempotent: a second call only checks hashes). DEST is ``--corpus-dir``, else
``$FGI_CORPUS_DIR``, else ``~/.cache/fgi-rewrite-corpus``; the script is ``--get-corpus``, else
``$FGI_GET_CORPUS``, else ``shared/tools/get_corpus.sh`` next to the repository. The library
sources stay in that cache: none of them is ever copied into this repository.

Each package is processed as a user would:

    python -m fgi_rewrite --diff --format json --verify script DEST/src/<package>

(the JSON report carries each file's diff with ``--diff``). Then, for idempotence, every diff of
the report is applied to a temporary copy of the package (context lines must match exactly) and
``python -m fgi_rewrite --check --format json --verify script`` runs on the copy: nothing more
may change.

Printed per package: Function classes found, surrogates detected (the tool's verdict
``surrogate``), surrogates rewritten and verified, rewritten but unverified, refused (by code),
call sites rewritten, unresolved call sites (FGI201), crashes (exit 123, internal errors, error
diagnostics, no JSON, timeout), idempotence and wall time.

Scored against ``benchmarks/corpus_expected.tsv`` (package, path, class, category for every
``autograd.Function`` subclass of the corpus): spike surrogates rewritten and verified out of 57,
the fate of the other surrogates (refusal code, not detected, no call site), any rewrite of a
non-elementwise or plumbing class (must be 0), bindsnet unchanged, idempotence.

    python benchmarks/corpus.py                          # all packages, table + score
    python benchmarks/corpus.py --packages norse sinabs  # a subset
    python benchmarks/corpus.py --json out.json          # also the raw results
    python benchmarks/corpus.py --write-baseline         # refresh benchmarks/corpus_baseline.json

``tests/test_corpus.py`` (pytest marker ``corpus``) runs the same thing and fails when coverage
drops below ``benchmarks/corpus_baseline.json``.
"""

from __future__ import annotations

import argparse
import collections
import csv
import datetime
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_GET_CORPUS = REPO.parent / "shared" / "tools" / "get_corpus.sh"
DEFAULT_CORPUS_DIR = Path.home() / ".cache" / "fgi-rewrite-corpus"
EXPECTED = HERE / "corpus_expected.tsv"
BASELINE = HERE / "corpus_baseline.json"
PACKAGES = (
    "snntorch",
    "spikingjelly",
    "norse",
    "sinabs",
    "rockpool",
    "lava-dl",
    "spikingtorch",
    "bindsnet",
    "sinabs-exodus",
)
SURROGATE_CATEGORIES = ("surrogate-binary", "surrogate-multilevel", "surrogate-stochastic")
LEAVE_ALONE = ("non-elementwise", "plumbing")
NEGATIVE_CONTROL = "bindsnet"
CRASH_EXIT = 123


class CorpusUnavailable(RuntimeError):
    """get_corpus.sh is missing or failed (no network, no pip): the corpus cannot be fetched."""


# ---- fetching ----------------------------------------------------------------------------------


def default_corpus_dir() -> Path:
    return Path(os.environ.get("FGI_CORPUS_DIR") or DEFAULT_CORPUS_DIR).expanduser()


def default_get_corpus() -> Path:
    return Path(os.environ.get("FGI_GET_CORPUS") or DEFAULT_GET_CORPUS).expanduser()


def fetch_corpus(dest: Path, script: Path, timeout: float = 1800) -> dict[str, Path]:
    """Run get_corpus.sh DEST; the unpacked package directories by name."""
    if not script.is_file():
        raise CorpusUnavailable(f"{script} does not exist (set FGI_GET_CORPUS or --get-corpus)")
    if shutil.which("bash") is None:
        raise CorpusUnavailable("bash is not available to run get_corpus.sh")
    dest.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHON": os.environ.get("PYTHON", sys.executable)}
    try:
        proc = subprocess.run(
            ["bash", str(script), str(dest)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise CorpusUnavailable(f"{script} {dest} timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise CorpusUnavailable(f"{script} {dest} failed (exit {proc.returncode}):\n{tail}")
    found: dict[str, Path] = {}
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            found[parts[0]] = Path(parts[2])
    missing = [p for p in PACKAGES if p not in found or not found[p].is_dir()]
    if missing:
        raise CorpusUnavailable(f"{script} did not produce {', '.join(missing)}")
    return found


def project_markers_above(path: Path) -> list[Path]:
    """``.git``/``pyproject.toml`` above ``path``: they would widen fgi-rewrite's project root."""
    return [
        d
        for d in path.resolve().parents
        if (d / ".git").exists() or (d / "pyproject.toml").is_file()
    ]


# ---- expected categories -------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    package: str
    path: str  # relative to DEST/src/<package>
    qualname: str
    category: str

    @property
    def is_surrogate(self) -> bool:
        return self.category in SURROGATE_CATEGORIES

    @property
    def label(self) -> str:
        return f"{self.package}: {self.qualname} ({self.path})"


def load_expected(path: Path = EXPECTED) -> list[Expected]:
    text = "".join(
        line
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
        if not line.startswith("#")
    )
    return [
        Expected(r["package"], r["path"], r["qualname"], r["category"])
        for r in csv.DictReader(io.StringIO(text), delimiter="\t")
    ]


# ---- running the tool ----------------------------------------------------------------------------


def tool_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fgi_rewrite", *args]


@dataclass
class Run:
    argv: list[str]
    exit_code: int
    wall_s: float
    report: dict[str, Any] | None
    stderr: str
    problem: str = ""  # why the run counts as a crash ("" when it does not)


def run_tool(args: list[str], cwd: Path, timeout: float) -> Run:
    argv = tool_command(*args)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FGI_REWRITE_")}
    env["NO_COLOR"] = "1"
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        return Run(
            argv, -1, time.perf_counter() - start, None, stderr, f"timed out after {timeout:.0f} s"
        )
    wall = time.perf_counter() - start
    report: dict[str, Any] | None
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report = None
    run = Run(argv, proc.returncode, wall, report, proc.stderr)
    problems = []
    if report is None:
        problems.append("no JSON report on stdout")
    if proc.returncode == CRASH_EXIT or proc.returncode not in (0, 1):
        problems.append(f"exit {proc.returncode}")
    if report is not None:
        problems += [f"internal error: {e}" for e in report.get("internal_errors", [])]
        problems += [
            f"{d['code']} {d['path']}:{d['line']}: {d['message']}"
            for d in report.get("diagnostics", [])
            if d.get("severity") == "error"
        ]
    if problems and proc.stderr.strip():
        problems.append("stderr: " + " | ".join(proc.stderr.strip().splitlines()[-5:]))
    run.problem = "; ".join(problems)
    return run


# ---- applying the diffs (idempotence) ---------------------------------------------------------


class PatchError(ValueError):
    pass


def _decode(data: bytes) -> tuple[str, str]:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        encoding = "utf-8"
    return data.decode(encoding), encoding


def apply_unified_diff(before: str, diff: str) -> str:
    """Apply one file's unified diff (as fgi-rewrite prints it) to ``before``; strict context."""
    old = before.splitlines(keepends=True)
    lines = diff.splitlines(keepends=True)
    # "\ No newline at end of file" marks the previous line as unterminated.
    body: list[str] = []
    for line in lines:
        if line.startswith("\\"):
            if body:
                body[-1] = body[-1][:-1] if body[-1].endswith("\n") else body[-1]
            continue
        body.append(line)
    out: list[str] = []
    pos = 0
    i = 0
    while i < len(body) and not body[i].startswith("@@"):
        i += 1  # the --- / +++ header
    while i < len(body):
        head = body[i]
        if not head.startswith("@@"):
            raise PatchError(f"expected a hunk header, got {head!r}")
        try:
            old_range = head.split()[1]  # -START[,COUNT]
            old_start, _, old_count = old_range[1:].partition(",")
            # a hunk that removes nothing (COUNT 0) inserts after line START
            start = int(old_start) if old_count == "0" else int(old_start) - 1
        except (IndexError, ValueError) as exc:
            raise PatchError(f"bad hunk header {head!r}") from exc
        if start < pos:
            raise PatchError(f"overlapping hunk {head.strip()}")
        out.extend(old[pos:start])
        pos = start
        i += 1
        while i < len(body) and not body[i].startswith("@@"):
            tag, text = body[i][:1], body[i][1:]
            if tag in (" ", "-"):
                if pos >= len(old) or old[pos] != text:
                    got = old[pos] if pos < len(old) else "<end of file>"
                    raise PatchError(f"context mismatch at line {pos + 1}: {got!r} != {text!r}")
                if tag == " ":
                    out.append(text)
                pos += 1
            elif tag == "+":
                out.append(text)
            else:
                raise PatchError(f"unexpected diff line {body[i]!r}")
            i += 1
    out.extend(old[pos:])
    return "".join(out)


def idempotence(
    package_dir: Path, report: dict[str, Any], scratch: Path, verify: str, timeout: float
) -> tuple[bool | None, str, float]:
    """Apply the report's diffs to a copy, run --check again: (ok, detail, wall seconds)."""
    copy = scratch / package_dir.name
    shutil.copytree(package_dir, copy, symlinks=True)
    applied = 0
    for entry in report.get("files", []):
        diff = entry.get("diff")
        if not diff:
            return False, f"no diff for {entry['path']} in the report", 0.0
        rel = Path(entry["path"]).resolve().relative_to(package_dir.resolve())
        target = copy / rel
        data = target.read_bytes()
        text, encoding = _decode(data)
        try:
            new = apply_unified_diff(text, diff)
        except PatchError as exc:
            return False, f"the diff of {rel} does not apply: {exc}", 0.0
        target.write_bytes(new.encode(encoding))
        applied += 1
    run = run_tool(
        ["--check", "--format", "json", "--verify", verify, str(copy)], copy.parent, timeout
    )
    shutil.rmtree(copy, ignore_errors=True)
    if run.problem:
        return False, f"second run crashed: {run.problem}", run.wall_s
    assert run.report is not None
    changed = [os.path.relpath(f["path"], copy) for f in run.report.get("files", [])]
    if changed:
        return False, f"{applied} diff(s) applied; a second run still changes {changed}", run.wall_s
    return True, f"{applied} diff(s) applied; a second run changes nothing", run.wall_s


# ---- per-package results -------------------------------------------------------------------------


@dataclass
class FunctionResult:
    name: str
    path: str  # relative to the package directory
    line: int
    verdict: str
    code: str | None
    message: str | None
    verification: str | None  # verified, failed, unscriptable, unverified, isolation, None
    call_sites: int  # call sites rewritten

    @property
    def rewritten(self) -> bool:
        return self.call_sites > 0

    @property
    def verified(self) -> bool:
        return self.rewritten and self.verification == "verified"

    def matches(self, row: Expected) -> bool:
        return self.path == row.path and (
            self.name == row.qualname or self.name.endswith("." + row.qualname)
        )


@dataclass
class PackageResult:
    package: str
    directory: str
    exit_code: int
    wall_s: float
    crash: str
    functions: list[FunctionResult] = field(default_factory=list)
    call_sites_rewritten: int = 0
    files_changed: int = 0
    files_scanned: int = 0
    unresolved: list[str] = field(default_factory=list)  # FGI201
    bad_calls: list[str] = field(default_factory=list)  # FGI202/FGI203
    idempotent: bool | None = None
    idempotence_detail: str = ""
    idempotence_s: float = 0.0

    @property
    def surrogates(self) -> list[FunctionResult]:
        return [f for f in self.functions if f.verdict == "surrogate"]

    @property
    def refused(self) -> collections.Counter[str]:
        return collections.Counter(f.code or "?" for f in self.functions if f.verdict == "refused")


def analyse_package(
    package: str, directory: Path, verify: str, timeout: float, scratch: Path | None
) -> PackageResult:
    run = run_tool(
        ["--diff", "--format", "json", "--verify", verify, str(directory)],
        directory.parent,
        timeout,
    )
    result = PackageResult(package, str(directory), run.exit_code, run.wall_s, run.problem)
    report = run.report
    if report is None:
        return result

    def rel(path: str) -> str:
        return os.path.relpath(path, directory)

    sites: collections.Counter[str] = collections.Counter()
    for entry in report.get("files", []):
        for site in entry.get("call_sites", []):
            sites[site["surrogate"]] += 1
    result.call_sites_rewritten = sum(sites.values())
    for fn in report.get("functions", []):
        verification = fn.get("verification") or {}
        result.functions.append(
            FunctionResult(
                fn["name"],
                rel(fn["path"]),
                fn["line"],
                fn["verdict"],
                fn.get("code"),
                fn.get("message"),
                verification.get("status"),
                sites.get(fn["name"], 0),
            )
        )
    summary = report.get("summary", {})
    result.files_changed = summary.get("files_changed", len(report.get("files", [])))
    result.files_scanned = summary.get("files_scanned", 0)
    for diag in report.get("diagnostics", []):
        where = f"{rel(diag['path'])}:{diag['line']}: {diag['message']}"
        if diag["code"] == "FGI201":
            result.unresolved.append(where)
        elif diag["code"] in ("FGI202", "FGI203"):
            result.bad_calls.append(f"{diag['code']} {where}")
    if scratch is not None and not run.problem:
        ok, detail, wall = idempotence(directory, report, scratch, verify, timeout)
        result.idempotent, result.idempotence_detail, result.idempotence_s = ok, detail, wall
    return result


# ---- scoring -------------------------------------------------------------------------------------


def fate(row: Expected, results: dict[str, PackageResult]) -> tuple[str, FunctionResult | None]:
    """What happened to one expected class: a short status and the tool's entry."""
    pkg = results.get(row.package)
    if pkg is None:
        return "package not run", None
    if pkg.crash and not pkg.functions:
        return "crash", None
    match = [f for f in pkg.functions if f.matches(row)]
    if not match:
        return "not listed", None
    fn = match[0]
    if fn.verdict == "surrogate":
        if fn.verified:
            return "rewritten+verified", fn
        if fn.rewritten:
            return f"rewritten unverified ({fn.verification})", fn
        return "detected, no call site rewritten", fn
    return f"{fn.verdict} {fn.code}", fn


def not_verified(row: Expected, status: str, fn: FunctionResult | None) -> dict[str, Any]:
    return {
        "package": row.package,
        "path": row.path,
        "qualname": row.qualname,
        "category": row.category,
        "fate": status,
        "code": fn.code if fn else None,
        "message": fn.message if fn else None,
        "line": fn.line if fn else None,
    }


def score(expected: list[Expected], results: dict[str, PackageResult]) -> dict[str, Any]:
    ran = set(results)
    rows = [r for r in expected if r.package in ran]
    surrogates = [r for r in rows if r.is_surrogate]
    fates = {r: fate(r, results) for r in rows}
    verified = [r for r in surrogates if fates[r][0] == "rewritten+verified"]
    others = collections.Counter(fates[r][0] for r in surrogates if r not in verified)
    elementwise = [r for r in rows if r.category == "other-elementwise"]
    leave_alone = [r for r in rows if r.category in LEAVE_ALONE]
    tool_entries = [(r, fates[r][1]) for r in leave_alone]
    wrongly_rewritten = [r.label for r, fn in tool_entries if fn is not None and fn.rewritten]
    wrongly_detected = [
        r.label for r, fn in tool_entries if fn is not None and fn.verdict == "surrogate"
    ]
    refused_leave_alone = [
        f"{r.label}: {fates[r][0]}" for r in leave_alone if fates[r][0].startswith("refused")
    ]
    matched = {id(fn) for _, fn in fates.values() if fn is not None}
    unexpected = [
        f"{pkg.package}: {f.name} ({f.path}:{f.line}) {f.verdict}"
        for pkg in results.values()
        for f in pkg.functions
        if id(f) not in matched
    ]
    per_package = {}
    for name, pkg in results.items():
        mine = [r for r in surrogates if r.package == name]
        per_package[name] = {
            "surrogates_expected": len(mine),
            "surrogates_rewritten_verified": sum(r in verified for r in mine),
            "elementwise_rewritten_verified": sum(
                fates[r][0] == "rewritten+verified" for r in elementwise if r.package == name
            ),
            "call_sites_rewritten": pkg.call_sites_rewritten,
            "crashes": int(bool(pkg.crash)),
            "leave_alone_rewritten": sum(
                1 for r in leave_alone if r.package == name and r.label in wrongly_rewritten
            ),
            "idempotent": pkg.idempotent,
        }
    neg = results.get(NEGATIVE_CONTROL)
    return {
        "surrogates_total": len(surrogates),
        "surrogates_rewritten_verified": len(verified),
        "surrogates_not_verified_by_fate": dict(others.most_common()),
        "surrogates_not_verified": [
            not_verified(r, *fates[r]) for r in surrogates if r not in verified
        ],
        "elementwise_total": len(elementwise),
        "elementwise_rewritten_verified": sum(
            fates[r][0] == "rewritten+verified" for r in elementwise
        ),
        "elementwise_not_verified": [
            f"{r.label}: {fates[r][0]}" for r in elementwise if fates[r][0] != "rewritten+verified"
        ],
        "leave_alone_total": len(leave_alone),
        "leave_alone_rewritten": wrongly_rewritten,
        "leave_alone_detected_as_surrogate": wrongly_detected,
        "leave_alone_refused": refused_leave_alone,
        "unexpected_functions": unexpected,
        "crashes": {n: p.crash for n, p in results.items() if p.crash},
        "bindsnet_unchanged": (
            None
            if neg is None
            else (
                not neg.crash
                and neg.files_changed == 0
                and not neg.functions
                and neg.call_sites_rewritten == 0
            )
        ),
        "idempotent": {n: p.idempotent for n, p in results.items()},
        "per_package": per_package,
    }


# ---- printing ------------------------------------------------------------------------------------


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    out = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    out += [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    return "\n".join(out)


def package_table(results: dict[str, PackageResult]) -> str:
    head = [
        "package",
        "files",
        "Functions",
        "surrogates detected",
        "rewritten+verified",
        "rewritten unverified",
        "refused (by code)",
        "call sites rewritten",
        "unresolved",
        "crashes",
        "idempotent",
        "wall s",
    ]
    rows = []
    total: collections.Counter[str] = collections.Counter()
    refused_total: collections.Counter[str] = collections.Counter()
    for name, r in results.items():
        verified = sum(f.verified for f in r.surrogates)
        unverified = sum(f.rewritten and not f.verified for f in r.surrogates)
        refused = r.refused
        refused_total.update(refused)
        crashes = 1 if r.crash else 0
        idem = {True: "yes", False: "NO", None: "-"}[r.idempotent]
        rows.append(
            [
                name,
                str(r.files_scanned),
                str(len(r.functions)),
                str(len(r.surrogates)),
                str(verified),
                str(unverified),
                fmt_codes(refused),
                str(r.call_sites_rewritten),
                str(len(r.unresolved)),
                str(crashes),
                idem,
                f"{r.wall_s:.1f}",
            ]
        )
        total.update(
            files=r.files_scanned,
            functions=len(r.functions),
            surrogates=len(r.surrogates),
            verified=verified,
            unverified=unverified,
            sites=r.call_sites_rewritten,
            unresolved=len(r.unresolved),
            crashes=crashes,
        )
        total["wall"] += int(r.wall_s * 1000)
    idem_all = all(r.idempotent for r in results.values())
    rows.append(
        [
            "**total**",
            str(total["files"]),
            str(total["functions"]),
            str(total["surrogates"]),
            str(total["verified"]),
            str(total["unverified"]),
            fmt_codes(refused_total),
            str(total["sites"]),
            str(total["unresolved"]),
            str(total["crashes"]),
            "yes" if idem_all else "NO",
            f"{total['wall'] / 1000:.1f}",
        ]
    )
    return markdown_table(head, rows)


def fmt_codes(counter: collections.Counter[str]) -> str:
    return " ".join(f"{code}×{n}" for code, n in sorted(counter.items())) or "0"


def score_text(s: dict[str, Any]) -> str:
    lines = [
        f"spike surrogates rewritten and verified (grad + TorchScript): "
        f"{s['surrogates_rewritten_verified']} / {s['surrogates_total']}",
        "  the others: "
        + ", ".join(f"{k} ×{v}" for k, v in s["surrogates_not_verified_by_fate"].items()),
        f"other elementwise Functions rewritten and verified: "
        f"{s['elementwise_rewritten_verified']} / {s['elementwise_total']}",
        f"non-elementwise / plumbing Functions rewritten: {len(s['leave_alone_rewritten'])} "
        f"(of {s['leave_alone_total']}; must be 0)"
        + "".join(f"\n  {x}" for x in s["leave_alone_rewritten"]),
        f"non-elementwise / plumbing Functions the tool calls surrogates: "
        f"{len(s['leave_alone_detected_as_surrogate'])}"
        + "".join(f"\n  {x}" for x in s["leave_alone_detected_as_surrogate"]),
        f"non-elementwise / plumbing Functions refused (FGI1xx) instead of skipped (FGI001): "
        f"{len(s['leave_alone_refused'])}" + "".join(f"\n  {x}" for x in s["leave_alone_refused"]),
        f"crashes: {len(s['crashes'])}" + "".join(f"\n  {k}: {v}" for k, v in s["crashes"].items()),
        f"bindsnet unchanged: {s['bindsnet_unchanged']}",
        "idempotent (diffs applied to a copy, --check again changes nothing): "
        + ", ".join(
            f"{k} {'yes' if v else ('-' if v is None else 'NO')}"
            for k, v in s["idempotent"].items()
        ),
    ]
    if s["unexpected_functions"]:
        lines.append(
            "Functions the tool lists that corpus_expected.tsv does not: "
            + "; ".join(s["unexpected_functions"])
        )
    lines.append("")
    lines.append("spike surrogates not rewritten and verified:")
    for x in s["surrogates_not_verified"]:
        msg = (x["message"] or "").replace("\n", " ")
        lines.append(
            f"  - {x['package']} {x['qualname']} ({x['path']}"
            f"{':' + str(x['line']) if x['line'] else ''}): {x['fate']}"
            + (f": {msg}" if msg else "")
        )
    return "\n".join(lines)


def machine() -> str:
    try:
        torch_version = (
            subprocess.run(
                [sys.executable, "-c", "import torch; print(torch.__version__)"],
                capture_output=True,
                text=True,
                timeout=120,
            ).stdout.strip()
            or "not installed"
        )
    except subprocess.TimeoutExpired:
        torch_version = "?"
    return (
        f"{os.cpu_count()} cores ({platform.machine()}, {platform.system()}), "
        f"Python {platform.python_version()}, torch {torch_version}"
    )


def baseline_of(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "comment": "Minimum coverage on the SNN corpus, checked by tests/test_corpus.py; "
        "refresh with python benchmarks/corpus.py --write-baseline",
        "surrogates_rewritten_verified": s["surrogates_rewritten_verified"],
        "per_package": {
            n: {
                "surrogates_rewritten_verified": v["surrogates_rewritten_verified"],
                "elementwise_rewritten_verified": v["elementwise_rewritten_verified"],
            }
            for n, v in s["per_package"].items()
        },
        "crashes": 0,
        "leave_alone_rewritten": 0,
        "bindsnet_unchanged": True,
        "idempotent": True,
    }


def regressions(s: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """Where the scores fall below ``baseline`` (an empty list when they do not)."""
    bad = []
    for name, want in baseline["per_package"].items():
        got = s["per_package"].get(name)
        if got is None:
            bad.append(f"{name}: not run")
            continue
        for key, minimum in want.items():
            if got[key] < minimum:
                bad.append(f"{name}: {key} {got[key]} < baseline {minimum}")
    if s["crashes"]:
        bad += [f"crash in {k}: {v}" for k, v in s["crashes"].items()]
    if len(s["leave_alone_rewritten"]) > baseline.get("leave_alone_rewritten", 0):
        bad += [
            f"non-elementwise/plumbing Function rewritten: {x}" for x in s["leave_alone_rewritten"]
        ]
    if baseline.get("bindsnet_unchanged") and s["bindsnet_unchanged"] is not True:
        bad.append("bindsnet (no autograd.Function) was changed or reported Functions")
    if baseline.get("idempotent"):
        bad += [f"{k}: not idempotent" for k, v in s["idempotent"].items() if v is False]
    return bad


def run_corpus(
    packages: dict[str, Path],
    verify: str = "script",
    timeout: float = 600,
    idempotent: bool = True,
    log: Any = None,
) -> dict[str, PackageResult]:
    results: dict[str, PackageResult] = {}
    with tempfile.TemporaryDirectory(prefix="fgi-corpus-") as tmp:
        for name, directory in packages.items():
            scratch = Path(tmp) / name if idempotent else None
            if scratch is not None:
                scratch.mkdir()
            r = analyse_package(name, directory, verify, timeout, scratch)
            results[name] = r
            if log is not None:
                print(
                    f"  {name:<14} {r.wall_s:6.1f} s (+{r.idempotence_s:.1f} s idempotence)  "
                    f"exit {r.exit_code}  {len(r.functions)} Functions, "
                    f"{r.call_sites_rewritten} call sites rewritten"
                    + (f"  CRASH: {r.crash}" if r.crash else "")
                    + (
                        ""
                        if r.idempotent is not False
                        else f"  NOT IDEMPOTENT: {r.idempotence_detail}"
                    ),
                    file=log,
                    flush=True,
                )
    return results


def results_json(
    results: dict[str, PackageResult], s: dict[str, Any], meta: dict[str, Any]
) -> dict[str, Any]:
    return {
        **meta,
        "score": s,
        "packages": {
            n: {
                **{k: v for k, v in vars(r).items() if k != "functions"},
                "functions": [vars(f) for f in r.functions],
            }
            for n, r in results.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--corpus-dir",
        type=Path,
        default=None,
        help="get_corpus.sh DEST (default $FGI_CORPUS_DIR or " "~/.cache/fgi-rewrite-corpus)",
    )
    p.add_argument(
        "--get-corpus",
        type=Path,
        default=None,
        help="path of get_corpus.sh (default $FGI_GET_CORPUS or "
        "../shared/tools/get_corpus.sh from the repository root)",
    )
    p.add_argument("--packages", nargs="+", choices=PACKAGES, default=list(PACKAGES))
    p.add_argument("--verify", choices=("none", "grad", "script", "full"), default="script")
    p.add_argument("--timeout", type=float, default=600, help="seconds per tool run")
    p.add_argument(
        "--no-idempotence",
        action="store_true",
        help="skip applying the diffs to a copy and checking again",
    )
    p.add_argument("--expected", type=Path, default=EXPECTED)
    p.add_argument("--json", type=Path, help="write the raw results and scores here")
    p.add_argument(
        "--write-baseline",
        nargs="?",
        const=BASELINE,
        type=Path,
        default=None,
        metavar="FILE",
        help=f"write the minimum scores (default {BASELINE})",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        default=BASELINE,
        help="compare with this baseline; exit 1 on a regression",
    )
    args = p.parse_args(argv)

    corpus_dir = (args.corpus_dir or default_corpus_dir()).expanduser()
    script = (args.get_corpus or default_get_corpus()).expanduser()
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    host = machine()
    print(f"{date}  {host}")
    start = time.perf_counter()
    try:
        found = fetch_corpus(corpus_dir, script)
    except CorpusUnavailable as exc:
        print(f"corpus unavailable: {exc}", file=sys.stderr)
        return 2
    print(f"corpus: {corpus_dir / 'src'} (get_corpus.sh {time.perf_counter() - start:.1f} s)")
    for marker in project_markers_above(corpus_dir / "src"):
        print(
            f"warning: {marker} holds .git or pyproject.toml: fgi-rewrite's project root "
            f"may be wider than one package",
            file=sys.stderr,
        )
    packages = {n: found[n] for n in args.packages}
    cmd = " ".join(
        tool_command("--diff", "--format", "json", "--verify", args.verify, "DEST/src/<package>")[
            1:
        ]
    )
    print(f"per package: python {cmd}")
    results = run_corpus(
        packages, args.verify, args.timeout, not args.no_idempotence, log=sys.stdout
    )
    s = score(load_expected(args.expected), results)
    total = time.perf_counter() - start
    print()
    print(package_table(results))
    print()
    print(score_text(s))
    tool_s = sum(r.wall_s for r in results.values())
    idem_s = sum(r.idempotence_s for r in results.values())
    print(
        f"\ntotal wall time {total:.1f} s (tool runs {tool_s:.1f} s, idempotence runs "
        f"{idem_s:.1f} s)"
    )
    meta = {
        "date": date,
        "machine": host,
        "command": cmd,
        "verify": args.verify,
        "total_wall_s": total,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results_json(results, s, meta), indent=1))
    if args.write_baseline:
        if set(args.packages) != set(PACKAGES):
            print("--write-baseline needs all packages", file=sys.stderr)
            return 2
        args.write_baseline.write_text(json.dumps(baseline_of(s), indent=1) + "\n")
        print(f"wrote {args.write_baseline}")
        return 0
    if args.baseline.is_file():
        baseline = json.loads(args.baseline.read_text())
        baseline["per_package"] = {k: v for k, v in baseline["per_package"].items() if k in results}
        bad = regressions(s, baseline)
        if bad:
            print(f"\nbelow {args.baseline}:\n  " + "\n  ".join(bad))
            return 1
        print(f"\nno regression against {args.baseline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
