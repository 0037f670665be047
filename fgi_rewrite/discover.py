"""Find the project root and the Python files to index and to rewrite."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_EXCLUDES = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "__pycache__",
        "__pypackages__",
        "build",
        "dist",
        "site-packages",
        "node_modules",
        ".eggs",
    }
)


@dataclass(frozen=True)
class FileSet:
    root: Path
    targets: tuple[Path, ...]  # files the user asked to rewrite
    project: tuple[Path, ...]  # every project file, for the index
    missing: tuple[Path, ...]  # paths given that do not exist


def find_project_root(paths: Sequence[Path]) -> Path:
    """Nearest common ancestor that holds ``.git`` or ``pyproject.toml``, as black does."""
    if not paths:
        return Path.cwd().resolve()
    resolved = [p.resolve() for p in paths]
    common = Path(os.path.commonpath([str(p) for p in resolved]))
    if common.is_file() or not common.exists():
        common = common.parent
    for directory in (common, *common.parents):
        if (directory / ".git").exists() or (directory / "pyproject.toml").is_file():
            return directory
    return common


def iter_python_files(directory: Path, excludes: frozenset[str] = DEFAULT_EXCLUDES) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d not in excludes and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield Path(dirpath) / name


def discover(paths: Sequence[Path]) -> FileSet:
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    missing = tuple(p for p in paths if p not in existing)
    root = find_project_root(existing)
    targets: list[Path] = []
    for path in existing:
        if path.is_dir():
            targets.extend(p.resolve() for p in iter_python_files(path))
        else:
            targets.append(path.resolve())
    project = {p.resolve() for p in iter_python_files(root)} if root.is_dir() else set()
    project.update(t for t in targets if t.is_file())
    return FileSet(
        root=root,
        targets=tuple(dict.fromkeys(targets)),
        project=tuple(sorted(project)),
        missing=missing,
    )
