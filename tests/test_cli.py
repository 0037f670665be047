"""The command line: every flag, every exit code, stdin, zero files, excludes, configuration,
JSON output, --explain and colors; through click's runner and as a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from fgi_rewrite import __version__, cli
from fgi_rewrite.cli import configurable_keys, main, use_color
from fgi_rewrite.core.codes import ALL_CODES
from fgi_rewrite.pipeline.report import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
)
from fgi_rewrite.project.discover import DEFAULT_EXCLUDE
from fgi_rewrite.project.gitignore import GitIgnoreMatcher
from tests.sources import DEFINITION, PLAIN, REFUSED, SURROGATE, USER

REPO = Path(__file__).resolve().parent.parent
ANSI = "\033["


@pytest.fixture(autouse=True)
def _no_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the CLI: skip the (torch) verification subprocess, which has its
    own tests."""
    monkeypatch.setenv("FGI_REWRITE_VERIFY", "none")


def invoke(*args: str | Path, input: bytes | str | None = None, cwd: Path | None = None) -> Result:
    runner = CliRunner()
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)
    finally:
        os.chdir(old)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }


def subprocess_cli(
    *args: str, cwd: Path, input: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fgi_rewrite", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        env=environment,
        timeout=120,
        check=False,
    )


# ---- --version, --help, --explain ------------------------------------------------------------


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == EXIT_OK
    assert __version__ in result.stdout


def test_help_lists_every_option() -> None:
    result = invoke("--help")
    assert result.exit_code == EXIT_OK
    for option in (
        "--diff",
        "--check",
        "--style",
        "--format",
        "--color",
        "--no-color",
        "--exclude",
        "--extend-exclude",
        "--force-exclude",
        "--stdin-filename",
        "--jobs",
        "--config",
        "--quiet",
        "--verbose",
        "--explain",
        "--version",
    ):
        assert option in result.stdout


@pytest.mark.parametrize("code", sorted(ALL_CODES))
def test_every_code_has_an_explanation_with_example_and_fix(code: str) -> None:
    doc = ALL_CODES[code].__doc__ or ""
    assert len(doc.strip()) > 40, f"{code} has no explanation"
    assert "Example:" in doc, f"{code} has no example"
    assert "Fix:" in doc, f"{code} says nothing about a fix"
    result = invoke("--explain", code.lower())
    assert result.exit_code == EXIT_OK
    assert result.stdout.startswith(f"{code} (")
    assert "Example:" in result.stdout and "Fix:" in result.stdout


def test_explain_renders_rst_literals_for_a_terminal() -> None:
    result = invoke("--explain", "FGI302")
    assert "``" not in result.stdout
    assert "`torch.jit.script`" in result.stdout and "`--allow-unscriptable`" in result.stdout


def test_explain_unknown_code_is_a_usage_error() -> None:
    result = invoke("--explain", "FGI999")
    assert result.exit_code == EXIT_USAGE
    assert "unknown code" in result.stderr


# ---- modes and exit codes ---------------------------------------------------------------------


def test_write_mode_rewrites_in_place(tmp_path: Path) -> None:
    target = write(tmp_path / "snn.py", SURROGATE)
    result = invoke(target)
    assert result.exit_code == EXIT_OK
    assert "SpikeFn.apply" not in target.read_text()
    assert f"rewrote {target}" in result.stderr
    assert "1 call site rewritten in 1 file" in result.stderr
    again = invoke(target)
    assert again.exit_code == EXIT_OK
    assert "0 call sites rewritten" in again.stderr


def test_check_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    target = write(tmp_path / "snn.py", SURROGATE)
    result = invoke("--check", target)
    assert result.exit_code == EXIT_CHANGES
    assert target.read_text() == SURROGATE
    assert f"would rewrite {target}" in result.stderr
    assert result.stdout == ""


def test_check_passes_on_clean_code(tmp_path: Path) -> None:
    write(tmp_path / "plain.py", PLAIN)
    result = invoke("--check", tmp_path)
    assert result.exit_code == EXIT_OK


def test_check_fails_on_a_refused_surrogate(tmp_path: Path) -> None:
    write(tmp_path / "norm.py", REFUSED)
    result = invoke("--check", tmp_path)
    assert result.exit_code == EXIT_CHANGES
    assert "FGI101" in result.stderr
    assert invoke(tmp_path).exit_code == EXIT_OK  # without --check a refusal is only reported


def test_a_surrogate_without_call_site_is_a_note(tmp_path: Path) -> None:
    write(tmp_path / "surrogates.py", DEFINITION)
    result = invoke("--check", tmp_path)
    assert result.exit_code == EXIT_OK and "FGI003" not in result.stderr
    verbose = invoke("-v", "--check", tmp_path)
    assert "FGI003 SpikeFn: no call site to rewrite in the files checked" in verbose.stderr
    write(tmp_path / "user.py", USER)
    assert "FGI003" not in invoke("-v", "--check", tmp_path).stderr


