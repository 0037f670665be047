"""The pre-commit hooks, run by real pre-commit (``try-repo``) in a temporary git repository.

pre-commit installs this repository into a fresh virtualenv (from the package index), which takes
a while: the test is marked slow.
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


def test_pre_commit_hooks_rewrite_then_pass(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    hooks = _hook_repository(tmp_path / "hooks")
    project = tmp_path / "project"
    (project / "snn").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'snn'\n")
    (project / "snn" / "__init__.py").write_text("")
    (project / "snn" / "surrogates.py").write_text(DEFINITION)
    model = project / "snn" / "model.py"
    model.write_text(USER.replace("from surrogates", "from snn.surrogates"))
    original = model.read_text()
    # A notebook too (types_or: [python, jupyter]), calling the surrogate in a cell.
    cells = ["%matplotlib inline\nfrom snn.surrogates import SpikeFn\n", "y = SpikeFn.apply(x)"]
    explore = project / "explore.ipynb"
    explore.write_bytes(notebook(cells))
    notebook_before = explore.read_bytes()
    _git("init", "-q", cwd=project)
    _git("add", "-A", cwd=project)

    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "NO_COLOR": "1"}

    def try_repo(hook: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_pre_commit(), "try-repo", str(hooks), hook, "--all-files", "--color", "never"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    # The check hook fails with a diff and writes nothing.
    check = try_repo("fgi-rewrite-check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "+++" in check.stdout and "SpikeFn.apply" in check.stdout
    assert "explore.ipynb:cell_1\t(rewritten)" in check.stdout
    assert model.read_text() == original and explore.read_bytes() == notebook_before

    # The writing hook rewrites the call site and fails, as pre-commit hooks that modify files do.
    first = try_repo("fgi-rewrite")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "files were modified by this hook" in first.stdout
    assert "SpikeFn.apply" not in model.read_text()
    assert (project / "snn" / "surrogates.py").read_text() == DEFINITION
    assert b"SpikeFn.apply" not in explore.read_bytes()

    # Staged again, both hooks pass.
    _git("add", "-A", cwd=project)
    second = try_repo("fgi-rewrite")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Passed" in second.stdout
    assert try_repo("fgi-rewrite-check").returncode == 0
