"""``--plot DIR``: one PNG per verified surrogate, drawn by the verification child.

The tests that draw need torch and matplotlib (one verification subprocess each, about 5 s);
the others need neither.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
from pathlib import Path

import libcst as cst
import pytest
from click.testing import CliRunner, Result

from fgi_rewrite import Options, run
from fgi_rewrite.cli import configurable_keys, main
from fgi_rewrite.core.model import Location, Param, Surrogate
from fgi_rewrite.pipeline.report import EXIT_OK, EXIT_USAGE
from fgi_rewrite.verify.stage import plot_name

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PLOTTED = {  # fixture -> the class it defines, plotted as <snake_case>.png
    "sj_sigmoid": "SigmoidSurrogate",
    "threshold_grad": "ThresholdSpike",
    "multilevel_round_clamp": "MultiLevelSpike",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HAS_TORCH = importlib.util.find_spec("torch") is not None  # found, not imported
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
needs_matplotlib = pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")


@pytest.fixture(autouse=True)
def _default_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FGI_REWRITE_VERIFY", "FGI_REWRITE_VERIFY_NO_TORCH", "FGI_REWRITE_VERIFY_PYTHON"):
        monkeypatch.delenv(name, raising=False)


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def project(tmp_path: Path, fixtures: list[str]) -> Path:
    """The fixtures' input.py files, each in its own package of one project."""
    root = tmp_path / "project"
    for name in fixtures:
        (root / name).mkdir(parents=True)
        shutil.copyfile(FIXTURES / name / "input.py", root / name / "input.py")
    (root / "pyproject.toml").write_text("")
    return root


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def surrogate(qualname: str) -> Surrogate:
    return Surrogate(
        qualname=qualname,
        module=qualname.split("[", 1)[0].rsplit(".", 1)[0],
        location=Location(Path("m.py"), 1, 1),
        params=(Param("x"),),
        value=cst.Name("x"),
        grads=(cst.Integer("1"),),
    )


# ---- no torch needed ---------------------------------------------------------------------------


def test_plot_names_are_snake_case_with_a_suffix_for_variants_and_clashes() -> None:
    taken: set[str] = set()
    assert plot_name(surrogate("pkg.m.SigmoidSurrogate"), taken) == "sigmoid_surrogate.png"
    assert plot_name(surrogate("pkg.m.ATanSpike"), taken) == "atan_spike.png"
    assert plot_name(surrogate("pkg.m.Fourier[n_terms=4]"), taken) == "fourier_n_terms_4.png"
    assert plot_name(surrogate("pkg.m.Fourier[n_terms=8]"), taken) == "fourier_n_terms_8.png"
    assert plot_name(surrogate("pkg.m.Kind[alpha=0.5, mode='a']"), taken) == (
        "kind_alpha_0_5_mode_a.png"
    )
    # The same class name in another module: numbered, never overwritten.
    assert plot_name(surrogate("pkg.other.SigmoidSurrogate"), taken) == "sigmoid_surrogate_2.png"
    long = plot_name(surrogate("m.Fn[" + ", ".join(f"p{i}={i}.5" for i in range(20)) + "]"), taken)
    assert len(long) < 80 and long.startswith("fn_p0_0_5_") and long.endswith(".png")


def test_plot_is_an_option_and_a_config_key() -> None:
    assert "plot" in configurable_keys(main)
    result = invoke("--help")
    assert "--plot DIR" in result.stdout


def test_plot_with_verify_none_is_a_usage_error(tmp_path: Path) -> None:
    root = project(tmp_path, ["sj_sigmoid"])
    result = invoke("--verify", "none", "--plot", tmp_path / "plots", root)
    assert result.exit_code == EXIT_USAGE
    assert "--plot draws its figures while verifying" in result.stderr
    assert "use --verify grad" in result.stderr
    assert not (tmp_path / "plots").exists()


