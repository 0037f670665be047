"""Every diagnostic code has a case here that makes the tool report it: a small project of its
own and the options of a run. A code without a case fails ``test_every_code_has_a_case``, so a
new code cannot go untested, and a case that stops producing its code fails too.

Runs use ``verify="none"`` unless the code is about verification; those cases stub the
verification child (``verify.stage.run_child``, ``verify.module_check.run_job``) or make it
behave as without torch (``FGI_REWRITE_VERIFY_NO_TORCH=1``), so no case imports torch."""

from __future__ import annotations

import stat
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fgi_rewrite import Options, Report, run
from fgi_rewrite.core.codes import ALL_CODES
from fgi_rewrite.pipeline import notebooks
from fgi_rewrite.project.notebook_json import NotebookError
from fgi_rewrite.verify import module_check
from fgi_rewrite.verify import stage as verify_stage
from fgi_rewrite.verify.process import ChildOutput
from tests.sources import notebook

CLASS_LINE = "class Spike(torch.autograd.Function):"


def spike(
    backward: str = "(x,) = ctx.saved_tensors\nreturn grad_output / (1.0 + 10.0 * x.abs()) ** 2",
    forward: str = "ctx.save_for_backward(x)\nreturn (x > 0).float()",
    params: str = "x",
    call: str = "def fire(v):\n    return Spike.apply(v)",
    body: str = "",
) -> str:
    """A module with a Function ``Spike`` of these bodies, and ``call`` after it."""

    def indent(code: str) -> str:
        return textwrap.indent(textwrap.dedent(code).strip(), " " * 8)

    return (
        f"import torch\n\n\n{CLASS_LINE}\n{textwrap.indent(body, '    ')}"
        f"    @staticmethod\n    def forward(ctx, {params}):\n{indent(forward)}\n\n"
        f"    @staticmethod\n    def backward(ctx, grad_output):\n{indent(backward)}\n\n\n"
        f"{textwrap.dedent(call).strip()}\n"
    )


STEP = spike()
WITHOUT_CALL = spike(call="")
# A surrogate-shaped Function refused (FGI103): its uses are left as they are.
RANDOM = spike("(x,) = ctx.saved_tensors\nreturn grad_output * torch.rand_like(x)")
# Another surrogate, to follow a module (without its import).
GOOD = STEP.replace("Spike", "Good").replace("def fire", "def fire_good").split("\n", 3)[3]


Setup = Callable[[Path, pytest.MonkeyPatch], None]


@dataclass(frozen=True)
class Case:
    files: dict[str, str | bytes]
    options: dict[str, Any] = field(default_factory=dict)
    # Called with the project root and a monkeypatch before the run (stubs, file modes, env).
    setup: Setup | None = None
    # How many times the code is reported, when that is part of its meaning ("once per run").
    count: int | None = None


