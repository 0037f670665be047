"""The example project: the README's diff shows the rewrite, and every rewritten form still
trains; plus the function style across modules and ``--remove-unused``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fgi_rewrite import Options, run
from tests.fixture_cases import FIXTURES

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def copy_examples(tmp_path: Path) -> Path:
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def train(root: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "snn_demo.train"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_diff_of_examples_shows_both_call_sites() -> None:
    report = run([EXAMPLES], Options(diff=True))
    changed = {r.path.name: r for r in report.changed}
    assert set(changed) == {"model.py"}
    assert len(changed["model.py"].call_sites) == 2
    assert b"torch.is_grad_enabled()" in changed["model.py"].after
    assert b"fast_sigmoid(" not in changed["model.py"].after
    # A project of its own (examples/pyproject.toml): the repository's fixtures that
    # differentiate twice are not part of it, so the fast form, without FGI401.
    assert b"_fgi_v_mid" not in changed["model.py"].after
    assert not [d for d in report.diagnostics if d.code.code == "FGI401"]


@pytest.mark.parametrize(
    "options",
    [
        Options(),
        Options(style="function"),
        Options(style="function", remove_unused=True),
        Options(remove_unused=True),
    ],
    ids=["inline", "function", "function-remove-unused", "inline-remove-unused"],
)
def test_rewritten_example_still_trains(options: Options, tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    report = run([root], options)
    assert report.changed and report.exit_code() == 0
    assert "loss decreased" in train(root)
    assert not run([root], Options(check=True)).changed  # idempotent


def test_function_style_defines_once_beside_the_function(tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    run([root], Options(style="function"))
    surrogates = (root / "snn_demo" / "surrogates.py").read_text()
    model = (root / "snn_demo" / "model.py").read_text()
    assert surrogates.count("def fast_sigmoid_spike_fgi(") == 1
    assert surrogates.count("def atan_spike_fgi(") == 1
    assert "from .surrogates import fast_sigmoid_spike_fgi" in model
    assert "def fast_sigmoid_spike_fgi(" not in model


def test_function_style_is_local_when_the_defining_module_is_not_given(tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    run([root / "snn_demo" / "model.py"], Options(style="function"))
    model = (root / "snn_demo" / "model.py").read_text()
    assert "def fast_sigmoid_spike_fgi(" in model
    assert "fast_sigmoid_spike_fgi" not in (root / "snn_demo" / "surrogates.py").read_text()
    assert "loss decreased" in train(root)


def test_remove_unused_keeps_what_is_still_referenced(tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    run([root], Options(remove_unused=True))
    surrogates = (root / "snn_demo" / "surrogates.py").read_text()
    model = (root / "snn_demo" / "model.py").read_text()
    # fast_sigmoid is no longer used anywhere: its class, alias and import go.
    assert "FastSigmoidSpike" not in surrogates and "fast_sigmoid" not in model
    # ``self.spike = atan_spike`` still names the alias: the class stays (it may be public API).
    assert "class ATanSpike" in surrogates and "import atan_spike" in model


def test_without_remove_unused_nothing_is_removed(tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    run([root], Options())
    assert "class FastSigmoidSpike" in (root / "snn_demo" / "surrogates.py").read_text()
    assert "import atan_spike, fast_sigmoid" in (root / "snn_demo" / "model.py").read_text()


def test_crossfile_fixture_function_style_imports_relatively(tmp_path: Path) -> None:
    root = tmp_path / "case"
    shutil.copytree(FIXTURES / "crossfile_relative", root)
    run([root], Options(style="function"))
    model = (root / "pkg" / "model.py").read_text()
    assert "from .surrogates import rel_spike_fgi" in model
