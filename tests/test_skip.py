"""``# fgi: skip`` and excluded files: what a user marks or excludes is neither rewritten nor
reported (issue 18, item 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fgi_rewrite import Options, run
from fgi_rewrite.cli import main
from fgi_rewrite.pipeline.report import EXIT_CHANGES, EXIT_OK
from tests.sources import DEFINITION, REFUSED, SURROGATE, USER

CLASS_LINE = "class SpikeFn(torch.autograd.Function):"


@pytest.fixture(autouse=True)
def _no_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FGI_REWRITE_VERIFY", "none")


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def project(root: Path, definition: str, user: str = USER) -> Path:
    (root / "pyproject.toml").write_text("")
    (root / "surrogates.py").write_text(definition)
    (root / "model.py").write_text(user)
    return root


def marked(source: str, line: str = CLASS_LINE, marker: str = "  # fgi: skip") -> str:
    assert line in source
    return source.replace(line, line + marker, 1)


def test_skip_on_the_class_line_holds_in_other_modules(tmp_path: Path) -> None:
    root = project(tmp_path, marked(DEFINITION))
    before = (root / "model.py").read_text()
    check = invoke("--check", root)
    assert check.exit_code == EXIT_OK, check.stderr
    assert "FGI003" not in check.stderr and "would rewrite" not in check.stderr
    assert invoke(root).exit_code == EXIT_OK
    assert (root / "model.py").read_text() == before
    only_user = invoke("--check", root / "model.py")  # pre-commit passes the changed file alone
    assert only_user.exit_code == EXIT_OK and "would rewrite" not in only_user.stderr
    verbose = invoke("-v", "--check", root)
    assert "surrogates.py:5:1: FGI007 SpikeFn: marked '# fgi: skip'" in verbose.stderr


def test_a_skipped_refused_function_is_not_reported(tmp_path: Path) -> None:
    line = "class NormFn(torch.autograd.Function):"
    source = tmp_path / "norm.py"
    source.write_text(REFUSED)
    assert invoke("--check", tmp_path).exit_code == EXIT_CHANGES  # FGI101 fails --check
    source.write_text(marked(REFUSED, line))
    result = invoke("--check", tmp_path)
    assert result.exit_code == EXIT_OK and "FGI101" not in result.stderr
    assert "0 refused" in result.stderr
    payload = json.loads(invoke("--check", "--format", "json", tmp_path).stdout)
    (function,) = payload["functions"]
    assert function["verdict"] == "skipped" and function["code"] == "FGI007"
    assert payload["exit_code"] == EXIT_OK and payload["summary"]["refused"] == 0


@pytest.mark.parametrize(
    ("line", "replacement"),
    [
        # on a decorator
        (CLASS_LINE, "@some_decorator  # fgi: skip\n" + CLASS_LINE),
        # on a line of the bases, or on the colon's line
        (CLASS_LINE, "class SpikeFn(  # fgi: skip\n    torch.autograd.Function\n):"),
        (CLASS_LINE, "class SpikeFn(\n    torch.autograd.Function\n):  # fgi: skip"),
    ],
)
def test_skip_anywhere_on_the_header(tmp_path: Path, line: str, replacement: str) -> None:
    definition = DEFINITION.replace(line, replacement)
    if "some_decorator" in definition:
        definition = definition.replace("import torch\n", "import torch\n\nsome_decorator = id\n")
    root = project(tmp_path, definition)
    result = invoke("--check", root)
    assert result.exit_code == EXIT_OK and "would rewrite" not in result.stderr, result.stderr


def test_skip_in_the_body_or_elsewhere_does_not_skip_the_function(tmp_path: Path) -> None:
    definition = marked(DEFINITION, "    def forward(ctx, x):")
    root = project(tmp_path, definition + "\n\n# fgi: skip (a comment far from the class)\n")
    result = invoke("--check", root)
    assert result.exit_code == EXIT_CHANGES
    assert f"would rewrite {root / 'model.py'}" in result.stderr


def test_skip_on_a_call_keeps_only_that_call(tmp_path: Path) -> None:
    user = USER + "\n\ndef keep(v):\n    return SpikeFn.apply(v)  # fgi: skip\n"
    root = project(tmp_path, DEFINITION, user)
    run([root], Options())
    text = (root / "model.py").read_text()
    assert text.count("SpikeFn.apply") == 1 and "SpikeFn.apply(v)  # fgi: skip" in text


def test_skip_covers_references_and_the_function_style(tmp_path: Path) -> None:
    user = (
        "from surrogates import SpikeFn\n\n\n"
        "def step(v, fn=SpikeFn.apply):\n    return fn(v) + SpikeFn.apply(v)\n\n\n"
        "def layer(v, spike_fn=SpikeFn):\n    return spike_fn.apply(v)\n"
    )
    root = project(tmp_path, marked(DEFINITION), user)
    for style in ("inline", "function"):
        report = run([root], Options(style=style, check=True))
        assert not report.changed, style


def test_skip_in_the_module_that_calls_it(tmp_path: Path) -> None:
    target = tmp_path / "snn.py"
    target.write_text(marked(SURROGATE))
    result = invoke("--check", target)
    assert result.exit_code == EXIT_OK and "FGI003" not in invoke("-v", target).stderr
    assert "SpikeFn.apply" in target.read_text()


# ---- excluded files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    [
        ("--extend-exclude", "^/vendor/"),
        ("--force-exclude", "^/vendor/"),
        ("--exclude", "^/vendor/"),
    ],
)
def test_an_excluded_file_is_not_reported_against(tmp_path: Path, how: tuple[str, str]) -> None:
    """A refused Function in an excluded file that a checked file calls: the excluded file is not
    reported against (no FGI101 there), and the call is left as it is, which its own file says
    (FGI206, a warning)."""
    (tmp_path / "pyproject.toml").write_text("")
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "__init__.py").write_text("")
    (vendor / "norm.py").write_text(REFUSED)
    user = tmp_path / "model.py"
    user.write_text("from vendor.norm import NormFn\n\n\ndef f(v):\n    return NormFn.apply(v)\n")
    result = invoke("--check", *how, tmp_path)
    assert result.exit_code == EXIT_OK, result.stderr
    lines = result.stderr.splitlines()
    assert not [line for line in lines if line.startswith(str(vendor))], result.stderr
    assert [line.split(" ")[1] for line in lines if ": FGI" in line] == ["FGI206"]
    if how[0] == "--force-exclude":  # also when given explicitly, as pre-commit does
        explicit = invoke("--check", *how, user, vendor / "norm.py")
        assert explicit.exit_code == EXIT_OK
        assert not [x for x in explicit.stderr.splitlines() if x.startswith(str(vendor))]


def test_a_surrogate_in_an_excluded_file_is_still_inlined_where_it_is_called(
    tmp_path: Path,
) -> None:
    """Excluding a file leaves that file alone; its Functions' call sites elsewhere are the
    checked files' own (mark the class ``# fgi: skip`` to keep them too)."""
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    (vendor / "__init__.py").write_text("")
    (vendor / "surrogates.py").write_text(DEFINITION)
    user = tmp_path / "model.py"
    user.write_text(USER.replace("from surrogates", "from vendor.surrogates"))
    report = run([tmp_path], Options(extend_exclude="^/vendor/", check=True))
    assert [r.path for r in report.changed] == [user]
    (vendor / "surrogates.py").write_text(marked(DEFINITION))
    assert not run([tmp_path], Options(extend_exclude="^/vendor/", check=True)).changed