def stub_child(grad: bool = True, script: bool = True) -> Setup:
    """Replace the verification subprocess by one whose checks give these results."""

    def setup(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        def fake(cases: Any, level: Any, timeout: float, python: str | None = None) -> Any:
            out = ChildOutput(torch_ok=True)
            for case in cases:
                out.results[case.id] = {
                    "id": case.id,
                    "checks": {
                        "grad": {"ok": grad, "detail": "largest difference 1.0 at x=0.5"},
                        "script": {"ok": script, "detail": "Unknown builtin op"},
                    },
                    "original": {},
                }
            return out

        monkeypatch.setattr(verify_stage, "run_child", fake)

    return setup


def no_torch(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The verification child behaves as if torch were not importable (a real child runs)."""
    monkeypatch.setenv("FGI_REWRITE_VERIFY_NO_TORCH", "1")


def read_only(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = root / "spikes.py"
    target.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def module_regression(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A --verify-modules child that says the class scripted before the rewrite and not after."""
    stub_child()(root, monkeypatch)

    def fake(job: Any, timeout: float, python: str | None = None) -> ChildOutput:
        path = job.modules[0].path
        message = {"kind": "module", "path": path, "class": "spikes.Net"}
        return ChildOutput(
            torch_ok=True,
            modules=[
                {**message, "state": "fail", "detail": "Could not export", "original": "ok"},
            ],
        )

    monkeypatch.setattr(module_check, "run_job", fake)


def link_outside(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``linked.py`` in the project points to a surrogate in a directory beside the project."""
    elsewhere = root.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "snn.py").write_text(STEP)
    (root / "linked.py").symlink_to(elsewhere / "snn.py")


def cells_lost(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Putting the rewrite back into the notebook's cells fails (a defect of fgi-rewrite)."""

    def lost(*args: object) -> bytes:
        raise NotebookError("the rewrite moved or removed a boundary between cells")

    monkeypatch.setattr(notebooks, "rewrite_notebook", lost)


# The parts of ``spike()`` as notebook cells: the Function, then its uses.
SPIKE_CELL = STEP.split("\n\n\ndef fire", 1)[0].replace("import torch\n\n\n", "")
CELLS = ["import torch", SPIKE_CELL, "v = torch.randn(3)\ns = Spike.apply(v)"]

# FGI111: a class attribute of a class built in a factory, which may change there.
FACTORY = """\
import torch


def make_spike(alpha):
    class FactorySpike(torch.autograd.Function):
        k = 2.0

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x > 0).float()

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output / (1.0 + FactorySpike.k * x.abs()) ** 2

{setter}
    return FactorySpike.apply


spike = make_spike(3.0)


def fire(v):
    return spike(v)
"""

# FGI112: the generic "cannot read this" (a branch on the device) hides a time shift.
SHIFT = spike(
    "(x,) = ctx.saved_tensors\nreturn grad_output / (1 + x.abs())",
    forward="""
    y = torch.zeros_like(x)
    y[..., 1:] = x[..., :-1]
    ctx.save_for_backward(x)
    return (y > 0).float()
    """,
)

# FGI113 / FGI205: a module global rebound through ``global``, read by the backward.
ATAN = """\
import torch

ALPHA = 2.0


def set_alpha(a):
    global ALPHA
    ALPHA = a


class ATan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (v,) = ctx.saved_tensors
        return grad_output / (1 + (ALPHA * v) ** 2)
"""

# FGI304: a base class nested in a class cannot be copied into the isolated module.
HOLDER = """\
import torch


class Holder:
    class Base(torch.autograd.Function):
        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output / (1.0 + 10.0 * x.abs()) ** 2
"""
DERIVED = """\
from base import Holder


class Spike(Holder.Base):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()


def fire(v):
    return Spike.apply(v)
"""

JVP = "@staticmethod\ndef jvp(ctx, x_t):\n    return x_t * 2.0\n\n"
SENSITIVITY = """\
import torch


def directional_derivative(fn, x, direction):
    return torch.func.jvp(fn, (x,), (direction,))[1]
"""
PENALTY = """\
import torch


def penalty(loss, x):
    (g,) = torch.autograd.grad(loss, x, create_graph=True)
    return g.pow(2).sum()
"""

CASES: dict[str, Case] = {
    # ---- notes --------------------------------------------------------------------------------
    "FGI001": Case(
        {
            "spikes.py": spike(
                forward="ctx.save_for_backward(x, w)\nreturn x @ w",
                backward="x, w = ctx.saved_tensors\n"
                "return grad_output @ w.t(), x.t() @ grad_output",
                params="x, w",
                call="",
            )
        }
    ),
    "FGI002": Case({"spikes.py": "# @generated by a tool\n" + STEP}),
    "FGI003": Case({"spikes.py": WITHOUT_CALL}),
    "FGI007": Case({"spikes.py": STEP.replace(CLASS_LINE, CLASS_LINE + "  # fgi: skip")}),
    "FGI008": Case({"own.py": STEP}, {}, link_outside),
    "FGI010": Case({"cells.ipynb": notebook([*CELLS, "%%bash\necho Spike.apply"])}),
    # ---- Functions that cannot be expressed ---------------------------------------------------
    "FGI101": Case(
        {"spikes.py": spike("(x,) = ctx.saved_tensors\nreturn grad_output * x / x.abs().sum()")}
    ),
    "FGI102": Case({"spikes.py": spike("(x,) = ctx.saved_tensors\nreturn grad_output.abs() * x")}),
    "FGI103": Case({"spikes.py": RANDOM}),
    "FGI104": Case(
        {
            "spikes.py": spike(
                "return grad_output",
                forward="ctx.save_for_backward(x)\nreturn (x > 0).float(), x",
            )
        }
    ),
    "FGI105": Case(
        {
            "spikes.py": spike(
                "(x,) = ctx.saved_tensors\nreturn grad_output * ctx.shape(x), None",
                forward="ctx.save_for_backward(x)\nctx.shape = shape\nreturn (x > 0).float()",
                params="x, shape",
                call="def fire(v, shape):\n    return Spike.apply(v, shape)",
            )
        }
    ),
    "FGI106": Case(
        {
            "spikes.py": spike(
                "return grad_output",
                forward="global CALLS\nCALLS += 1\nreturn (x > 0).float()",
            )
        }
    ),
    "FGI107": Case({"spikes.py": spike("""
                (x,) = ctx.saved_tensors
                while x.abs().max() > 1:
                    x = x / 2
                return grad_output * x
                """)}),
    "FGI108": Case({"spikes.py": spike("(x,) = ctx.saved_tensors\nreturn grad_output * SLOPE(x)")}),
    "FGI109": Case(
        {
            "spikes.py": spike(
                "(x,) = ctx.saved_tensors\nreturn grad_output * x",
                params="x, th",
                call="def fire(v, th):\n    return Spike.apply(v, th)",
            )
        }
    ),
    "FGI110": Case(
        {"spikes.py": spike("return grad_output", forward="ctx.save_for_backward(x)\nreturn x > 0")}
    ),
    "FGI111": Case({"spikes.py": FACTORY.format(setter="    FactorySpike.k = alpha\n")}),
    "FGI112": Case({"spikes.py": SHIFT}),
    "FGI113": Case(
        {
            "spikes.py": spike(
                "(x,) = ctx.saved_tensors\nreturn grad_output * Spike.k / (1 + x.abs())",
                body="k = 2.0\n\n",
            )
            + "\n\ndef configure(k):\n    Spike.k = k\n"
        }
    ),
    # ---- call sites ---------------------------------------------------------------------------
    "FGI201": Case(
        {"spikes.py": spike(call="def fire(v, spike_fn):\n    return spike_fn.apply(v)")}
    ),
    "FGI202": Case({"spikes.py": spike(call="def fire(v):\n    return Spike()(v)")}),
    "FGI203": Case({"spikes.py": spike(call="def fire(v):\n    return Spike.apply(v, 1.0)")}),
    "FGI204": Case(
        {
            "spikes.py": spike(
                "(x,) = ctx.saved_tensors\nreturn grad_output / (1.0 + 10.0 * abs(x)) ** 2",
                call="def fire(v, abs=False):\n    return Spike.apply(v)",
            )
        }
    ),
    # model.py imports the Function only inside a function, since surrogate.py imports model:
    # reading surrogate.ALPHA from model.py would need a new import cycle.
    "FGI205": Case(
        {
            "surrogate.py": "import model\n" + ATAN,
            "model.py": "def step(x):\n    from surrogate import ATan\n\n"
            "    return ATan.apply(x)\n",
        }
    ),
    # The use of the refused Function is left; the file is rewritten for the other surrogate.
    "FGI206": Case({"spikes.py": RANDOM + "\n\n" + GOOD}),
    # ---- verification -------------------------------------------------------------------------
    "FGI301": Case({"spikes.py": STEP}, {"verify": "grad"}, stub_child(grad=False)),
    "FGI302": Case({"spikes.py": STEP}, {"verify": "script"}, stub_child(script=False)),
    "FGI303": Case({"spikes.py": STEP}, {"verify": "grad", "allow_unverified": True}, no_torch),
    "FGI304": Case(
        {"base.py": HOLDER, "spikes.py": DERIVED},
        {"verify": "grad", "allow_unverified": True},
        stub_child(),
    ),
    "FGI305": Case({"spikes.py": STEP}, {"verify": "grad"}, no_torch),
    "FGI306": Case(
        {"spikes.py": STEP},
        {"verify": "script", "allow_unscriptable": True},
        stub_child(script=False),
    ),
    "FGI307": Case({"spikes.py": STEP}, {"verify": "grad", "plot": "plots"}, no_torch),
    "FGI308": Case(
        {"spikes.py": STEP + "\n\nclass Net(torch.nn.Module):\n    pass\n"},
        {"verify": "grad", "verify_modules": True},
        module_regression,
    ),
    # Said once per run, for two surrogates in two files.
    "FGI309": Case(
        {"spikes.py": STEP, "other.py": STEP.replace("Spike", "Other")},
        {"verify": "grad"},
        no_torch,
        count=1,
    ),
    # ---- the emitted form ---------------------------------------------------------------------
    "FGI401": Case({"spikes.py": STEP, "train.py": PENALTY}),
    "FGI402": Case({"spikes.py": STEP}, {"exact_higher_order": True}),
    "FGI403": Case({"spikes.py": spike(body=JVP), "sensitivity.py": SENSITIVITY}),
    # ---- files --------------------------------------------------------------------------------
    "FGI901": Case({"spikes.py": "def fire(v:\n    return v\n"}),
    "FGI902": Case({"spikes.py": STEP}, {}, read_only),
    "FGI910": Case({"cells.ipynb": notebook(CELLS)}, {}, cells_lost),
    "FGI911": Case({"cells.ipynb": notebook([*CELLS, "%timeit Spike.apply(v)"])}),
}


def test_every_code_has_a_case() -> None:
    assert sorted(ALL_CODES) == sorted(CASES), "a code without a case, or a case without a code"


@contextmanager
def project(tmp_path: Path, files: dict[str, str | bytes]) -> Iterator[Path]:
    root = tmp_path / "project"
    root.mkdir()
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (root / name).write_bytes(content)
        else:
            (root / name).write_text(content)
    (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    try:
        yield root
    finally:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def report_of(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Report:
    with project(tmp_path, case.files) as root:
        options = {"verify": "none", **case.options}
        if "plot" in options:
            options["plot"] = tmp_path / str(options["plot"])
        if case.setup is not None:
            case.setup(root, monkeypatch)
        return run([root], Options(**options))


@pytest.mark.parametrize("code", sorted(CASES))
def test_code_is_reported(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[code]
    report = report_of(case, tmp_path, monkeypatch)
    found = [d.code.code for d in report.diagnostics]
    shown = "\n".join(d.render() for d in report.diagnostics_sorted())
    assert code in found, shown
    if case.count is not None:
        assert found.count(code) == case.count, shown


@pytest.mark.parametrize(
    "setter",
    [
        "    FactorySpike.k = alpha\n",
        "    setattr(FactorySpike, 'k', alpha)\n",
        "    type(FactorySpike()).k = alpha\n",
    ],
)
def test_the_example_of_fgi111(
    setter: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FGI111's own example: the class attribute a factory sets on the class it builds, through
    its local name, setattr or type(...), is not inlined."""
    case = Case({"spikes.py": FACTORY.format(setter=setter)})
    report = report_of(case, tmp_path, monkeypatch)
    assert "FGI111" in [d.code.code for d in report.diagnostics]
