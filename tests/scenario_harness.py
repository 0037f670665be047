"""Scenario projects (``scenarios/<name>/``): run a driver before and after ``fgi-rewrite``, each
time in a fresh interpreter, and compare what it recorded.

A scenario is a small project written the way research code is written, plus a driver that trains
for a few steps and changes state between them (setters with ``global``, ``setattr`` on a class,
a module constant assigned from another module, a config attribute...). The driver prints one
JSON line (``scenarios/_support/scenario_record.py``): per step the forward values, the gradients
and whether each ``.grad`` is None. ``scenario.toml`` says what the tool must do with the project.
"""

from __future__ import annotations

import base64
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"
SUPPORT = SCENARIOS / "_support"
MARKER = "FGI-SCENARIO-RESULT "
METADATA = "scenario.toml"
DRIVER_TIMEOUT_S = 180
TOOL_TIMEOUT_S = 300

Expect = Literal["rewritten", "unchanged", "refused", "either"]
EXPECTATIONS: tuple[Expect, ...] = ("rewritten", "unchanged", "refused", "either")
_CODE = re.compile(r"\bFGI\d{3}\b")


class ScenarioMismatch(AssertionError):
    """The tool did not do what the scenario declares, or the rewritten program computes something
    else. The only failure an ``xfail`` scenario may show: a broken scenario (its driver fails
    before the rewrite, it records nothing) is a plain error and is never hidden by ``xfail``."""


@dataclass(frozen=True)
class Scenario:
    name: str
    directory: Path
    description: str
    driver: str
    expect: Expect
    codes: tuple[str, ...] = ()
    exit_code: int = 0
    changed: tuple[str, ...] = ()  # files that must change (when rewritten); empty: any
    xfail: str | None = None
    requires: tuple[str, ...] = ()  # modules the project imports besides torch (skip without)


def load(directory: Path) -> Scenario:
    meta: dict[str, Any] = tomllib.loads((directory / METADATA).read_text())
    known = {
        "description",
        "driver",
        "expect",
        "codes",
        "exit_code",
        "changed",
        "xfail",
        "requires",
    }
    unknown = set(meta) - known
    if unknown:
        raise ValueError(f"{directory / METADATA}: unknown keys {sorted(unknown)}")
    if meta["expect"] not in EXPECTATIONS:
        raise ValueError(f"{directory / METADATA}: expect must be one of {EXPECTATIONS}")
    if meta["expect"] in ("unchanged", "refused") and not meta.get("codes"):
        raise ValueError(f"{directory / METADATA}: {meta['expect']} needs the expected codes")
    if not (directory / meta["driver"]).is_file():
        raise ValueError(f"{directory / METADATA}: no driver {meta['driver']}")
    return Scenario(
        name=directory.name,
        directory=directory,
        description=meta["description"],
        driver=meta["driver"],
        expect=meta["expect"],
        codes=tuple(meta.get("codes", ())),
        exit_code=int(meta.get("exit_code", 0)),
        changed=tuple(meta.get("changed", ())),
        xfail=meta.get("xfail"),
        requires=tuple(meta.get("requires", ())),
    )


def scenarios() -> list[Scenario]:
    return [load(d) for d in sorted(SCENARIOS.iterdir()) if (d / METADATA).is_file()]


# ---- running ---------------------------------------------------------------------------------


def copy_project(scenario: Scenario, destination: Path) -> Path:
    shutil.copytree(
        scenario.directory,
        destination,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", METADATA),
    )
    return destination


