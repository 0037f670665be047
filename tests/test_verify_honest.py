"""Honest verification: what cannot be verified is not written unless asked for, verification
never runs I/O from module constants, hyperparameters are passed the way call sites pass them
(``.grad is None`` parity), repeated values are checked once, TorchScript results are compared
at the gradient check's tolerance (issues 14, 15 and 18)."""

from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path
from typing import Any

import libcst as cst
import pytest
from click.testing import CliRunner

from fgi_rewrite import Options, run
from fgi_rewrite.cli import main
from fgi_rewrite.core.model import RunMode
from fgi_rewrite.pipeline.report import Report, to_json
from fgi_rewrite.project.source_module import ModuleInfo, collect_definitions
from fgi_rewrite.verify import stage as verify
from fgi_rewrite.verify.pure import impure_calls
from tests.sources import SURROGATE

HAS_TORCH = importlib.util.find_spec("torch") is not None  # found, not imported
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "proj"
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def codes_of(report: Report) -> list[str]:
    return sorted(d.code.code for d in report.diagnostics if d.code.code.startswith("FGI3"))


def stub_child(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace the subprocess by one that records the job and verifies everything."""
    jobs: list[dict[str, Any]] = []

    def fake(cases: Any, level: str, timeout: float, python: str | None = None) -> Any:
        cases = [case.to_json() for case in cases]  # as the child reads them
        jobs.append({"level": level, "cases": cases})
        out = verify.ChildOutput(torch_ok=True)
        for case in cases:
            out.results[case["id"]] = {
                "id": case["id"],
                "checks": {"grad": {"ok": True}, "script": {"ok": True}},
                "original": {},
            }
        return out

    monkeypatch.setattr(verify, "run_child", fake)
    return jobs


# ---- unverified writes are opt-in (issue 18 item 2) --------------------------------------------


def _cli(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        main,
        ["--format", "json", *args, str(root)],
        env={"FGI_REWRITE_VERIFY_NO_TORCH": "1", "FGI_REWRITE_VERIFY": None},
    )
    return result.exit_code, json.loads(result.stdout)


def _codes(data: dict[str, Any]) -> list[str]:
    return sorted(d["code"] for d in data["diagnostics"] if d["code"].startswith("FGI3"))


def test_without_torch_nothing_is_written_and_exit_1(tmp_path: Path) -> None:
    root = project(tmp_path, {"spikes.py": SURROGATE})
    status, data = _cli(root)
    assert status == 1 and data["exit_code"] == 1
    assert _codes(data) == ["FGI305", "FGI309"]
    assert (root / "spikes.py").read_text() == SURROGATE
    (function,) = data["functions"]
    assert function["verification"]["status"] == "unverified"
    assert function["verification"]["written"] is False
    # --diff still shows what would change, marked unverified; it exits 1 too.
    status, data = _cli(root, "--diff")
    assert status == 1 and "SpikeFn.apply" in data["files"][0]["diff"]
    assert data["functions"][0]["verification"]["accepted"] is False
    assert (root / "spikes.py").read_text() == SURROGATE


@pytest.mark.parametrize("opt_in", [["--allow-unverified"], ["--verify", "none"]])
def test_unverified_writes_on_purpose(tmp_path: Path, opt_in: list[str]) -> None:
    root = project(tmp_path, {"spikes.py": SURROGATE})
    status, data = _cli(root, *opt_in)
    assert status == 0, data
    assert "SpikeFn.apply" not in (root / "spikes.py").read_text()
    assert _codes(data) == ([] if "none" in opt_in else ["FGI303", "FGI309"])


def test_allow_unverified_and_require_verify(tmp_path: Path) -> None:
    root = project(tmp_path, {"spikes.py": SURROGATE})
    result = CliRunner().invoke(main, ["--allow-unverified", "--require-verify", str(root)])
    assert result.exit_code == 2 and "contradict" in result.output
    # The command line wins over the configuration, either way.
    (root / "pyproject.toml").write_text("[tool.fgi-rewrite]\nallow-unverified = true\n")
    status, data = _cli(root, "--check", "--require-verify")
    assert status == 1 and _codes(data) == ["FGI305", "FGI309"]
    status, data = _cli(root, "--check")
    assert _codes(data) == ["FGI303", "FGI309"]
    (root / "pyproject.toml").write_text("[tool.fgi-rewrite]\nrequire-verify = true\n")
    status, data = _cli(root, "--check", "--allow-unverified")
    assert _codes(data) == ["FGI303", "FGI309"]
    status, data = _cli(root, "--check")
    assert _codes(data) == ["FGI305", "FGI309"]


# ---- JSON "written" (issue 18 item 11) ---------------------------------------------------------


def test_json_written_is_false_unless_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, {"spikes.py": SURROGATE})
    stub_child(monkeypatch)
    for options, written in (
        (Options(verify="grad", check=True), False),
        (Options(verify="grad", diff=True), False),
        (Options(verify="grad"), True),
    ):
        report = run([root], options)
        (function,) = to_json(report, options.mode)["functions"]
        assert function["verification"]["accepted"] is True
        assert function["verification"]["written"] is written, options.mode
    assert options.mode is RunMode.WRITE and "SpikeFn.apply" not in (root / "spikes.py").read_text()


# ---- no I/O from module constants (issue 18 item 4) -----------------------------------------


def _module(source: str) -> ModuleInfo:
    info = ModuleInfo("m", Path("m.py"), "", False, cst.parse_module(source))
    collect_definitions(info)
    return info


@pytest.mark.parametrize(
    "statement, impure",
    [
        ("K = 4.0 + 0 * torch.load('x.pkl', weights_only=False)", ["torch.load"]),
        ("K = fetch('x.pkl')", ["torch.load"]),
        ("K = np.load('x.npy')", ["numpy.load"]),
        ("K = torch.hub.load('a', 'b')", ["torch.hub.load"]),
        ("K = float(open('k.txt').read())", ["open", "open('k.txt').read"]),
        ("K = __import__('os').system('touch x')", ["__import__", "__import__('os').system"]),
        ("K = torch.from_file('x.bin')", ["torch.from_file"]),
        ("K = np.fromfile('x.bin')[0]", ["numpy.fromfile"]),
        ("K = subprocess.check_output(['ls'])", ["subprocess.check_output"]),
        ("K = torch.tensor(2.0).item()", ["torch.tensor(2.0).item"]),
        ("K = 4.0 * math.sqrt(2.0) + torch.tensor([1.0, 2.0]).numel", []),
        ("K = np.exp(np.float32(1.5)) + torch.sigmoid(torch.tensor(0.5))", []),
        ("K = [max(1, i) for i in range(3)]", []),
        ("K = torch.distributions.Normal(0.0, 1.0)", []),
        (
            "def helper(x, k=torch.load('x.pkl')):\n    return torch.load(x)\n",
            ["torch.load"],  # the default is evaluated when defined, the body is not
        ),
        ("@torch.jit.script\ndef helper(x: torch.Tensor):\n    return torch.load(x)\n", []),
        ("@functools.lru_cache\ndef helper(x):\n    return x\n", ["@functools.lru_cache"]),
        ("class A:\n    K = torch.load('x.pkl')\n", ["torch.load"]),
    ],
)
def test_only_pure_calls_run_when_the_module_is_built(statement: str, impure: list[str]) -> None:
    header = (
        "import functools\nimport math\nimport subprocess\nimport numpy as np\nimport torch\n"
        "from torch import load as fetch\n"
    )
    module = _module(header + statement)
    node = module.tree.body[-1]
    assert sorted(impure_calls(module, node)) == sorted(impure)


SPIKES_WITH_PAYLOADS = """\
import math

import numpy as np
import torch
from torch import load as fetch
from torch.autograd import Function

K_LOAD = 4.0 + 0 * torch.load({torch_load!r}, weights_only=False)
K_ALIAS = fetch({alias!r}, weights_only=False)
K_NUMPY = np.load({numpy!r}, allow_pickle=True)
K_PURE = 4.0
K_MATH = math.sqrt(16.0)


class PureSpike(Function):
    # Uses only the pure constant: the module's other constants must not run.

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (1.0 + K_PURE * x.abs()) ** 2


class BodySpike(PureSpike):
    SCALE = torch.load({body!r}, weights_only=False)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (1.0 + 4.0 * x.abs()) ** 2


def fire(v):
    return PureSpike.apply(v) + BodySpike.apply(v)
"""


class _Marker:
    """Unpickling it creates its file: the payload a loaded constant would run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


@needs_torch
def test_verification_never_runs_a_payload_from_a_module_constant(tmp_path: Path) -> None:
    payloads = {}
    markers = []
    for name in ("torch_load", "alias", "numpy", "body"):
        marker = tmp_path / f"ran_{name}"
        payload = tmp_path / f"{name}.pkl"
        payload.write_bytes(pickle.dumps(_Marker(marker)))
        payloads[name] = str(payload)
        markers.append(marker)
    root = project(tmp_path, {"spikes.py": SPIKES_WITH_PAYLOADS.format(**payloads)})
    for options in (Options(verify="grad", check=True), Options(verify="script", diff=True)):
        report = run([root], options)
        assert [m.name for m in markers if m.exists()] == []
        verdicts = {v.name: v for v in report.verifications}
        assert verdicts["PureSpike"].status == "verified"  # a pure constant still resolves
        assert verdicts["BodySpike"].status == "isolation"
        assert "torch.load when it is defined" in verdicts["BodySpike"].detail
        assert report.exit_code() == 1  # not verified: not written


# ---- hyperparameters passed as the call sites pass them (issue 14 item 5) ----------------------

ATAN = """\
import math

import torch
from torch import nn


class ATanSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, alpha):
        ctx.save_for_backward(v, alpha)
        return (v > 0).type_as(v)

    @staticmethod
    def backward(ctx, grad_output):
        v, alpha = ctx.saved_tensors
        return grad_output * alpha / 2 / (1 + (math.pi / 2 * alpha * v) ** 2), None
"""

LEARNABLE = """

class Layer(nn.Module):
    def __init__(self, alpha=2.0):
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(alpha))

    def forward(self, v):
        return ATanSpike.apply(v - 1.0, self.alpha)
"""

PLAIN = """

class SigmoidSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(ctx.alpha * x)
        return grad_output * ctx.alpha * s * (1.0 - s), None


def literal(v):
    return SigmoidSpike.apply(v, 4.0)


def passed_on(v, alpha):
    return SigmoidSpike.apply(v, alpha)
"""


def _case(jobs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(c for c in jobs[-1]["cases"] if c["class_name"] == name)


def test_a_parameter_is_passed_as_a_parameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, {"spikes.py": ATAN + LEARNABLE})
    jobs = stub_child(monkeypatch)
    report = run([root], Options(verify="script", diff=True))
    configs = _case(jobs, "ATanSpike")["configs"]
    assert [c["values"]["alpha"] for c in configs] == [2.0, 1.0, 5.0]
    assert all(c["parameters"] == ["alpha"] == c["tensors"] for c in configs)
    assert report.verifications[0].hyper == (
        "alpha=Parameter(2.0) (default of Layer.__init__); "
        "alpha=Parameter(1.0), Parameter(5.0) (sample)"
    )
    wrapper = next(
        c["text"] for c in _case(jobs, "ATanSpike")["chunks"] if "_FgiVerify" in c["text"]
    )
    assert "alpha: torch.Tensor" in wrapper  # typed as passed, for the TorchScript check


def test_an_argument_of_unknown_kind_is_checked_as_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, {"spikes.py": "import torch\n" + PLAIN})
    jobs = stub_child(monkeypatch)
    run([root], Options(verify="grad", diff=True))
    configs = _case(jobs, "SigmoidSpike")["configs"]
    # 4.0 from the literal call, the samples for ``alpha`` passed on, then the same values once
    # as an nn.Parameter (a guess: a caller may pass one), which is kept within MAX_CONFIGS.
    assert [(c["values"]["alpha"], c["parameters"]) for c in configs] == [
        (4.0, []),
        (1.0, []),
        (2.0, []),
        (4.0, ["alpha"]),
    ]
    assert [c["sampled"] for c in configs] == [False, True, True, True]
    # Only literals: a number, nothing else.
    source = "import torch\n" + PLAIN.replace("SigmoidSpike.apply(v, alpha)", "v")
    root = project(tmp_path / "literal", {"spikes.py": source})
    run([root], Options(verify="grad", diff=True))
    assert [c["parameters"] for c in _case(jobs, "SigmoidSpike")["configs"]] == [[]]