def test_diff_prints_a_unified_diff_sorted_by_path(tmp_path: Path) -> None:
    b = write(tmp_path / "b.py", SURROGATE)
    a = write(tmp_path / "a.py", SURROGATE)
    before = tree(tmp_path)
    result = invoke("--diff", tmp_path)
    assert result.exit_code == EXIT_OK
    assert tree(tmp_path) == before
    out = result.stdout
    assert out.index(f"--- {a}") < out.index(f"--- {b}")
    assert "-    return SpikeFn.apply(v - 1.0)" in out
    assert ANSI not in out  # not a terminal
    assert invoke("--diff", "--check", tmp_path).exit_code == EXIT_CHANGES


def git_repository(root: Path) -> Path:
    """A committed git repository holding a surrogate at the top and one in a subdirectory."""
    write(root / "top.py", SURROGATE)
    write(root / "src" / "pkg" / "snn.py", SURROGATE)
    for command in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"],
    ):
        subprocess.run(["git", *command], cwd=root, check=True, capture_output=True)
    return root


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.parametrize("apply", ["git apply", "patch -p0", "patch -p1"])
def test_diff_of_a_relative_path_is_a_patch_that_applies(tmp_path: Path, apply: str) -> None:
    """``fgi-rewrite --diff . > x.patch && git apply x.patch`` (issue 18, item 5)."""
    if apply.startswith("patch") and shutil.which("patch") is None:
        pytest.skip("needs patch")
    repo = git_repository(tmp_path / "repo")
    written = git_repository(tmp_path / "written")
    assert subprocess_cli(".", cwd=written).returncode == 0
    diff = subprocess_cli("--diff", ".", cwd=repo)
    assert diff.returncode == 0, diff.stderr
    headers = [line for line in diff.stdout.decode().splitlines() if line[:4] in ("--- ", "+++ ")]
    assert [h.split("\t")[0] for h in headers] == [
        "--- ./src/pkg/snn.py",
        "+++ ./src/pkg/snn.py",
        "--- ./top.py",
        "+++ ./top.py",
    ]
    inner = subprocess_cli("--diff", "pkg", cwd=repo / "src")  # from a subdirectory
    assert b"--- ./pkg/snn.py\t(original)" in inner.stdout
    patch = tmp_path / "x.patch"
    patch.write_bytes(diff.stdout)
    command = [*apply.split(), *(["-i"] if apply.startswith("patch") else []), str(patch)]
    done = subprocess.run(command, cwd=repo, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    assert tree(repo) == tree(written)


def test_diff_stdout_is_the_patch_alone_and_verdicts_go_to_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    monkeypatch.delenv("FGI_REWRITE_VERIFY")
    write(tmp_path / "a.py", SURROGATE)
    write(tmp_path / "b.py", SURROGATE)
    for quiet in ((), ("-q",)):
        result = invoke("--diff", "--verify", "grad", *quiet, ".", cwd=tmp_path)
        assert result.exit_code == EXIT_OK
        lines = result.stdout.splitlines()
        assert lines[0] == "--- ./a.py\t(original)" and "--- ./b.py\t(original)" in lines
        assert all(line[:1] in ("-", "+", "@", " ", "\\") for line in lines), result.stdout
        assert "verify" not in result.stdout
        assert ("verify SpikeFn: grad ✓" in result.stderr) is not bool(quiet)


def test_paths_are_shown_as_given(tmp_path: Path) -> None:
    """Relative paths stay relative to the current directory in every message and in JSON;
    absolute ones stay absolute."""
    write(tmp_path / "src" / "snn.py", SURROGATE)
    write(tmp_path / "src" / "norm.py", REFUSED)
    relative = invoke("--check", "src", cwd=tmp_path)
    assert "would rewrite src/snn.py" in relative.stderr
    assert "src/norm.py:4:1: FGI101" in relative.stderr and str(tmp_path) not in relative.stderr
    payload = json.loads(invoke("--check", "--format", "json", "src", cwd=tmp_path).stdout)
    paths = {f["path"] for f in payload["functions"]} | {d["path"] for d in payload["diagnostics"]}
    assert paths == {"src/snn.py", "src/norm.py"}
    (entry,) = payload["files"]
    assert entry["path"] == "src/snn.py" and entry["call_sites"][0]["path"] == "src/snn.py"
    inside = invoke("--check", ".", cwd=tmp_path / "src")
    assert "would rewrite snn.py" in inside.stderr
    absolute = invoke("--check", tmp_path / "src", cwd=tmp_path)
    assert f"would rewrite {tmp_path / 'src' / 'snn.py'}" in absolute.stderr


def test_style_function_generates_one_function(tmp_path: Path) -> None:
    target = write(tmp_path / "snn.py", SURROGATE)
    assert invoke("--style", "function", target).exit_code == EXIT_OK
    assert "def spike_fn_fgi(" in target.read_text()
    assert invoke("--style", "bogus", target).exit_code == EXIT_USAGE


def test_unreadable_file_exits_123_and_others_are_still_rewritten(tmp_path: Path) -> None:
    write(tmp_path / "broken.py", "def f(:\n")
    good = write(tmp_path / "good.py", SURROGATE)
    result = invoke(tmp_path)
    assert result.exit_code == EXIT_ERROR
    assert f"{tmp_path / 'broken.py'}:1:7: FGI901 cannot parse" in result.stderr
    assert "SpikeFn.apply" not in good.read_text()


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    """As black and ruff: exit 2 before anything runs, so nothing else is written either."""
    target = write(tmp_path / "snn.py", SURROGATE)
    result = invoke(target, tmp_path / "nope.py")
    assert result.exit_code == EXIT_USAGE
    assert f"'{tmp_path / 'nope.py'}': no such file or directory" in result.stderr
    assert target.read_text() == SURROGATE
    relative = invoke("--check", "nope.py", cwd=tmp_path)
    assert relative.exit_code == EXIT_USAGE and "'nope.py': no such file" in relative.stderr


def test_quiet_and_verbose(tmp_path: Path) -> None:
    write(tmp_path / "snn.py", SURROGATE)
    write(tmp_path / "gen.py", "# @generated by a tool\n" + SURROGATE)
    quiet = invoke("-q", "--check", tmp_path)
    assert quiet.exit_code == EXIT_CHANGES and quiet.stderr == ""
    verbose = invoke("-v", "--check", tmp_path)
    assert "FGI002 marked @generated" in verbose.stderr
    assert "FGI002" not in invoke("--check", tmp_path).stderr


def test_jobs_is_validated(tmp_path: Path) -> None:
    target = write(tmp_path / "snn.py", SURROGATE)
    result = invoke("--jobs", "4", "-v", "--check", target)
    assert result.exit_code == EXIT_CHANGES
    assert "reserved" not in result.stderr
    assert invoke("-j", "0", target).exit_code == EXIT_USAGE
    assert invoke("-j", "two", target).exit_code == EXIT_USAGE


def test_unknown_option_is_a_usage_error() -> None:
    assert invoke("--frobnicate").exit_code == EXIT_USAGE


def test_internal_error_exits_123(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "run", boom)
    result = invoke(write(tmp_path / "snn.py", SURROGATE))
    assert result.exit_code == EXIT_ERROR
    assert "internal error: RuntimeError: boom" in result.stderr


def test_interrupt_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run", interrupted)
    result = invoke(write(tmp_path / "snn.py", SURROGATE))
    assert result.exit_code == EXIT_INTERRUPTED
    assert "Interrupted" in result.stderr


# ---- zero files -------------------------------------------------------------------------------


def test_no_paths_is_a_normal_run(tmp_path: Path) -> None:
    result = invoke(cwd=tmp_path)
    assert result.exit_code == EXIT_OK
    assert "nothing to do" in result.stderr
    payload = json.loads(invoke("--format", "json", cwd=tmp_path).stdout)
    assert payload["summary"]["files_scanned"] == 0 and payload["exit_code"] == 0


def test_empty_directory_is_a_normal_run(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for flags in ((), ("--check",), ("--diff",)):
        result = invoke(*flags, tmp_path / "empty")
        assert result.exit_code == EXIT_OK
        assert "0 files scanned" in result.stderr


def test_directory_with_only_excluded_files(tmp_path: Path) -> None:
    write(tmp_path / "build" / "snn.py", SURROGATE)
    result = invoke("--check", tmp_path)
    assert result.exit_code == EXIT_OK
    assert "0 files scanned" in result.stderr


# ---- stdin ------------------------------------------------------------------------------------


def test_stdin_is_rewritten_to_stdout(tmp_path: Path) -> None:
    result = invoke("-", input=SURROGATE, cwd=tmp_path)
    assert result.exit_code == EXIT_OK
    assert "SpikeFn.apply" not in result.stdout
    assert "def fire(v):" in result.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written to disk


def test_stdin_unchanged_source_is_echoed(tmp_path: Path) -> None:
    result = invoke("-", input=PLAIN, cwd=tmp_path)
    assert result.exit_code == EXIT_OK
    assert result.stdout == PLAIN


def test_stdin_bytes_are_kept(tmp_path: Path) -> None:
    source = ("# -*- coding: latin-1 -*-\r\n" + SURROGATE.replace("\n", "\r\n")).encode("latin-1")
    source = source.replace(b"Spiking", b"Spiking \xe9")
    result = invoke("-", input=source, cwd=tmp_path)
    assert result.exit_code == EXIT_OK
    out = result.stdout_bytes
    assert out.startswith(b'# -*- coding: latin-1 -*-\r\n"""Spiking \xe9')
    assert out.count(b"\n") == out.count(b"\r\n") and b"SpikeFn.apply" not in out


def test_stdin_check_and_diff(tmp_path: Path) -> None:
    check = invoke("--check", "-", input=SURROGATE, cwd=tmp_path)
    assert check.exit_code == EXIT_CHANGES and check.stdout == ""
    assert invoke("--check", "-", input=PLAIN, cwd=tmp_path).exit_code == EXIT_OK
    diff = invoke("--diff", "-", input=SURROGATE, cwd=tmp_path)
    assert diff.exit_code == EXIT_OK
    assert diff.stdout.startswith("--- -\t(original)\n+++ -\t(rewritten)\n")


def test_stdin_syntax_error_echoes_source_and_exits_123(tmp_path: Path) -> None:
    result = invoke("-", "--stdin-filename", "pkg/bad.py", input="def f(:\n", cwd=tmp_path)
    assert result.exit_code == EXIT_ERROR
    assert result.stdout == "def f(:\n"
    assert "pkg/bad.py:1:7: FGI901 cannot parse" in result.stderr


def test_stdin_filename_places_the_source_in_its_project(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n")
    write(tmp_path / "surrogates.py", DEFINITION)
    on_disk = write(tmp_path / "model.py", "# stale copy on disk\n")
    result = invoke("-", "--stdin-filename", "model.py", input=USER, cwd=tmp_path)
    assert result.exit_code == EXIT_OK, result.stderr
    assert "SpikeFn.apply" not in result.stdout  # resolved through the project's other file
    assert on_disk.read_text() == "# stale copy on disk\n"
    without = invoke("-", input=USER, cwd=tmp_path)
    assert "SpikeFn.apply" in without.stdout  # no project context without --stdin-filename


def test_stdin_force_exclude_echoes_unchanged(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "")  # the project root: regexes match paths below it
    result = invoke(
        "-",
        "--stdin-filename",
        "gen/x.py",
        "--force-exclude",
        "^/gen/",
        input=SURROGATE,
        cwd=tmp_path,
    )
    assert result.exit_code == EXIT_OK
    assert result.stdout == SURROGATE


def test_stdin_filename_without_dash_is_a_usage_error(tmp_path: Path) -> None:
    assert invoke("--stdin-filename", "x.py", tmp_path).exit_code == EXIT_USAGE


def test_stdin_json_needs_check_or_diff(tmp_path: Path) -> None:
    assert invoke("--format", "json", "-", input=SURROGATE, cwd=tmp_path).exit_code == EXIT_USAGE
    result = invoke("--format", "json", "--check", "-", input=SURROGATE, cwd=tmp_path)
    assert result.exit_code == EXIT_CHANGES
    assert json.loads(result.stdout)["files"][0]["path"] == "-"


def test_stdin_together_with_files(tmp_path: Path) -> None:
    target = write(tmp_path / "snn.py", SURROGATE)
    result = invoke("-", target, input=SURROGATE, cwd=tmp_path)
    assert result.exit_code == EXIT_OK
    assert "SpikeFn.apply" not in target.read_text()
    assert "SpikeFn.apply" not in result.stdout
    assert f"rewrote {target}" in result.stderr


# ---- discovery: excludes, .gitignore, @generated ----------------------------------------------


def make_project(root: Path) -> None:
    write(root / "pyproject.toml", "[project]\nname = 'demo'\n")
    for relative in (
        "src/snn.py",
        "build/snn.py",
        ".venv/lib/snn.py",
        "vendor/snn.py",
        "tests/test_snn.py",
        "pkg.egg-info/snn.py",
    ):
        write(root / relative, SURROGATE)


def changed_files(result: Result) -> set[str]:
    return {
        line.split()[-1] for line in result.stderr.splitlines() if line.startswith("would rewrite")
    }


def test_default_excludes(tmp_path: Path) -> None:
    make_project(tmp_path)
    result = invoke("--check", tmp_path)
    assert changed_files(result) == {
        str(tmp_path / "src/snn.py"),
        str(tmp_path / "vendor/snn.py"),
        str(tmp_path / "tests/test_snn.py"),
    }


def test_exclude_replaces_the_defaults(tmp_path: Path) -> None:
    make_project(tmp_path)
    result = invoke("--check", "--exclude", "/(vendor|tests)/", tmp_path)
    files = changed_files(result)
    assert str(tmp_path / "build/snn.py") in files and str(tmp_path / ".venv/lib/snn.py") in files
    assert str(tmp_path / "vendor/snn.py") not in files


def test_extend_exclude_adds_to_the_defaults(tmp_path: Path) -> None:
    make_project(tmp_path)
    result = invoke("--check", "--extend-exclude", "^/vendor/", tmp_path)
    assert changed_files(result) == {
        str(tmp_path / "src/snn.py"),
        str(tmp_path / "tests/test_snn.py"),
    }


def test_explicit_files_ignore_exclude_but_not_force_exclude(tmp_path: Path) -> None:
    make_project(tmp_path)
    explicit = tmp_path / "build/snn.py"
    assert invoke("--check", explicit).exit_code == EXIT_CHANGES
    forced = invoke("--check", "--force-exclude", "/build/", explicit)
    assert forced.exit_code == EXIT_OK
    assert "0 files scanned" in forced.stderr
    walked = invoke("--check", "--force-exclude", "^/tests/", tmp_path)
    assert str(tmp_path / "tests/test_snn.py") not in changed_files(walked)


def test_readme_documents_the_default_exclude() -> None:
    assert f"`{DEFAULT_EXCLUDE}`" in (REPO / "README.md").read_text()


def test_bad_regex_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("--exclude", "(", tmp_path)
    assert result.exit_code == EXIT_USAGE
    assert "not a valid regular expression" in result.stderr


def test_multiline_regex_is_verbose(tmp_path: Path) -> None:
    make_project(tmp_path)
    result = invoke(
        "--check", "--extend-exclude", "^/vendor/  # vendored code\n|^/tests/\n", tmp_path
    )
    assert changed_files(result) == {str(tmp_path / "src/snn.py")}


@pytest.mark.parametrize("git", [True, False], ids=["git", "no-git"])
def test_gitignore_is_honored(tmp_path: Path, git: bool) -> None:
    if git and shutil.which("git") is None:
        pytest.skip("git is not installed")
    make_project(tmp_path)
    if git:
        subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    write(tmp_path / ".gitignore", "vendor/\n*_snn.py\n!keep_snn.py\n")
    write(tmp_path / "src/keep_snn.py", SURROGATE)
    write(tmp_path / "src/drop_snn.py", SURROGATE)
    write(tmp_path / "src/nested/.gitignore", "local.py\n")
    write(tmp_path / "src/nested/local.py", SURROGATE)
    result = invoke("--check", tmp_path)
    assert changed_files(result) == {
        str(tmp_path / "src/snn.py"),
        str(tmp_path / "src/keep_snn.py"),
    }
    # A file given explicitly is processed even when ignored.
    assert invoke("--check", tmp_path / "vendor/snn.py").exit_code == EXIT_CHANGES


@pytest.mark.parametrize(
    ("patterns", "path", "is_dir", "ignored"),
    [
        ("*.py\n", "a/b/c.py", False, True),
        ("/c.py\n", "a/c.py", False, False),  # anchored to the .gitignore's directory
        ("/c.py\n", "c.py", False, True),
        ("a/c.py\n", "a/c.py", False, True),
        ("a/c.py\n", "x/a/c.py", False, False),
        ("build/\n", "build", True, True),
        ("build/\n", "build", False, False),  # directories only
        ("build/\n", "build/x.py", False, True),  # below an ignored directory
        ("*.py\n!keep.py\n", "keep.py", False, False),
        ("!keep.py\n*.py\n", "keep.py", False, True),  # the last match wins
        ("**/gen/*.py\n", "a/b/gen/x.py", False, True),
        ("docs/**\n", "docs/a/b.py", False, True),
        ("a/**/z.py\n", "a/z.py", False, True),
        ("a/**/z.py\n", "a/b/c/z.py", False, True),
        ("x?.py\n", "xy.py", False, True),
        ("x[0-9].py\n", "x5.py", False, True),
        ("x[!0-9].py\n", "x5.py", False, False),
        ("\\#hash.py\n", "#hash.py", False, True),
        ("# comment\n\n", "comment", False, False),
    ],
)
def test_gitignore_matcher(
    tmp_path: Path, patterns: str, path: str, is_dir: bool, ignored: bool
) -> None:
    write(tmp_path / ".gitignore", patterns)
    matcher = GitIgnoreMatcher(tmp_path)
    assert matcher.ignored(tmp_path / path, is_dir) is ignored


def test_generated_files_are_skipped(tmp_path: Path) -> None:
    generated = write(tmp_path / "gen.py", "# This file is @generated by codegen.\n" + SURROGATE)
    late = write(tmp_path / "late.py", SURROGATE + "\n# @generated marker far below the header\n")
    result = invoke(tmp_path)
    assert result.exit_code == EXIT_OK
    assert "SpikeFn.apply" in generated.read_text()
    assert "SpikeFn.apply" not in late.read_text()
    assert invoke("--check", generated).exit_code == EXIT_OK  # also when given explicitly


# ---- configuration ----------------------------------------------------------------------------


def test_every_long_option_has_a_config_key() -> None:
    keys = set(configurable_keys(main))
    expected = {
        "diff",
        "check",
        "style",
        "format",
        "color",
        "exclude",
        "extend-exclude",
        "force-exclude",
        "jobs",
        "quiet",
        "verbose",
    }
    assert expected <= keys
    assert not keys & {"help", "version", "explain", "config", "stdin-filename"}


def config_project(root: Path, table: str) -> Path:
    write(root / "pyproject.toml", f"[project]\nname = 'demo'\n\n[tool.fgi-rewrite]\n{table}")
    return write(root / "src" / "snn.py", SURROGATE)


def test_config_sets_options(tmp_path: Path) -> None:
    target = config_project(tmp_path, 'check = true\nstyle = "function"\n')
    result = invoke(tmp_path / "src")
    assert result.exit_code == EXIT_CHANGES
    assert target.read_text() == SURROGATE
    written = invoke("--diff", target)
    assert "spike_fn_fgi" in written.stdout


def test_command_line_wins_over_config(tmp_path: Path) -> None:
    target = config_project(tmp_path, 'style = "function"\nformat = "json"\n')
    result = invoke("--style", "inline", "--format", "text", "--diff", target)
    assert "spike_fn_fgi" not in result.stdout
    assert not result.stdout.startswith("{")


def test_config_every_key_is_accepted(tmp_path: Path) -> None:
    target = config_project(
        tmp_path,
        """\
diff = true
check = false
style = "inline"
format = "json"
color = false
exclude = "/(build|dist)/"
extend-exclude = "^/vendor/"
force_exclude = "^/generated/"
jobs = 2
quiet = false
verbose = false
""",
    )
    result = invoke(target)
    assert result.exit_code == EXIT_OK
    payload = json.loads(result.stdout)
    assert payload["mode"] == "diff" and payload["files"][0]["diff"]


def test_config_excludes_apply(tmp_path: Path) -> None:
    config_project(tmp_path, 'extend-exclude = "^/src/"\n')
    write(tmp_path / "other" / "snn.py", SURROGATE)
    assert changed_files(invoke("--check", tmp_path)) == {str(tmp_path / "other/snn.py")}


def test_nearest_pyproject_with_a_table_wins(tmp_path: Path) -> None:
    config_project(tmp_path, "check = true\n")
    write(tmp_path / "sub" / "pyproject.toml", "[project]\nname = 'sub'\n")  # no table: skipped
    inner = write(tmp_path / "sub" / "snn.py", SURROGATE)
    assert invoke(inner).exit_code == EXIT_CHANGES
    write(tmp_path / "sub" / "pyproject.toml", "[tool.fgi-rewrite]\ncheck = false\n")
    assert invoke(inner).exit_code == EXIT_OK


def test_config_lookup_stops_at_the_repository_root(tmp_path: Path) -> None:
    config_project(tmp_path, "check = true\n")
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    inner = write(tmp_path / "repo" / "snn.py", SURROGATE)
    assert invoke(inner).exit_code == EXIT_OK  # the outer config is not this project's


def test_config_for_stdin_comes_from_stdin_filename(tmp_path: Path) -> None:
    config_project(tmp_path, "check = true\n")
    elsewhere = tmp_path.parent / f"{tmp_path.name}-cwd"
    elsewhere.mkdir()
    result = invoke(
        "-", "--stdin-filename", str(tmp_path / "src" / "new.py"), input=SURROGATE, cwd=elsewhere
    )
    assert result.exit_code == EXIT_CHANGES and result.stdout == ""


def test_explicit_config_file(tmp_path: Path) -> None:
    target = write(tmp_path / "snn.py", SURROGATE)
    config = write(tmp_path / "fgi.toml", "check = true\n")
    assert invoke("--config", config, target).exit_code == EXIT_CHANGES
    other = write(tmp_path / "other" / "pyproject.toml", "[tool.fgi-rewrite]\ndiff = true\n")
    assert "+++" in invoke("--config", other, target).stdout
    assert invoke("--config", tmp_path / "missing.toml", target).exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("frobnicate = 1\n", "unknown key 'frobnicate'"),
        ("explain = 'FGI101'\n", "unknown key 'explain'"),
        ('style = "sideways"\n', "bad value for 'style'"),
        ('jobs = "many"\n', "bad value for 'jobs'"),
        ('exclude = "("\n', "bad value for 'exclude'"),
        ("check = [\n", "cannot read"),
        # TOML types are checked before click converts a value (issue 18, item 6).
        ("check = 1\n", "'check' in [tool.fgi-rewrite]: expected true or false, got 1 (an"),
        ('quiet = "yes"\n', "'quiet' in [tool.fgi-rewrite]: expected true or false, got \"yes\""),
        ("color = 0\n", "'color' in [tool.fgi-rewrite]: expected true or false, got 0"),
        ("jobs = 2.5\n", "'jobs' in [tool.fgi-rewrite]: expected an integer, got 2.5 (a float)"),
        ("jobs = 1e9\n", "'jobs' in [tool.fgi-rewrite]: expected an integer, got 1000000000.0"),
        ("jobs = true\n", "'jobs' in [tool.fgi-rewrite]: expected an integer, got true"),
        ("jobs = 0\n", "bad value for 'jobs'"),
        ("style = 3\n", "'style' in [tool.fgi-rewrite]: expected a string, got 3"),
        ("plot = 5\n", "'plot' in [tool.fgi-rewrite]: expected a string, got 5"),
        ("extend-exclude = 1\n", "expected a regular expression, or a list of them, got 1"),
        ('extend-exclude = ["a", 1]\n', "got a list holding 1 (an integer)"),
        ("extend-exclude = {a = 1}\n", "got a table"),
        ('extend-exclude = ["*.pyi"]\n', "'*.pyi': nothing to repeat at position 0 (a regular"),
    ],
)
def test_bad_config_is_a_usage_error(tmp_path: Path, table: str, message: str) -> None:
    target = config_project(tmp_path, table)
    result = invoke(target)
    assert result.exit_code == EXIT_USAGE
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert target.read_text() == SURROGATE


def test_bad_config_is_reported_also_when_the_command_line_overrides_it(tmp_path: Path) -> None:
    target = config_project(tmp_path, "check = 1\n")
    result = invoke("--check", target)
    assert result.exit_code == EXIT_USAGE and "expected true or false" in result.stderr


@pytest.mark.parametrize("key", ["exclude", "extend-exclude", "force-exclude"])
def test_config_excludes_take_ruffs_list_form(tmp_path: Path, key: str) -> None:
    """A list of regexes: a path matching any of them is excluded (before, the list's text
    ``['x']`` was taken as one regex, a character class excluding nearly every file)."""
    config_project(tmp_path, f'{key} = ["^/vendor/", "^/third_party/"]\n')
    write(tmp_path / "vendor" / "snn.py", SURROGATE)
    write(tmp_path / "third_party" / "snn.py", SURROGATE)
    write(tmp_path / "exp" / "snn.py", SURROGATE)
    expected = {str(tmp_path / "exp/snn.py"), str(tmp_path / "src/snn.py")}
    assert changed_files(invoke("--check", tmp_path)) == expected
    write(tmp_path / "pyproject.toml", f'[tool.fgi-rewrite]\n{key} = ["x"]\n')
    assert str(tmp_path / "src/snn.py") in changed_files(invoke("--check", tmp_path))


def test_verbose_names_the_config_file(tmp_path: Path) -> None:
    target = config_project(tmp_path, "check = true\n")
    assert f"Using configuration from {tmp_path / 'pyproject.toml'}" in invoke("-v", target).stderr


# ---- JSON -------------------------------------------------------------------------------------

NULLABLE_STR = (str, type(None))
CELL = (int, type(None))  # a notebook's cell index; null for a module
TOP = {
    "schema_version": int,
    "tool": str,
    "version": str,
    "mode": str,
    "exit_code": int,
    "summary": dict,
    "functions": list,
    "files": list,
    "diagnostics": list,
    "internal_errors": list,
    "modules": list,
}
SUMMARY = {
    "files_scanned",
    "files_changed",
    "surrogates_found",
    "call_sites_rewritten",
    "refused",
    "errors",
}
FUNCTION = {
    "name": str,
    "path": str,
    "line": int,
    "column": int,
    "cell": CELL,
    "verdict": str,
    "params": list,
    "f": NULLABLE_STR,
    "g": (dict, type(None)),
    "code": NULLABLE_STR,
    "message": NULLABLE_STR,
    "verification": (dict, type(None)),
}
VERIFICATION = {
    "status": str,
    "checks": dict,
    "accepted": bool,
    "written": bool,
    "detail": str,
    "hyperparameters": str,
    "notes": list,
    "plot": NULLABLE_STR,
}
FILE = {"path": str, "changed": bool, "call_sites": list, "diff": NULLABLE_STR}
CALL_SITE = {
    "surrogate": str,
    "path": str,
    "line": int,
    "column": int,
    "cell": CELL,
    "style": str,
}
DIAGNOSTIC = {
    "code": str,
    "severity": str,
    "path": str,
    "line": int,
    "column": int,
    "cell": CELL,
    "message": str,
}
MODULE = {
    "path": str,
    "class": NULLABLE_STR,
    "state": str,
    "detail": str,
    "original": NULLABLE_STR,
    "original_detail": str,
}


def check_keys(obj: dict[str, Any], schema: dict[str, Any]) -> None:
    assert set(obj) == set(schema)
    for key, kind in schema.items():
        assert isinstance(obj[key], kind), f"{key}: {obj[key]!r} is not {kind}"


def validate(payload: dict[str, Any]) -> None:
    check_keys(payload, TOP)
    assert payload["schema_version"] == 1 and payload["tool"] == "fgi-rewrite"
    assert payload["mode"] in {"write", "check", "diff"}
    assert set(payload["summary"]) == SUMMARY
    assert all(isinstance(v, int) for v in payload["summary"].values())
    for function in payload["functions"]:
        check_keys(function, FUNCTION)
        assert function["verdict"] in {"surrogate", "refused", "not_surrogate", "skipped"}
        if function["verdict"] == "surrogate":
            assert function["f"] and function["code"] is None
            assert set(function["g"]) == set(function["params"])
        else:
            assert function["code"] and function["f"] is None and function["g"] is None
        if function["verification"] is not None:
            check_keys(function["verification"], VERIFICATION)
            assert all(isinstance(v, str) for v in function["verification"]["checks"].values())
    for entry in payload["files"]:
        check_keys(entry, FILE)
        for site in entry["call_sites"]:
            check_keys(site, CALL_SITE)
    for diagnostic in payload["diagnostics"]:
        check_keys(diagnostic, DIAGNOSTIC)
        assert diagnostic["code"] in ALL_CODES
    assert all(isinstance(e, str) for e in payload["internal_errors"])
    for module in payload["modules"]:
        check_keys(module, MODULE)
        assert module["state"] in {"ok", "fail", "skipped"}


def test_json_report(tmp_path: Path) -> None:
    write(tmp_path / "snn.py", SURROGATE)
    write(tmp_path / "norm.py", REFUSED)
    write(tmp_path / "broken.py", "def f(:\n")
    result = invoke("--format", "json", "--check", tmp_path)
    assert result.exit_code == EXIT_ERROR
    assert result.stderr == ""
    payload = json.loads(result.stdout)
    validate(payload)
    assert payload["mode"] == "check" and payload["exit_code"] == EXIT_ERROR
    assert payload["summary"] == {
        "files_scanned": 3,
        "files_changed": 1,
        "surrogates_found": 1,
        "call_sites_rewritten": 1,
        "refused": 1,
        "errors": 1,
    }
    by_name = {f["name"]: f for f in payload["functions"]}
    spike = by_name["snn.SpikeFn"]
    assert spike["verdict"] == "surrogate" and spike["line"] == 5 and spike["params"] == ["x"]
    assert spike["f"] == "(x > 0).float()"
    assert spike["g"]["x"] is not None and "x.abs()" in spike["g"]["x"]
    assert by_name["norm.NormFn"]["verdict"] == "refused"
    assert by_name["norm.NormFn"]["code"] == "FGI101"
    (entry,) = payload["files"]
    assert entry["path"] == str(tmp_path / "snn.py") and entry["diff"] is None
    assert entry["call_sites"] == [
        {
            "surrogate": "snn.SpikeFn",
            "path": str(tmp_path / "snn.py"),
            "line": 18,
            "column": 12,
            "cell": None,
            "style": "inline",
        }
    ]
    # FGI206: the refused NormFn's call site is left, and said so.
    assert {d["code"] for d in payload["diagnostics"]} == {"FGI101", "FGI206", "FGI901"}


def test_json_carries_the_verification_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    monkeypatch.delenv("FGI_REWRITE_VERIFY")
    write(tmp_path / "snn.py", SURROGATE)
    payload = json.loads(invoke("--format", "json", "--verify", "grad", "--check", tmp_path).stdout)
    validate(payload)
    (function,) = payload["functions"]
    assert function["verification"]["status"] == "verified"
    assert function["verification"]["checks"]["grad"] == "ok"


def test_json_with_diff_and_write_modes(tmp_path: Path) -> None:
    target = write(tmp_path / "snn.py", SURROGATE)
    diff = json.loads(invoke("--format", "json", "--diff", target).stdout)
    validate(diff)
    assert diff["mode"] == "diff" and diff["files"][0]["diff"].startswith("--- ")
    written = json.loads(invoke("--format", "json", target).stdout)
    validate(written)
    assert written["mode"] == "write" and written["exit_code"] == 0
    assert "SpikeFn.apply" not in target.read_text()


def test_json_lists_surrogates_used_from_other_files(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "")
    write(tmp_path / "surrogates.py", DEFINITION)
    user = write(tmp_path / "model.py", USER)
    payload = json.loads(invoke("--format", "json", "--check", user).stdout)
    validate(payload)
    assert [f["name"] for f in payload["functions"]] == ["surrogates.SpikeFn"]
    assert payload["functions"][0]["path"] == str(tmp_path / "surrogates.py")


# ---- color ------------------------------------------------------------------------------------


def test_color_flags(tmp_path: Path) -> None:
    target = write(tmp_path / "snn.py", SURROGATE)
    colored = invoke("--diff", "--color", target).stdout
    assert "\033[31m-    return SpikeFn.apply" in colored and "\033[32m+" in colored
    assert ANSI not in invoke("--diff", "--no-color", target).stdout
    assert ANSI not in invoke("--diff", target).stdout


def test_color_default_follows_the_terminal_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert use_color(None) is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(None) is False
    assert use_color(True) is True  # an explicit flag wins over NO_COLOR
    monkeypatch.setenv("NO_COLOR", "")
    assert use_color(None) is True  # an empty NO_COLOR does not count
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert use_color(None) is False
    assert use_color(False) is False


# ---- as a real subprocess ---------------------------------------------------------------------


def test_subprocess_version_and_explain(tmp_path: Path) -> None:
    version = subprocess_cli("--version", cwd=tmp_path)
    assert version.returncode == 0 and __version__.encode() in version.stdout
    explain = subprocess_cli("--explain", "FGI902", cwd=tmp_path)
    assert explain.returncode == 0 and b"read-only" in explain.stdout


def test_subprocess_exit_codes(tmp_path: Path) -> None:
    target = write(tmp_path / "snn.py", SURROGATE)
    assert subprocess_cli("--check", str(target), cwd=tmp_path).returncode == 1
    assert subprocess_cli("--bogus", cwd=tmp_path).returncode == 2
    write(tmp_path / "bad.py", "print 'x'\n")
    done = subprocess_cli(str(tmp_path), cwd=tmp_path)
    assert done.returncode == 123
    assert b"bad.py:1:1: FGI901 cannot parse: Missing parentheses" in done.stderr
    assert "SpikeFn.apply" not in target.read_text()
    (tmp_path / "bad.py").unlink()
    assert subprocess_cli("--check", str(tmp_path), cwd=tmp_path).returncode == 0
    assert subprocess_cli(cwd=tmp_path).returncode == 0


def test_subprocess_stdin_and_color(tmp_path: Path) -> None:
    done = subprocess_cli("-", cwd=tmp_path, input=SURROGATE.encode())
    assert done.returncode == 0 and b"SpikeFn.apply" not in done.stdout
    diff = subprocess_cli(
        "--diff", "-", cwd=tmp_path, input=SURROGATE.encode(), env={"NO_COLOR": "1"}
    )
    assert diff.returncode == 0 and b"\033[" not in diff.stdout
    forced = subprocess_cli(
        "--diff", "--color", "-", cwd=tmp_path, input=SURROGATE.encode(), env={"NO_COLOR": "1"}
    )
    assert b"\033[32m+" in forced.stdout


def test_subprocess_json(tmp_path: Path) -> None:
    write(tmp_path / "snn.py", SURROGATE)
    done = subprocess_cli("--format", "json", "--check", ".", cwd=tmp_path)
    assert done.returncode == 1
    validate(json.loads(done.stdout))
