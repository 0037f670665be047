"""The notebook fixtures (``fixtures/<case>/input.ipynb``) run before and after the rewrite.

test_fixtures.py checks every case's expected files, report and idempotence; this runs each
rewritten notebook's code cells in order (magics replaced by ``None``: ``runnable_source``), the
original and the rewrite each in a fresh interpreter started in the notebook's directory (where
Jupyter runs it, so its project imports resolve), and compares every tensor the cells leave at
module level: values bit for bit, gradients of leaf tensors at the verifier's tolerance.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fgi_rewrite.project.notebook import build_module, runnable_source
from fgi_rewrite.project.notebook_json import read_notebook
from tests.fixture_cases import Case, cases, copy_inputs, run_case

NOTEBOOK_CASES = [c for c in cases() if c.notebook]
REWRITTEN = [c for c in NOTEBOOK_CASES if c.rewritten]
TOLERANCE = {"torch.float32": (1e-5, 1e-6), "torch.float64": (1e-10, 1e-12)}

# Appended to the cells: every module-level tensor, its dtype, values and gradient.
DUMP = """
import json as _fgi_json, sys as _fgi_sys, torch as _fgi_torch
_fgi_json.dump(
    {
        _name: {
            "dtype": str(_value.dtype),
            "value": _value.detach().tolist(),
            "grad": None if not _value.is_leaf or _value.grad is None else _value.grad.tolist(),
        }
        for _name, _value in sorted(globals().items())
        if isinstance(_value, _fgi_torch.Tensor) and not _name.startswith("_")
    },
    _fgi_sys.stdout,
)
"""


def test_notebook_cases_exist() -> None:
    assert len(REWRITTEN) >= 2


def run_cells(notebook: Path) -> dict[str, Any]:
    module = build_module(read_notebook(notebook.read_bytes()))
    script = notebook.with_name(f"_run_{notebook.stem}.py")
    script.write_text(runnable_source(module) + DUMP, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, script.name],
        cwd=notebook.parent,
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
        timeout=300,
    )
    script.unlink()
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def flat(values: Any) -> list[float]:
    if isinstance(values, list):
        return [x for v in values for x in flat(v)]
    return [float(values)]


def same_bits(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True)
    )


def close(a: list[float], b: list[float], rtol: float, atol: float) -> bool:
    return len(a) == len(b) and all(
        abs(x - y) <= atol + rtol * abs(y) for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("case", REWRITTEN, ids=lambda c: c.name)
def test_rewritten_cells_give_the_same_values_and_gradients(case: Case, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    original = copy_inputs(case, tmp_path / "original")
    rewritten = copy_inputs(case, tmp_path / "rewritten")
    run_case(rewritten)
    notebooks = [p for p in case.input_files() if p.suffix == ".ipynb"]
    changed = [p for p in notebooks if (original / p).read_bytes() != (rewritten / p).read_bytes()]
    assert changed, "no notebook was rewritten"
    for relative in changed:
        before, after = run_cells(original / relative), run_cells(rewritten / relative)
        assert before.keys() == after.keys()
        assert any(
            entry["grad"] is not None and any(flat(entry["grad"])) for entry in before.values()
        ), "the notebook computes no gradient: the comparison would prove nothing"
        for name, entry in before.items():
            other = after[name]
            assert entry["dtype"] == other["dtype"], name
            assert same_bits(flat(entry["value"]), flat(other["value"])), f"{name}: values"
            assert (entry["grad"] is None) == (other["grad"] is None), f"{name}: grad"
            if entry["grad"] is not None:
                rtol, atol = TOLERANCE.get(entry["dtype"], TOLERANCE["torch.float32"])
                ok = close(flat(other["grad"]), flat(entry["grad"]), rtol, atol)
                assert ok, f"{name}: gradients differ"