@needs_torch
def test_grad_is_none_parity_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The emitted gradient reads ``alpha`` detached; without that, ``alpha.grad`` becomes a zero
    tensor where the original leaves None, and verification must refuse the rewrite."""
    import fgi_rewrite.rewrite.emit as emit

    root = project(tmp_path, {"spikes.py": ATAN + LEARNABLE})
    report = run([root], Options(verify="script", check=True))
    (verdict,) = report.verifications
    assert verdict.status == "verified", verdict.line()
    monkeypatch.setattr(emit, "_reads_tensor_hyperparameter", lambda *args: False)
    report = run([root], Options(verify="grad", check=True))
    (verdict,) = report.verifications
    assert verdict.status == "failed"
    assert "alpha.grad after backward: the original leaves it None, the rewrite sets it" in (
        verdict.detail
    )
    # the refusal, and its call site left unchanged (FGI206)
    assert [d.code.code for d in report.diagnostics] == ["FGI301", "FGI206"]


@needs_torch
def test_an_original_that_cannot_run_as_called_is_not_written(tmp_path: Path) -> None:
    """``save_for_backward(alpha)`` with the float the call site passes raises in the original:
    nothing shows the rewrite right, so it is a refusal by default (``--check`` exits 1)."""
    calls = "\n\ndef fire(v):\n    return ATanSpike.apply(v, 2.0)\n"
    root = project(tmp_path, {"spikes.py": ATAN + calls})
    before = (root / "spikes.py").read_text()
    report = run([root], Options(verify="grad", check=True))
    assert [d.code.code for d in report.diagnostics] == ["FGI305"]
    assert "save_for_backward" in report.diagnostics[0].message
    assert report.exit_code() == 1
    report = run([root], Options(verify="grad"))
    assert report.exit_code() == 1 and (root / "spikes.py").read_text() == before
    report = run([root], Options(verify="grad", allow_unverified=True))
    assert [d.code.code for d in report.diagnostics] == ["FGI304"]
    assert (root / "spikes.py").read_text() != before


# ---- each hyperparameter value once (issue 18 item 9) ------------------------------------------


def test_repeated_values_are_checked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The case: 2.0 at a call site, as a default passed on, and among the samples.
    source = "import torch\n" + PLAIN.replace(
        "SigmoidSpike.apply(v, 4.0)", "SigmoidSpike.apply(v, 2.0)"
    ).replace("def passed_on(v, alpha)", "def passed_on(v, alpha=2.0)")
    root = project(tmp_path, {"spikes.py": source})
    jobs = stub_child(monkeypatch)
    report = run([root], Options(verify="grad", diff=True))
    configs = _case(jobs, "SigmoidSpike")["configs"]
    numbers = [c["values"]["alpha"] for c in configs if not c["parameters"]]
    assert numbers == [2.0, 1.0, 5.0]  # 2.0 (call site, default, sample) once; 5.0 kept
    assert len({c["label"] for c in configs}) == len(configs)  # the plot legend too
    assert report.verifications[0].hyper == (
        "alpha=2.0 (call site); alpha=1.0, 5.0, Parameter(2.0) (sample)"
    )


# ---- TorchScript at the gradient check's tolerance (issue 15 item 7) ---------------------------

TANH_CASE = """\
import torch


class TanhSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * (1 - torch.tanh(x) ** 2)


def candidate(x: torch.Tensor) -> torch.Tensor:
    out = (x > 0).to(x.dtype)
    if torch.is_grad_enabled() and x.requires_grad:
        x_d = x.detach()
        out = torch.addcmul(out.detach(), x - x_d, 1 - torch.tanh(x_d) ** 2).to(out.dtype)
    return out


class Wrapper(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return candidate(x)
"""


@needs_torch
@pytest.mark.parametrize("relative, accepted", [(1.5e-8, True), (1e-3, False)])
def test_scripted_results_are_compared_at_the_gradient_tolerance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: float, accepted: bool
) -> None:
    """A loaded module whose gradient differs from eager by ``relative`` (1.5e-8 was measured on a
    published surrogate in float64, beyond the float64 tolerance of 1e-10) passes the script
    check; a real difference does not."""
    import sys
    import types

    import torch

    from fgi_rewrite.verify.child import checks as child

    child.torch = child.compare.torch = torch
    path = tmp_path / "tanh_case.py"
    path.write_text(TANH_CASE)
    module = types.ModuleType("tanh_case")
    module.__file__ = str(path)
    monkeypatch.setitem(sys.modules, "tanh_case", module)
    exec(compile(TANH_CASE, str(path), "exec"), module.__dict__)
    case = {
        "id": "TanhSpike",
        "class_name": "TanhSpike",
        "params": [{"name": "x", "grad": True}],
        "forms": {"function": "candidate"},
        "wrappers": {"function": "Wrapper"},
        "configs": [{"values": {}, "label": "", "tensors": []}],
    }
    checker = child.Checker(case, module)
    real_load = torch.jit.load

    class Perturbed(torch.nn.Module):
        """The loaded module, with its gradient scaled by (1 + relative)."""

        def __init__(self, loaded: Any) -> None:
            super().__init__()
            self.loaded = loaded
            self.inlined_graph = loaded.inlined_graph

        def forward(self, x: Any) -> Any:
            out = self.loaded(x)
            return out + (x - x.detach()) * (relative * (1 - torch.tanh(x.detach()) ** 2))

    monkeypatch.setattr(torch.jit, "load", lambda buffer: Perturbed(real_load(buffer)))
    if accepted:
        assert checker.script_check() == ""
    else:
        with pytest.raises(child.Mismatch, match="differs beyond rtol 1e-05"):
            checker.script_check()
