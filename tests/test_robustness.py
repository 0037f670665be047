"""Bad input, interrupted and failed writes, bytes kept outside rewritten spans, and safety: the
rewrite path never imports torch and never executes the code it reads."""

from __future__ import annotations

import codecs
import errno
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import fgi_rewrite.pipeline.run as run_module
import fgi_rewrite.pipeline.targets as targets_module
from fgi_rewrite import Options, run
from fgi_rewrite.cli import main
from fgi_rewrite.core.codes import Severity
from fgi_rewrite.pipeline.report import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Report,
)
from fgi_rewrite.project.files import write_atomic
from tests.sources import DEFINITION, SURROGATE, USER

REPO = Path(__file__).resolve().parent.parent
CALL = b"SpikeFn.apply"


@pytest.fixture(autouse=True)
def _no_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FGI_REWRITE_VERIFY", "none")


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.endswith(".fgi-tmp")]


def errors(report: Report) -> list[str]:
    return [d.render() for d in report.of(Severity.ERROR)]


# ---- bad input --------------------------------------------------------------------------------

BAD_INPUTS: dict[str, tuple[bytes, str]] = {
    "syntax_error": (b"def f(:\n    pass\n", "1:7: FGI901 cannot parse: invalid syntax"),
    "null_byte": (b"x = 1\x00\n", "FGI901 cannot parse: the file contains a null byte"),
    "undecodable": (b'x = "\xff\xfe"\n', "FGI901 cannot decode: 'utf-8' codec can't decode"),
    "unknown_cookie": (b"# coding: klingon\nx = 1\n", "FGI901 cannot decode: unknown encoding"),
    "bom_and_latin1_cookie": (b"\xef\xbb\xbf# coding: latin-1\nx = 1\n", "FGI901 cannot"),
    "utf16": (codecs.BOM_UTF16_LE + "x = 1\n".encode("utf-16-le"), "UTF-16 encoded"),
    "inconsistent_tabs": (
        b"if True:\n\tx = 1\n        y = 2\n",
        "3:1: FGI901 cannot parse: inconsistent use of tabs",
    ),
    "python2_print": (b'print "hello"\n', "looks like Python 2 code"),
    "python2_raise": (b"import os\nraise ValueError, 'bad'\n", "looks like Python 2 code"),
    "python2_octal": (b"mode = 0777\n", "1:8: FGI901 cannot parse: leading zeros"),
    # latin-1 in a comment, no coding cookie: ``ast.parse`` accepts it, ``python`` does not
    "latin1_comment": (b"# caf\xe9\nx = 1\n", "1:6: FGI901 cannot decode: byte 0xe9 is not UTF-8"),
    "latin1_comment_in_a_function_file": (
        b"import torch\n\n\nclass Step(torch.autograd.Function):  # caf\xe9\n    pass\n",
        "4:44: FGI901 cannot decode: byte 0xe9 is not UTF-8 and the file declares no encoding",
    ),
    "latin1_cookie_wrong": (
        b"# -*- coding: ascii -*-\nimport torch\n\n\nclass Step(torch.autograd.Function):\n"
        b"    pass  # caf\xe9\n",
        "FGI901 cannot",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_reported_and_the_rest_processed(name: str, tmp_path: Path) -> None:
    data, message = BAD_INPUTS[name]
    bad = tmp_path / f"{name}.py"
    bad.write_bytes(data)
    good = tmp_path / "good.py"
    good.write_text(SURROGATE)
    result = invoke(tmp_path)
    assert result.exit_code == EXIT_ERROR
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(bad))]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert bad.read_bytes() == data
    assert CALL not in good.read_bytes()
    assert not temp_files(tmp_path)