def _clean_environment() -> dict[str, str]:
    """No FGI_REWRITE_* settings from the caller (the tool runs with its defaults), one thread
    (deterministic and kind to a shared machine), no bytecode caches in the copies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FGI_REWRITE_")}
    env.update(PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def start_driver(scenario: Scenario, project: Path) -> subprocess.Popen[str]:
    env = _clean_environment()
    env["PYTHONPATH"] = os.pathsep.join([str(project), str(SUPPORT)])
    return subprocess.Popen(
        [sys.executable, scenario.driver],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_tool(project: Path) -> subprocess.Popen[str]:
    env = _clean_environment()
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen(
        [sys.executable, "-m", "fgi_rewrite", str(project)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


def finish(process: subprocess.Popen[str], timeout: int) -> Finished:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        return Finished(-9, stdout, stderr + f"\n[killed after {timeout} s]")
    return Finished(process.returncode, stdout, stderr)


def parse_record(run: Finished) -> list[dict[str, Any]] | None:
    """The recorded steps, or None when the driver failed or printed no record."""
    if run.returncode != 0:
        return None
    lines = [line for line in run.stdout.splitlines() if line.startswith(MARKER)]
    if len(lines) != 1:
        return None
    steps: list[dict[str, Any]] = json.loads(lines[0][len(MARKER) :])["steps"]
    return steps


# ---- comparing -------------------------------------------------------------------------------

# rtol, atol of the gradient comparison, by dtype (the verifier's, README "Verification").
TOLERANCE = {"float32": (1e-5, 1e-6), "float64": (1e-10, 1e-12)}


def decode(encoded: Mapping[str, Any]) -> Any:
    import torch

    dtype = getattr(torch, encoded["dtype"])
    raw = bytearray(base64.b64decode(encoded["data"]))
    if not raw:
        return torch.empty(encoded["shape"], dtype=dtype)
    return torch.frombuffer(raw, dtype=dtype).reshape(encoded["shape"]).clone()


def _described(tensor: Any) -> str:
    return f"{str(tensor.dtype).removeprefix('torch.')}{list(tensor.shape)}"


def value_difference(before: Any, after: Any) -> str | None:
    """None when ``after`` is ``before`` bit for bit (any NaN matches any NaN), else why not."""
    import torch

    if before.dtype != after.dtype or before.shape != after.shape:
        return f"{_described(before)} became {_described(after)}"
    if not (before.is_floating_point() or before.is_complex()):
        same = before == after
    else:
        nan = before.isnan() & after.isnan()
        same = ((before == after) & (torch.signbit(before) == torch.signbit(after))) | nan
    if bool(same.all()):
        return None
    where = (~same).nonzero()[0].tolist()
    gap = (before.double() - after.double()).abs()[~same].nan_to_num(float("inf")).max().item()
    return (
        f"{int((~same).sum())} of {before.numel()} elements differ, max abs diff {gap:.3g}; "
        f"first at {where}: {before[tuple(where)].item()!r} -> {after[tuple(where)].item()!r}"
    )


def gradient_difference(before: Any, after: Any) -> str | None:
    """None when ``after`` is within the dtype's tolerance of ``before`` (NaN matches NaN)."""
    import torch

    if before.dtype != after.dtype or before.shape != after.shape:
        return f"{_described(before)} became {_described(after)}"
    name = str(before.dtype).removeprefix("torch.")
    if name not in TOLERANCE:
        return value_difference(before, after)
    rtol, atol = TOLERANCE[name]
    close = torch.isclose(after, before, rtol=rtol, atol=atol, equal_nan=True)
    if bool(close.all()):
        return None
    gap = (before.double() - after.double()).abs()[~close].nan_to_num(float("inf"))
    relative = gap / before.double().abs()[~close].clamp_min(1e-300)
    return (
        f"{int((~close).sum())} of {before.numel()} elements outside rtol {rtol:g}/atol {atol:g}, "
        f"max abs diff {gap.max().item():.3g} (max rel {relative.max().item():.3g})"
    )


def _none_parity(before: object, after: object) -> str | None:
    if (before is None) == (after is None):
        return None
    return "None before, a tensor after" if before is None else "a tensor before, None after"


