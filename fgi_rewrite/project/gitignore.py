"""Which files git ignores: ``git check-ignore`` inside a work tree, a small matcher elsewhere.

Inside a git work tree git itself answers (every ``.gitignore``, ``.git/info/exclude`` and the
global excludes file, exactly as ``git status`` sees them; tracked files are never ignored).
Outside one, or when git is missing, the ``.gitignore`` files between the project root and each
file are read and matched with the common subset of the gitignore syntax: ``*``, ``?``, ``[...]``,
``**``, a leading or inner ``/`` anchoring the pattern to its file's directory, a trailing ``/``
for directories only, ``!`` to re-include and ``\\`` escapes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class _Pattern:
    base: Path  # directory of the .gitignore file
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _translate(pattern: str) -> str:
    """A gitignore glob (without ``!``, trailing ``/`` and anchoring) as a regex body."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append(re.escape(c))
                i += 1
                continue
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def parse_gitignore(text: str, base: Path) -> list[_Pattern]:
    patterns: list[_Pattern] = []
    for raw in text.splitlines():
        line = raw.rstrip("\n\r")
        if not line.endswith("\\ "):
            line = line.rstrip(" ")
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:]
        elif line.startswith("\\"):
            line = line[1:] if line[1:2] in ("#", "!") else line
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        body = _translate(line)
        regex = re.compile(("^" if anchored else "^(?:.*/)?") + body + "$")
        patterns.append(_Pattern(base, regex, negate, dir_only))
    return patterns


class GitIgnoreMatcher:
    """The ``.gitignore`` files from ``root`` down, matched without git."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_dir: dict[Path, list[_Pattern]] = {}

    def _patterns(self, directory: Path) -> list[_Pattern]:
        if directory not in self._by_dir:
            try:
                text = (directory / ".gitignore").read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            self._by_dir[directory] = parse_gitignore(text, directory)
        return self._by_dir[directory]

    def _matches(self, path: Path, is_dir: bool) -> bool:
        """Whether the last matching pattern of the directories above ``path`` ignores it."""
        ignored = False
        try:
            parents = path.relative_to(self.root).parents
        except ValueError:
            return False
        for relative_dir in reversed(parents):  # root first, deeper files override
            directory = self.root / relative_dir
            relative = path.relative_to(directory).as_posix()
            for pattern in self._patterns(directory):
                if pattern.dir_only and not is_dir:
                    continue
                if pattern.regex.match(relative):
                    ignored = not pattern.negate
        return ignored

    def ignored(self, path: Path, is_dir: bool = False) -> bool:
        """A path is ignored when it or any directory above it (below the root) is."""
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return False
        current = self.root
        for part in relative.parts[:-1]:
            current = current / part
            if self._matches(current, is_dir=True):
                return True
        return self._matches(path, is_dir)


def git_toplevel(directory: Path) -> Path | None:
    """The work tree that holds ``directory``, or None outside one (or without git)."""
    if shutil.which("git") is None or not directory.is_dir():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "--show-toplevel"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return Path(os.fsdecode(done.stdout.strip())).resolve()


def git_ignored(toplevel: Path, paths: Sequence[Path]) -> set[Path] | None:
    """The paths git ignores, or None when git cannot answer (then fall back to the matcher)."""
    if not paths:
        return set()
    inputs = b"".join(os.fsencode(str(p)) + b"\0" for p in paths)
    try:
        done = subprocess.run(
            ["git", "-C", str(toplevel), "check-ignore", "--stdin", "-z"],
            input=inputs,
            capture_output=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode not in (0, 1):  # 128: a path outside the tree or in a submodule
        return None
    return {Path(os.fsdecode(item)) for item in done.stdout.split(b"\0") if item}


def ignored_files(root: Path, paths: Iterable[Path]) -> set[Path]:
    """The files among ``paths`` (absolute, under ``root``) that .gitignore rules exclude."""
    candidates = list(paths)
    if not candidates:
        return set()
    toplevel = git_toplevel(root)
    if toplevel is not None:
        inside = [p for p in candidates if p.is_relative_to(toplevel)]
        found = git_ignored(toplevel, inside)
        if found is not None:
            return found
    matcher = GitIgnoreMatcher(root)
    return {p for p in candidates if matcher.ignored(p)}