def test_empty_file_is_fine(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_bytes(b"")
    (tmp_path / "good.py").write_text(SURROGATE)
    result = invoke(tmp_path)
    assert result.exit_code == EXIT_OK
    assert (tmp_path / "empty.py").read_bytes() == b""


def test_directory_named_like_a_python_file(tmp_path: Path) -> None:
    inner = tmp_path / "x.py"
    inner.mkdir()
    (inner / "snn.py").write_text(SURROGATE)
    assert invoke(tmp_path).exit_code == EXIT_OK
    assert CALL not in (inner / "snn.py").read_bytes()
    (inner / "snn.py").write_text(SURROGATE)
    assert invoke(inner).exit_code == EXIT_OK  # given explicitly: walked as the directory it is
    assert CALL not in (inner / "snn.py").read_bytes()


def test_broken_symlink(tmp_path: Path) -> None:
    link = tmp_path / "broken.py"
    link.symlink_to(tmp_path / "nowhere.py")
    (tmp_path / "good.py").write_text(SURROGATE)
    walked = invoke("-v", tmp_path)  # met while walking: skipped, noted
    assert walked.exit_code == EXIT_OK
    assert f"{link}:1:1: FGI002 broken symbolic link" in walked.stderr
    explicit = invoke(link)  # given explicitly: a usage error naming the link (as a missing path)
    assert explicit.exit_code == EXIT_USAGE
    assert f"'{link}' is a broken symbolic link (to {tmp_path / 'nowhere.py'})" in explicit.stderr
    assert link.is_symlink() and not (tmp_path / "nowhere.py").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
def test_named_pipe_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "good.py").write_text(SURROGATE)
    result = invoke(tmp_path)  # would hang if the pipe were opened
    assert result.exit_code == EXIT_ERROR
    assert f"{tmp_path / 'pipe.py'}:1:1: FGI901 not a regular file" in result.stderr
    assert CALL not in (tmp_path / "good.py").read_bytes()


def test_symlinked_file_is_rewritten_through_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real" / "snn.py"
    real.parent.mkdir()
    real.write_text(SURROGATE)
    link = tmp_path / "link.py"
    link.symlink_to(real)
    assert invoke(link).exit_code == EXIT_OK
    assert link.is_symlink() and CALL not in real.read_bytes()


def outside_project(tmp_path: Path) -> tuple[Path, Path]:
    """A project (with ``.git``) and, beside it, another directory holding a surrogate."""
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "src").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "snn.py").write_text(SURROGATE)
    return project, elsewhere


def test_walking_never_rewrites_a_file_outside_the_project(tmp_path: Path) -> None:
    project, elsewhere = outside_project(tmp_path)
    link = project / "src" / "linked.py"
    link.symlink_to(elsewhere / "snn.py")
    (project / "src" / "own.py").write_text(SURROGATE)
    result = invoke("-v", project)
    assert result.exit_code == EXIT_OK
    assert (elsewhere / "snn.py").read_text() == SURROGATE and link.is_symlink()
    assert CALL not in (project / "src" / "own.py").read_bytes()
    assert f"{link}:1:1: FGI008 symbolic link to {elsewhere / 'snn.py'}" in result.stderr
    assert "1 file scanned" in result.stderr
    assert "FGI008" not in invoke(project).stderr  # a note: shown with -v
    assert invoke(link).exit_code == EXIT_OK  # given explicitly: it counts
    assert CALL not in (elsewhere / "snn.py").read_bytes()


def test_directory_links_are_followed_inside_the_project_only(tmp_path: Path) -> None:
    project, elsewhere = outside_project(tmp_path)
    (project / "lib").mkdir()
    (project / "lib" / "snn.py").write_text(SURROGATE)
    (project / "src" / "lib").symlink_to(project / "lib")  # inside: followed, as black
    (project / "src" / "ext").symlink_to(elsewhere)  # outside: not walked
    (project / "src" / "loop").symlink_to(project / "src")  # a cycle ends
    result = invoke("-v", "--check", project / "src")
    assert result.exit_code == EXIT_CHANGES
    assert result.stderr.count("would rewrite") == 1
    assert f"would rewrite {project / 'lib' / 'snn.py'}" in result.stderr  # its real path
    assert f"{project / 'src' / 'ext'}:1:1: FGI008 symbolic link to {elsewhere}" in result.stderr
    assert invoke(project / "src").exit_code == EXIT_OK
    assert (elsewhere / "snn.py").read_text() == SURROGATE
    assert CALL not in (project / "lib" / "snn.py").read_bytes()


