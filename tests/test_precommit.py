"""The pre-commit hooks, run by real pre-commit (``try-repo``) in a temporary git repository.

pre-commit installs this repository into a fresh virtualenv (from the package index), which takes
a while: the test is marked slow. That virtualenv has no torch, so the hooks there write nothing
unless verification is pointed at an interpreter that has it; the ``language: system`` hook runs
the project's own environment (README, "pre-commit").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sources import DEFINITION, USER, notebook

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _pre_commit() -> list[str]:
    beside = Path(sys.executable).with_name("pre-commit")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("pre-commit")
    if found is None:
        pytest.skip("pre-commit is not installed (pip install -e '.[dev]')")
    return [found]


def _git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, check=True, timeout=120
    )
    return done.stdout.decode()


def _hook_repository(destination: Path) -> Path:
    """This working tree (tracked and new files, not ignored ones), committed in a fresh repo:
    try-repo would otherwise miss files that are not yet committed."""
    try:
        listing = _git("ls-files", "-co", "--exclude-standard", "-z", cwd=REPO)
    except (subprocess.CalledProcessError, FileNotFoundError):
        pytest.skip("this checkout is not a git repository")
    for name in filter(None, listing.split("\0")):
        source = REPO / name
        if not source.is_file() or name.startswith(("fixtures/", "benchmarks/", "scenarios/")):
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    _git("init", "-q", cwd=destination)
    _git("add", "-A", cwd=destination)
    _git("commit", "-q", "-m", "hooks under test", cwd=destination)
    return destination


def _project(tmp_path: Path) -> tuple[Path, Path]:
    project = tmp_path / "project"
    (project / "snn").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'snn'\n")
    (project / "snn" / "__init__.py").write_text("")
    (project / "snn" / "surrogates.py").write_text(DEFINITION)
    model = project / "snn" / "model.py"
    model.write_text(USER.replace("from surrogates", "from snn.surrogates"))
    # A notebook too (types_or: [python, jupyter]), calling the surrogate in a cell.
    cells = ["%matplotlib inline\nfrom snn.surrogates import SpikeFn\n", "y = SpikeFn.apply(x)"]
    (project / "explore.ipynb").write_bytes(notebook(cells))
    _git("init", "-q", cwd=project)
    _git("add", "-A", cwd=project)
    return project, model


def test_pre_commit_hooks_verify_or_write_nothing(tmp_path: Path) -> None:
    """The hooks in pre-commit's own environment have no torch: nothing is written and the output
    says how to get verification. ``FGI_REWRITE_VERIFY_PYTHON`` (the project's interpreter, which
    has torch) and the ``language: system`` hook verify: the first run rewrites and fails, as
    pre-commit hooks that modify files do, the second passes."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    hooks = _hook_repository(tmp_path / "hooks")
    project, model = _project(tmp_path)
    original = model.read_text()
    explore = project / "explore.ipynb"
    notebook_before = explore.read_bytes()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("FGI_REWRITE_")}
    base_env.update(PRE_COMMIT_HOME=str(tmp_path / "cache"), NO_COLOR="1")

    def try_repo(hook: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_pre_commit(), "try-repo", str(hooks), hook, "--all-files", "--color", "never"],
            cwd=project,
            env={**base_env, **env},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    # Without torch: the check hook fails with the diff, marked unverified, and writes nothing.
    check = try_repo("fgi-rewrite-check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "+++" in check.stdout and "SpikeFn.apply" in check.stdout
    assert "unverified: not written" in check.stdout
    assert "explore.ipynb:cell_1\t(rewritten)" in check.stdout
    assert model.read_text() == original and explore.read_bytes() == notebook_before
    # The writing hook fails, writes nothing, and says how to get verification.
    unverified = try_repo("fgi-rewrite")
    assert unverified.returncode == 1, unverified.stdout + unverified.stderr
    assert "files were modified by this hook" not in unverified.stdout
    for advice in ("FGI309", "pip install 'fgi-rewrite[verify]'", "language: system"):
        assert advice in unverified.stdout, unverified.stdout
    assert model.read_text() == original and explore.read_bytes() == notebook_before

    # The hook's environment, verified by the project's interpreter.
    first = try_repo("fgi-rewrite", FGI_REWRITE_VERIFY_PYTHON=sys.executable)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "files were modified by this hook" in first.stdout
    assert "verify SpikeFn: grad ✓" in first.stdout, first.stdout
    assert "SpikeFn.apply" not in model.read_text()
    assert (project / "snn" / "surrogates.py").read_text() == DEFINITION
    assert b"SpikeFn.apply" not in explore.read_bytes()
    _git("add", "-A", cwd=project)
    second = try_repo("fgi-rewrite", FGI_REWRITE_VERIFY_PYTHON=sys.executable)
    assert second.returncode == 0 and "Passed" in second.stdout, second.stdout + second.stderr
    assert try_repo("fgi-rewrite-check").returncode == 0

    # language: system runs the fgi-rewrite of the environment pre-commit runs in (here the one
    # of these tests, which has torch), as a project's own virtualenv would.
    model.write_text(original)
    explore.write_bytes(notebook_before)
    _git("add", "-A", cwd=project)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    first = try_repo("fgi-rewrite-system", PATH=path)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "files were modified by this hook" in first.stdout
    assert "verify SpikeFn: grad ✓" in first.stdout, first.stdout
    _git("add", "-A", cwd=project)
    second = try_repo("fgi-rewrite-system", PATH=path)
    assert second.returncode == 0 and "Passed" in second.stdout, second.stdout + second.stderr