def compare_records(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """Every difference between two drivers' records, one line each, naming step and tensor."""
    names_before = [s["step"] for s in before]
    names_after = [s["step"] for s in after]
    if names_before != names_after:
        return [f"recorded steps differ: {names_before} before, {names_after} after"]
    problems = []
    for a, b in zip(before, after, strict=True):
        for kind, section, differ in (
            ("value", "values", value_difference),
            ("gradient", "grads", gradient_difference),
        ):
            where = f"step {a['step']!r}, {kind}"
            if set(a[section]) != set(b[section]):
                problems.append(f"{where}s named {sorted(a[section])} -> {sorted(b[section])}")
                continue
            for name, encoded in a[section].items():
                other = b[section][name]
                if encoded is None or other is None:
                    problem = _none_parity(encoded, other)
                else:
                    problem = differ(decode(encoded), decode(other))
                if problem:
                    problems.append(f"{where} {name!r}: {problem}")
    return problems


def check_record_is_evidence(steps: list[dict[str, Any]] | None, scenario: Scenario) -> None:
    """A driver whose record could not show a difference makes a test that cannot fail."""
    assert steps is not None, f"{scenario.name}: the driver recorded nothing"
    assert len(steps) >= 2, f"{scenario.name}: record at least two steps (state changes between)"
    gradients = [g for s in steps for g in s["grads"].values() if g is not None]
    assert gradients, f"{scenario.name}: no step recorded a gradient"


# ---- what the tool did -----------------------------------------------------------------------


def changed_files(original: Path, rewritten: Path) -> dict[str, str]:
    """Relative path -> unified diff of each file of ``original`` that differs in ``rewritten``."""
    diffs = {}
    for path in sorted([*original.rglob("*.py"), *original.rglob("*.ipynb")]):
        if "__pycache__" in path.parts or ".ipynb_checkpoints" in path.parts:
            continue
        relative = path.relative_to(original).as_posix()
        other = rewritten / relative
        before = path.read_text()
        after = other.read_text() if other.is_file() else ""
        if before != after:
            diffs[relative] = "".join(
                difflib.unified_diff(
                    before.splitlines(keepends=True),
                    after.splitlines(keepends=True),
                    f"a/{relative}",
                    f"b/{relative}",
                )
            )
    return diffs


def outcome_problems(scenario: Scenario, tool: Finished, diffs: Mapping[str, str]) -> list[str]:
    """Where the tool's exit status, written files or reported codes contradict the scenario."""
    problems = []
    if tool.returncode != scenario.exit_code:
        problems.append(f"exit status {tool.returncode}, expected {scenario.exit_code}")
    reported = set(_CODE.findall(tool.stderr + tool.stdout))
    missing = [c for c in scenario.codes if c not in reported]
    rewritten = bool(diffs)
    expect = scenario.expect
    if expect == "either":
        expect = "rewritten" if rewritten else "unchanged"
        if not rewritten and not scenario.codes and not reported:
            problems.append("left unchanged without a diagnostic code (a silent miss)")
    if expect == "rewritten":
        if not rewritten:
            problems.append("expected the call sites to be rewritten; no file changed")
        elif scenario.changed and set(diffs) != set(scenario.changed):
            problems.append(f"changed {sorted(diffs)}, expected {sorted(scenario.changed)}")
    elif rewritten:
        problems.append(f"expected {scenario.expect}; the tool changed {sorted(diffs)}")
    if missing:
        problems.append(f"expected code(s) {missing} on stderr; reported {sorted(reported)}")
    return problems


def failure_message(
    scenario: Scenario, problems: list[str], tool: Finished, diffs: Mapping[str, str], limit: int
) -> str:
    shown = problems[:limit] + (
        [f"... and {len(problems) - limit} more"] if len(problems) > limit else []
    )
    diff_text = "".join(diffs.values())
    if len(diff_text) > 6000:
        diff_text = diff_text[:6000] + "\n[diff truncated]\n"
    return "\n".join(
        [
            f"scenario {scenario.name} ({scenario.description}):",
            *(f"  - {p}" for p in shown),
            f"--- fgi-rewrite exit {tool.returncode}, stdout:",
            tool.stdout.rstrip(),
            "--- fgi-rewrite stderr:",
            tool.stderr.rstrip(),
            "--- what the rewrite changed:",
            diff_text.rstrip() or "(nothing)",
        ]
    )