def test_plot_with_verify_none_from_the_environment_or_config_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, ["sj_sigmoid"])
    monkeypatch.setenv("FGI_REWRITE_VERIFY", "none")
    result = invoke("--plot", tmp_path / "plots", root)
    assert result.exit_code == EXIT_USAGE
    assert "(from FGI_REWRITE_VERIFY)" in result.stderr
    monkeypatch.delenv("FGI_REWRITE_VERIFY")
    (root / "pyproject.toml").write_text('[tool.fgi-rewrite]\nverify = "none"\n')
    result = invoke("--plot", tmp_path / "plots", root)
    assert result.exit_code == EXIT_USAGE
    assert "pyproject.toml)" in result.stderr


def test_plot_onto_a_file_is_a_usage_error(tmp_path: Path) -> None:
    root = project(tmp_path, ["sj_sigmoid"])
    (tmp_path / "taken").write_text("")
    result = invoke("--plot", tmp_path / "taken", root)
    assert result.exit_code == EXIT_USAGE


def test_plot_without_torch_says_so_once_and_the_api_implies_grad(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Options(plot=...) verifies even at the API's default verify="none"; without torch the
    rewrites are unverified (FGI309 once, FGI303 each: verify="none" asked for unverified
    writes) and no plot is drawn (FGI307, once)."""
    monkeypatch.setenv("FGI_REWRITE_VERIFY_NO_TORCH", "1")
    root = project(tmp_path, list(PLOTTED))
    report = run([root], Options(check=True, plot=tmp_path / "plots"))
    found = [d.code.code for d in report.diagnostics]
    assert found.count("FGI309") == 1 and found.count("FGI307") == 1
    assert found.count("FGI303") == len(PLOTTED) and "FGI305" not in found
    assert len(report.verifications) == len(PLOTTED)
    assert all(v.status == "unverified" and not v.plot for v in report.verifications)
    assert list((tmp_path / "plots").iterdir()) == []


# ---- drawing (torch and matplotlib) ------------------------------------------------------------


@needs_torch
@needs_matplotlib
def test_plot_draws_one_png_per_surrogate(tmp_path: Path) -> None:
    root = project(tmp_path, list(PLOTTED))
    plots = tmp_path / "out" / "plots"  # created, parents included
    result = invoke("--diff", "--verify", "grad", "--plot", plots, root)
    assert result.exit_code == EXIT_OK, result.stderr
    assert sorted(p.name for p in plots.iterdir()) == sorted(
        f"{name}.png" for name in ("sigmoid_surrogate", "threshold_spike", "multi_level_spike")
    )
    for name in ("sigmoid_surrogate", "threshold_spike", "multi_level_spike"):
        png = plots / f"{name}.png"
        assert f"plot: {png}" in result.stderr.splitlines()
        width, height = png_size(png)
        assert width >= 800 and height >= 350, (name, width, height)
        assert png.stat().st_size > 20_000, f"{png} looks empty"
    # ThresholdSpike has two differentiable inputs: value, d/dx and d/dth side by side.
    assert png_size(plots / "threshold_spike.png")[0] > png_size(plots / "sigmoid_surrogate.png")[0]
    # The diff and the files are as without --plot.
    assert "-    return SigmoidSurrogate.apply(x, 4.0)" in result.stdout
    assert "verify SigmoidSurrogate: grad ✓ [alpha=4.0 (call site)]" in result.stderr
    assert (root / "sj_sigmoid" / "input.py").read_bytes() == (
        FIXTURES / "sj_sigmoid" / "input.py"
    ).read_bytes()


@needs_torch
def test_plot_without_matplotlib_warns_once_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    # Found first by the verification child: ``import matplotlib`` fails there.
    path = [str(shadow.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
    root = project(tmp_path, ["sj_sigmoid", "threshold_grad"])
    result = invoke(
        "--format", "json", "--check", "--verify", "grad", "--plot", tmp_path / "p", root
    )
    report = json.loads(result.stdout)
    messages = [d["message"] for d in report["diagnostics"] if d["code"] == "FGI307"]
    assert len(messages) == 1
    assert messages[0].startswith("--plot needs matplotlib: pip install 'fgi-rewrite[plot]'")
    verified = [f["verification"] for f in report["functions"] if f["verification"]]
    assert len(verified) == 2
    assert all(v["checks"]["grad"] == "ok" and v["plot"] is None for v in verified)
    assert report["exit_code"] == 1  # --check: the files would change; a warning does not fail
    assert list((tmp_path / "p").iterdir()) == []
