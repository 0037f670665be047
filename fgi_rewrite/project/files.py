"""The user's files: precise messages for a file that cannot be read or parsed, and safe writes.

A source is only ever compiled to an AST here, never executed. A file is only ever replaced whole:
``write_atomic`` writes a temporary file beside it and renames it over the original.
"""

from __future__ import annotations

import ast
import codecs
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from fgi_rewrite.core.results import FileResult
from fgi_rewrite.project import source_module
from fgi_rewrite.project.notebook import is_notebook
from fgi_rewrite.project.source_module import SourceError

# ---- bad input --------------------------------------------------------------------------------

_PYTHON2_HINTS = (
    "Missing parentheses in call to",
    "multiple exception types must be parenthesized",
    "leading zeros in decimal integer literals",
    "invalid syntax. Perhaps you forgot a comma",
)


def describe_unreadable(
    path: Path, error: SourceError, read: Callable[[Path], bytes] = source_module.read_source
) -> tuple[int, int, str]:
    """Line, column and a precise message for a file libcst cannot parse, from Python's compiler.

    The source is only compiled to an AST, never executed.
    """
    try:
        data = read(path)
    except SourceError as exc:
        if not os.path.lexists(path):
            return 1, 1, "no such file (deleted during the run?)"
        return 1, 1, str(exc)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return 1, 1, "cannot decode: the file is UTF-16 encoded; Python source must be UTF-8"
    if b"\0" in data:
        return 1, data.index(b"\0") + 1, "cannot parse: the file contains a null byte (binary?)"
    try:
        ast.parse(data, filename=str(path))
    except SyntaxError as exc:
        message = exc.msg
        if message.startswith(("(unicode error)", "unknown encoding")):
            message = "cannot decode: " + message.removeprefix("(unicode error)").strip()
        else:
            if any(hint in message for hint in _PYTHON2_HINTS) or _looks_like_python2(data):
                message += " (this looks like Python 2 code, which is not supported)"
            message = f"cannot parse: {message}"
        return max(exc.lineno or 1, 1), max(exc.offset or 1, 1), message
    except (ValueError, UnicodeDecodeError, LookupError) as exc:
        return 1, 1, f"cannot decode: {exc}"
    return 1, 1, f"{error} (Python itself accepts the file; please report this)"


def _looks_like_python2(data: bytes) -> bool:
    statements = rb"^\s*((print|exec)\s+[\"'\w]|raise\s+[\w.]+\s*,)"
    return bool(re.search(statements, data, re.MULTILINE)) or b"<>" in data


def write_checked(result: FileResult) -> str | None:
    """Replace the file by ``result.after`` if it still holds what was read; else say why not."""
    path = result.path
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "the file was deleted during the run; it is not recreated"
    except OSError as exc:
        return f"cannot write: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return "no longer a regular file; not written"
    if not info.st_mode & 0o222 or not os.access(path, os.W_OK):
        return "the file is read-only; not rewritten (make it writable, or preview with --diff)"
    try:
        current = path.read_bytes()
    except OSError as exc:
        return f"cannot read it back before writing: {exc.strerror or exc}; not rewritten"
    if current != result.before and (
        is_notebook(path) or not _same_source(current, result.before)  # JSON: its bytes
    ):
        return "the file changed on disk during the run; not rewritten (run fgi-rewrite again)"
    try:
        write_atomic(path, result.after)
    except OSError as exc:
        return f"cannot write: {exc.strerror or exc}; the file is left unchanged"
    return None


def _same_source(current: bytes, before: bytes) -> bool:
    try:
        return source_module.parse_source(current).bytes == before
    except SourceError:
        return False


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, ``os.replace``; mode (and owner) are kept.

    An interrupted or failed write leaves the original file as it was and no temp file behind.
    """
    info = path.stat()
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".fgi-tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, stat.S_IMODE(info.st_mode))
        if hasattr(os, "chown") and (info.st_uid, info.st_gid) != _owner(temp):
            try:
                os.chown(temp, info.st_uid, info.st_gid)
            except OSError:
                pass  # only root may give a file away; the content is what matters
        os.replace(temp, path)
    except BaseException:
        if os.path.lexists(temp):
            os.unlink(temp)
        raise
    _fsync_directory(path.parent)


def _owner(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_uid, info.st_gid


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
