"""Configuration from ``[tool.fgi-rewrite]`` in ``pyproject.toml``.

The file used is the nearest ``pyproject.toml`` with a ``[tool.fgi-rewrite]`` table, looking from
the directory that holds the given paths (or ``--stdin-filename``) up to the repository root (the
first directory holding ``.git``), or the file named by ``--config``. Every long option is a key,
spelled as on the command line without the leading dashes (``extend-exclude``; ``extend_exclude``
works too); an option given on the command line wins over the file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

SECTION = "fgi-rewrite"


class ConfigError(Exception):
    """A configuration file that cannot be read or holds an unknown key or a bad value."""


def _start_directory(paths: Sequence[Path]) -> Path:
    if not paths:
        return Path.cwd().resolve()
    resolved = [p.absolute().resolve() for p in paths]
    common = Path(os.path.commonpath([str(p) for p in resolved]))
    return common if common.is_dir() else common.parent


def read_table(path: Path) -> dict[str, Any] | None:
    """The ``[tool.fgi-rewrite]`` table of a pyproject.toml, or None when it has none."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    tool = data.get("tool", {})
    table = tool.get(SECTION) if isinstance(tool, dict) else None
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.{SECTION}] must be a table")
    return table


def find_config(paths: Sequence[Path]) -> Path | None:
    """The nearest pyproject.toml above ``paths`` that has a ``[tool.fgi-rewrite]`` table."""
    for directory in (start := _start_directory(paths), *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file() and read_table(candidate) is not None:
            return candidate
        if (directory / ".git").exists():
            return None
    return None


def load_config(
    paths: Sequence[Path], explicit: Path | None = None
) -> tuple[Path | None, dict[str, Any]]:
    """The config file used (if any) and its table, keys normalized to ``snake_case``."""
    path = explicit if explicit is not None else find_config(paths)
    if path is None:
        return None, {}
    table = read_table(path)
    if table is None:
        if explicit is not None and explicit.name != "pyproject.toml":
            # Another explicit file may hold the options at its top level.
            try:
                with open(path, "rb") as handle:
                    table = tomllib.load(handle)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read {path}: {exc}") from exc
            table.pop("tool", None)
        else:
            return None, {}
    return path, {key.replace("-", "_"): value for key, value in table.items()}
