"""Find the project root and the Python files (modules and notebooks) to index and to rewrite.

As black: files found by walking a directory are matched against the exclude regexes (``--exclude``,
which replaces ``DEFAULT_EXCLUDE``, plus ``--extend-exclude`` and ``--force-exclude``) on their path
relative to the project root, written with ``/`` and a leading ``/``, directories with a trailing
``/``; files that ``.gitignore`` rules exclude are skipped too. Files given explicitly are matched
only against ``--force-exclude`` (what a pre-commit hook or an editor passes). Files whose first
lines carry the generated-file marker (``GENERATED_MARKER``) are never rewritten.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fgi_rewrite.project.gitignore import ignored_files

# Directory names never walked into, for the index as for the targets.
DEFAULT_EXCLUDES = frozenset(
    {
        ".direnv",
        ".eggs",
        ".git",
        ".hg",
        ".ipynb_checkpoints",
        ".mypy_cache",
        ".nox",
        ".pytest_cache",
        ".ruff_cache",
        ".svn",
        ".tox",
        ".venv",
        ".vscode",
        "__pycache__",
        "__pypackages__",
        "_build",
        "buck-out",
        "build",
        "dist",
        "node_modules",
        "site-packages",
        "venv",
    }
)
DEFAULT_EXCLUDE = (
    r"/("
    + "|".join(d.replace(".", r"\.") for d in sorted(DEFAULT_EXCLUDES))
    + r"|[^/]*\.egg-info)/"
)
VCS_DIRECTORIES = frozenset({".git", ".hg", ".svn"})
GENERATED_MARKER = "@" + "generated"  # spelled in two parts so this file is not marked itself
GENERATED_LINES = 10  # the marker counts in the first lines only (a header comment or docstring)
# Files a directory walk finds: modules and Jupyter notebooks (project/notebook.py).
SOURCE_SUFFIXES = (".py", ".ipynb")


def compile_regex(pattern: str) -> re.Pattern[str]:
    """As black: a pattern written over several lines is a verbose regex."""
    return re.compile(f"(?x){pattern}" if "\n" in pattern else pattern)


@dataclass(frozen=True)
class Filters:
    exclude: re.Pattern[str] | None = None  # None: DEFAULT_EXCLUDE
    extend_exclude: re.Pattern[str] | None = None
    force_exclude: re.Pattern[str] | None = None
    gitignore: bool = True

    @classmethod
    def from_strings(
        cls,
        exclude: str | None = None,
        extend_exclude: str | None = None,
        force_exclude: str | None = None,
        gitignore: bool = True,
    ) -> Filters:
        return cls(
            exclude=compile_regex(exclude) if exclude is not None else None,
            extend_exclude=compile_regex(extend_exclude) if extend_exclude else None,
            force_exclude=compile_regex(force_exclude) if force_exclude else None,
            gitignore=gitignore,
        )

    def walked_excluded(self, relative: str) -> bool:
        exclude = self.exclude if self.exclude is not None else compile_regex(DEFAULT_EXCLUDE)
        return any(
            regex is not None and regex.search(relative)
            for regex in (exclude, self.extend_exclude, self.force_exclude)
        )

    def force_excluded(self, relative: str) -> bool:
        return self.force_exclude is not None and bool(self.force_exclude.search(relative))


@dataclass(frozen=True)
class FileSet:
    root: Path
    targets: tuple[Path, ...]  # files the user asked to rewrite
    project: tuple[Path, ...]  # every project file, for the index
    errors: tuple[tuple[Path, str], ...] = ()  # paths given that cannot be processed
    skipped: tuple[tuple[Path, str], ...] = field(default=())  # left alone on purpose

    @property
    def missing(self) -> tuple[Path, ...]:
        return tuple(path for path, _ in self.errors)


def find_project_root(paths: Sequence[Path]) -> Path:
    """Nearest common ancestor that holds ``.git`` or ``pyproject.toml``, as black does."""
    if not paths:
        return Path.cwd().resolve()
    resolved = [p.absolute().resolve() for p in paths]
    common = Path(os.path.commonpath([str(p) for p in resolved]))
    if not common.is_dir():
        common = common.parent
    for directory in (common, *common.parents):
        if (directory / ".git").exists() or (directory / "pyproject.toml").is_file():
            return directory
    return common


def relative_for_regex(path: Path, root: Path, is_dir: bool = False) -> str:
    """``/a/b.py`` or ``/a/`` relative to the root (the absolute path outside it)."""
    try:
        text = "/" + path.relative_to(root).as_posix()
    except ValueError:
        text = path.as_posix()
    if is_dir and not text.endswith("/"):
        text += "/"
    return text


def is_generated(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = b"".join(handle.readline(4096) for _ in range(GENERATED_LINES))
    except OSError:
        return False
    return GENERATED_MARKER.encode() in head


def iter_python_files(
    directory: Path,
    excludes: frozenset[str] = DEFAULT_EXCLUDES,
    *,
    root: Path | None = None,
    filters: Filters | None = None,
) -> Iterable[Path]:
    """Python files and notebooks under ``directory`` (not following directory symlinks),
    sorted, pruned."""
    for dirpath, dirnames, filenames in os.walk(directory):
        here = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            if filters is not None and root is not None:
                # The regexes decide (--exclude replaces the defaults); VCS internals never count.
                if name in VCS_DIRECTORIES or filters.walked_excluded(
                    relative_for_regex(here / name, root, is_dir=True)
                ):
                    continue
            elif name in excludes or name.endswith(".egg-info"):
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            if not name.endswith(SOURCE_SUFFIXES):
                continue
            path = here / name
            if filters is not None and root is not None:
                if filters.walked_excluded(relative_for_regex(path, root)):
                    continue
            yield path


def discover(
    paths: Sequence[Path],
    filters: Filters | None = None,
    virtual: Sequence[Path] = (),
    walk_project: bool = True,
) -> FileSet:
    """``virtual`` files (stdin) need not exist; they are targets matched by --force-exclude only.

    ``walk_project=False`` indexes only the targets (stdin without ``--stdin-filename``).
    """
    filters = filters or Filters()
    errors: list[tuple[Path, str]] = []
    skipped: list[tuple[Path, str]] = []
    existing: list[Path] = []
    for path in paths:
        if path.is_symlink() and not path.exists():
            errors.append((path, f"broken symbolic link (to {os.readlink(path)})"))
        elif not path.exists():
            errors.append((path, "no such file or directory"))
        else:
            existing.append(path)
    if not existing and not virtual:
        return FileSet(Path.cwd().resolve(), (), (), tuple(errors), ())
    root = find_project_root([*existing, *virtual])

    targets: list[Path] = []
    walked: list[Path] = []
    for path in existing:
        if path.is_dir():
            top = path.absolute().resolve()
            for found in iter_python_files(top, root=root, filters=filters):
                if found.is_symlink() and not found.exists():
                    skipped.append((found, "broken symbolic link"))
                    continue
                walked.append(found.resolve())
        else:
            resolved = path.absolute().resolve()
            if filters.force_excluded(relative_for_regex(resolved, root)):
                skipped.append((path, "matches --force-exclude"))
                continue
            targets.append(resolved)
    if filters.gitignore and walked:
        ignored = ignored_files(root, walked)
        walked = [p for p in walked if p not in ignored]
    targets.extend(walked)
    for path in virtual:
        if filters.force_excluded(relative_for_regex(path, root)):
            skipped.append((path, "matches --force-exclude"))
        else:
            targets.append(path)

    kept: list[Path] = []
    for path in dict.fromkeys(targets):
        if path not in virtual and path.is_file() and is_generated(path):
            skipped.append((path, f"marked {GENERATED_MARKER}"))
        else:
            kept.append(path)

    project: set[Path] = set()
    if walk_project and root.is_dir():
        found_files = [p.absolute().resolve() for p in iter_python_files(root)]
        found_files = [p for p in found_files if p.is_file()]
        if filters.gitignore:
            ignored = ignored_files(root, found_files)
            found_files = [p for p in found_files if p not in ignored]
        project.update(found_files)
    project.update(t for t in kept if t.is_file() or t in virtual)
    return FileSet(
        root=root,
        targets=tuple(kept),
        project=tuple(sorted(project)),
        errors=tuple(errors),
        skipped=tuple(skipped),
    )