def test_a_link_to_a_project_file_is_rewritten_once(tmp_path: Path) -> None:
    project, _ = outside_project(tmp_path)
    real = project / "src" / "snn.py"
    real.write_text(SURROGATE)
    (project / "alias.py").symlink_to(real)
    result = invoke("--check", project)
    assert result.stderr.count("would rewrite") == 1 and "1 file scanned" in result.stderr
    report = run([project], Options())
    assert [r.path for r in report.changed] == [real]
    assert (project / "alias.py").is_symlink() and CALL not in real.read_bytes()


# ---- files that cannot be written -------------------------------------------------------------


def test_read_only_file_is_reported_and_not_written(tmp_path: Path) -> None:
    locked = tmp_path / "locked.py"
    locked.write_text(SURROGATE)
    locked.chmod(0o444)
    other = tmp_path / "other.py"
    other.write_text(SURROGATE)
    result = invoke(tmp_path)
    assert result.exit_code == EXIT_ERROR
    assert f"{locked}:1:1: FGI902 the file is read-only; not rewritten" in result.stderr
    assert f"rewrote {locked}" not in result.stderr
    assert locked.read_text() == SURROGATE
    assert stat.S_IMODE(locked.stat().st_mode) == 0o444
    assert CALL not in other.read_bytes()
    assert invoke("--check", locked).exit_code == 1  # checking needs no write access
    assert not temp_files(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    target = directory / "snn.py"
    target.write_text(SURROGATE)
    directory.chmod(0o555)
    try:
        result = invoke(target)
        assert result.exit_code == EXIT_ERROR
        assert "FGI902 cannot write" in result.stderr
        assert target.read_text() == SURROGATE
    finally:
        directory.chmod(0o755)


def _around_rewrite(monkeypatch: pytest.MonkeyPatch, after: Callable[[Path], None]) -> None:
    """Call ``after(path)`` once the rewrite of a file is computed, before anything is written."""
    original = targets_module.rewrite_file

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        rewritten = original(*args, **kwargs)
        after(rewritten.result.path)
        return rewritten

    monkeypatch.setattr(targets_module, "rewrite_file", wrapped)


def test_file_deleted_during_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doomed, kept = tmp_path / "a.py", tmp_path / "b.py"
    doomed.write_text(SURROGATE)
    kept.write_text(SURROGATE)
    _around_rewrite(monkeypatch, lambda p: p.unlink() if p == doomed else None)
    report = run([tmp_path], Options())
    assert report.exit_code() == EXIT_ERROR
    assert errors(report) == [
        f"{doomed}:1:1: FGI902 the file was deleted during the run; " "it is not recreated"
    ]
    assert not doomed.exists()
    assert CALL not in kept.read_bytes()
    assert [r.path for r in report.changed] == [kept]


def test_file_changed_during_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.py"
    target.write_text(SURROGATE)
    edited = SURROGATE + "# edited by someone else\n"
    _around_rewrite(monkeypatch, lambda p: p.write_text(edited))
    report = run([tmp_path], Options())
    assert report.exit_code() == EXIT_ERROR
    assert "changed on disk during the run" in errors(report)[0]
    assert target.read_text() == edited


def test_file_deleted_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doomed, kept = tmp_path / "a.py", tmp_path / "b.py"
    doomed.write_text(SURROGATE)
    kept.write_text(SURROGATE)
    original = run_module.discover

    def discover_then_delete(*args: Any, **kwargs: Any) -> Any:
        fileset = original(*args, **kwargs)
        doomed.unlink()
        return fileset

    monkeypatch.setattr(run_module, "discover", discover_then_delete)
    report = run([tmp_path], Options())
    assert report.exit_code() == EXIT_ERROR
    (message,) = errors(report)
    assert message == f"{doomed}:1:1: FGI901 no such file (deleted during the run?)"
    assert CALL not in kept.read_bytes()


# ---- interrupted and failed writes ------------------------------------------------------------


def test_interrupted_replace_leaves_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "snn.py"
    target.write_text(SURROGATE)

    def interrupted(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run([target], Options())
    assert target.read_text() == SURROGATE
    assert not temp_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snn.py"]
    result = invoke(target)  # through the CLI: exit 130, same guarantees
    assert result.exit_code == EXIT_INTERRUPTED
    assert target.read_text() == SURROGATE and not temp_files(tmp_path)


class _HalfWriter:
    """A file object that writes half of what it is given, then fails (a full disk)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def __enter__(self) -> _HalfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def write(self, data: bytes) -> int:
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


def test_failed_write_midway_leaves_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text(SURROGATE)
    second.write_text(SURROGATE)
    real_fdopen = os.fdopen
    calls: list[int] = []

    def failing_fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        calls.append(fd)
        handle = real_fdopen(fd, *args, **kwargs)
        return _HalfWriter(handle) if len(calls) == 1 else handle

    monkeypatch.setattr(os, "fdopen", failing_fdopen)
    report = run([tmp_path], Options())
    assert report.exit_code() == EXIT_ERROR
    assert errors(report) == [
        f"{first}:1:1: FGI902 cannot write: No space left on device; " "the file is left unchanged"
    ]
    assert first.read_text() == SURROGATE  # untouched, not truncated
    assert CALL not in second.read_bytes()  # the next file is still written
    assert not temp_files(tmp_path)


def test_write_atomic_keeps_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "snn.py"
    target.write_text("old\n")
    target.chmod(0o750)
    write_atomic(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert not temp_files(tmp_path)


# ---- internal errors stay local ---------------------------------------------------------------


def test_internal_error_in_one_file_spares_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad, good = tmp_path / "a.py", tmp_path / "b.py"
    bad.write_text(SURROGATE)
    good.write_text(SURROGATE)
    original = targets_module.rewrite_file

    def failing(index: Any, context: Any, module: Any) -> Any:
        if module.path == bad:
            raise RuntimeError("boom")
        return original(index, context, module)

    monkeypatch.setattr(targets_module, "rewrite_file", failing)
    report = run([tmp_path], Options())
    assert report.exit_code() == EXIT_ERROR
    assert report.internal_errors == [
        f"{bad}: rewriting: RuntimeError: boom; the file is left unchanged"
    ]
    assert bad.read_text() == SURROGATE
    assert CALL not in good.read_bytes()


def test_internal_error_in_one_analysis_spares_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.py").write_text(SURROGATE)
    other = SURROGATE.replace("SpikeFn", "OtherFn")
    (tmp_path / "b.py").write_text(other)
    original = targets_module.analyze

    def failing(index: Any, info: Any) -> Any:
        if info.name == "SpikeFn":
            raise ValueError("cannot cope")
        return original(index, info)

    monkeypatch.setattr(targets_module, "analyze", failing)
    report = run([tmp_path], Options())
    assert report.exit_code() == EXIT_ERROR
    assert "analyzing a.SpikeFn: ValueError: cannot cope" in report.internal_errors[0]
    assert (tmp_path / "a.py").read_text() == SURROGATE
    assert b"OtherFn.apply" not in (tmp_path / "b.py").read_bytes()


# ---- bytes kept outside the rewritten spans ---------------------------------------------------

BOM = codecs.BOM_UTF8
COOKIE = b"# -*- coding: latin-1 -*-\n"


def _variants() -> dict[str, bytes]:
    lf = SURROGATE.encode()
    latin1 = COOKIE + lf.replace(b"Spiking step", b"Spiking step \xe9t\xe9")
    tabs = lf.replace(b"def fire(v):\n    return", b"def fire(v):\n\treturn")
    return {
        "lf": lf,
        "crlf": lf.replace(b"\n", b"\r\n"),
        "bom": BOM + lf,
        "bom_crlf": BOM + lf.replace(b"\n", b"\r\n"),
        "latin1_cookie": latin1,
        "latin1_cookie_crlf": latin1.replace(b"\n", b"\r\n"),
        "tabs": tabs,
        "tabs_crlf": tabs.replace(b"\n", b"\r\n"),
    }


VARIANTS = _variants()


def _is_subsequence(needles: list[bytes], haystack: list[bytes]) -> bool:
    it = iter(haystack)
    return all(any(line == candidate for candidate in it) for line in needles)


def _check_bytes_kept(before: bytes, after: bytes) -> None:
    newline = b"\r\n" if b"\r\n" in before else b"\n"
    lines = before.splitlines(keepends=True)
    call = next(i for i, line in enumerate(lines) if CALL in line)
    assert after != before and CALL not in after
    # Every line but the call site's is kept byte for byte, in order (BOM and cookie included).
    assert after.startswith(b"".join(lines[:1]))
    assert _is_subsequence(lines[:call] + lines[call + 1 :], after.splitlines(keepends=True))
    # Every line written, rewritten ones included, uses the file's newline style.
    if newline == b"\r\n":
        assert after.count(b"\n") == after.count(b"\r\n")
    else:
        assert b"\r" not in after
    compile(after, "rewritten.py", "exec", dont_inherit=True)  # compiled only, never run


@pytest.mark.parametrize("style", ["inline", "function"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_bytes_are_kept_outside_rewritten_spans(variant: str, style: str, tmp_path: Path) -> None:
    before = VARIANTS[variant]
    target = tmp_path / "snn.py"
    target.write_bytes(before)
    report = run([target], Options(style=style))
    assert report.exit_code() == EXIT_OK
    after = target.read_bytes()
    _check_bytes_kept(before, after)
    if style == "inline":  # the statements before the call are untouched: a pure prefix
        head = before[: before.index(b"def fire")]
        assert after.startswith(head)
    if b"\t" in before:
        body = after[after.index(b"def fire") :]
        assert all(line.startswith(b"\t") for line in body.splitlines()[1:] if line.strip())


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_added_import_uses_the_file_newline(newline: bytes, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "surrogates.py").write_bytes(DEFINITION.encode().replace(b"\n", newline))
    user = tmp_path / "model.py"
    before = BOM + USER.encode().replace(b"\n", newline)
    user.write_bytes(before)
    assert run([user], Options()).exit_code() == EXIT_OK
    after = user.read_bytes()
    assert after.startswith(BOM) and b"import torch" + newline in after
    _check_bytes_kept(before, after)


# ---- safety: no torch, no user code executed --------------------------------------------------

SIDE_EFFECT = """\
import pathlib
pathlib.Path({marker!r}).write_text("executed")
"""


def _side_effect_project(root: Path, marker: Path) -> None:
    package = root / "pkg"
    package.mkdir(parents=True)
    effect = SIDE_EFFECT.format(marker=str(marker))
    (root / "pyproject.toml").write_text("[project]\nname = 'pkg'\n")
    (package / "__init__.py").write_text(effect)
    (package / "surrogates.py").write_text(effect + DEFINITION)
    (package / "model.py").write_text(effect + USER.replace("from surrogates", "from .surrogates"))
    (root / "setup.py").write_text(effect)
    (root / "conftest.py").write_text(effect)


def _fresh_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO), "FGI_REWRITE_VERIFY": "none"},
    )


def test_rewrite_path_never_imports_torch_nor_runs_user_code(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    project = tmp_path / "project"
    _side_effect_project(project, marker)
    done = _fresh_python(
        f"""
        import sys
        from pathlib import Path
        from fgi_rewrite import Options, run
        report = run([Path({str(project)!r})], Options())
        assert report.exit_code() == 0, report.summary(True)
        assert report.call_sites == 1, report.summary(True)
        leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "pkg")))
        print("LEAKED", leaked)
        """,
        cwd=project,
    )
    assert done.returncode == 0, done.stderr
    assert "LEAKED []" in done.stdout
    assert not marker.exists()
    assert b"SpikeFn.apply" not in (project / "pkg" / "model.py").read_bytes()


def test_cli_never_imports_torch_nor_runs_user_code(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    project = tmp_path / "project"
    _side_effect_project(project, marker)
    done = _fresh_python(
        """
        import sys
        from fgi_rewrite.cli import main
        try:
            main(["--verify", "none", "--diff", "."])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        print("TORCH", "torch" in sys.modules)
        """,
        cwd=project,
    )
    assert done.returncode == 0, done.stderr
    assert "TORCH False" in done.stdout
    assert "+++" in done.stdout
    assert not marker.exists()


def test_verification_does_not_run_user_code(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    marker = tmp_path / "marker"
    project = tmp_path / "project"
    _side_effect_project(project, marker)
    result = subprocess.run(
        [sys.executable, "-m", "fgi_rewrite", "--verify", "grad", "."],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert b"SpikeFn.apply" not in (project / "pkg" / "model.py").read_bytes()
