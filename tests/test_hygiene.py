"""Name hygiene (issue 14): every free name of inserted code means at the call site what it means
in the Function's module; shadowed module names get a private alias, what cannot be aliased is
refused (FGI204), a module that cannot be reached is refused (FGI205)."""

from __future__ import annotations

from pathlib import Path

from fgi_rewrite import Options, run
from fgi_rewrite.core import codes
from fgi_rewrite.pipeline.report import Report

SURROGATE = """\
import math

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
        return grad_output * ALPHA / 2 / (1 + (math.pi / 2 * ALPHA * abs(v)) ** 2)
"""


def rewrite(tmp_path: Path, caller: str, style: str = "inline", **files: str) -> Report:
    (tmp_path / "surrogate.py").write_text(files.pop("surrogate", SURROGATE))
    (tmp_path / "model.py").write_text(caller)
    for name, text in files.items():
        (tmp_path / f"{name}.py").write_text(text)
    return run([tmp_path], Options(verify="none", style=style))


def codes_of(report: Report) -> list[str]:
    return [d.code.code for d in report.diagnostics if d.code.code.startswith("FGI2")]


def test_a_local_torch_gets_an_alias_and_keeps_its_own_meaning(tmp_path: Path) -> None:
    caller = (
        "import torch\n\nfrom surrogate import ATan\n\n\n"
        "def step(x):\n    torch = x * 2\n    return ATan.apply(torch - 1.0)\n"
    )
    report = rewrite(tmp_path, caller)
    text = (tmp_path / "model.py").read_text()
    assert "import torch as _fgi_torch\n" in text
    assert "_fgi_v = torch - 1.0" in text  # the user's torch, moved as it was
    assert "_fgi_torch.addcmul(" in text and " torch.addcmul(" not in text
    assert not codes_of(report)


def test_an_argument_named_like_an_inserted_name_is_moved_first(tmp_path: Path) -> None:
    caller = (
        "from surrogate import ATan\n\n\n"
        "def step(x):\n    torch = x * 2\n    return ATan.apply(torch)\n"
    )
    rewrite(tmp_path, caller)
    text = (tmp_path / "model.py").read_text()
    assert "_fgi_v = torch\n" in text and "_fgi_torch.is_grad_enabled()" in text


def test_a_caller_that_binds_math_to_numpy_keeps_it(tmp_path: Path) -> None:
    caller = (
        "import numpy as math\n\nfrom surrogate import ATan\n\n\n"
        "def step(x):\n    return ATan.apply(x)\n"
    )
    rewrite(tmp_path, caller)
    text = (tmp_path / "model.py").read_text()
    assert "import math\n" not in text and "import math as _fgi_math\n" in text
    assert "_fgi_math.pi" in text and "import numpy as math\n" in text


def test_a_parameter_named_math_gets_an_alias(tmp_path: Path) -> None:
    caller = (
        "import math\n\nfrom surrogate import ATan\n\n\n"
        "def step(x, math='exact'):\n    return ATan.apply(x)\n"
    )
    rewrite(tmp_path, caller)
    text = (tmp_path / "model.py").read_text()
    assert "import math as _fgi_math\n" in text and "_fgi_math.pi" in text


def test_an_import_of_torch_in_the_function_is_enough(tmp_path: Path) -> None:
    caller = (
        "from surrogate import ATan\n\n\n"
        "def step(x):\n    import torch\n\n    return ATan.apply(torch.relu(x))\n"
    )
    rewrite(tmp_path, caller)
    text = (tmp_path / "model.py").read_text()
    assert "_fgi_torch" not in text and "torch.addcmul(" in text


def test_a_shadowed_builtin_is_refused(tmp_path: Path) -> None:
    caller = "from surrogate import ATan\n\n\ndef step(x, abs=None):\n    return ATan.apply(x)\n"
    report = rewrite(tmp_path, caller)
    assert codes_of(report) == ["FGI204"]
    assert "ATan.apply(x)" in (tmp_path / "model.py").read_text()


def test_a_shadowed_global_of_the_functions_module_is_refused(tmp_path: Path) -> None:
    caller = "import surrogate\n"
    source = SURROGATE + "\n\ndef fire(v, ALPHA=1.0):\n    return ATan.apply(v)\n"
    report = rewrite(tmp_path, caller, surrogate=source)
    assert codes_of(report) == ["FGI204"]
    assert [d.code for d in report.diagnostics if d.code is codes.ShadowedName]
    assert "return ATan.apply(v)" in (tmp_path / "surrogate.py").read_text()


def test_the_state_of_another_module_is_read_through_an_import(tmp_path: Path) -> None:
    caller = "from surrogate import ATan\n\n\ndef step(x):\n    return ATan.apply(x)\n"
    rewrite(tmp_path, caller)
    text = (tmp_path / "model.py").read_text()
    assert "import surrogate\n" in text and "surrogate.ALPHA" in text


def test_an_existing_import_of_the_module_is_reused(tmp_path: Path) -> None:
    caller = "import surrogate as s\n\n\ndef step(x):\n    return s.ATan.apply(x)\n"
    rewrite(tmp_path, caller)
    text = (tmp_path / "model.py").read_text()
    assert text.count("import surrogate") == 1 and "s.ALPHA" in text


def test_within_a_package_the_import_is_relative(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "surrogate.py").write_text(SURROGATE)
    (package / "model.py").write_text(
        "from .surrogate import ATan\n\n\ndef step(x):\n    return ATan.apply(x)\n"
    )
    run([tmp_path], Options(verify="none"))
    text = (package / "model.py").read_text()
    assert "from . import surrogate\n" in text and "surrogate.ALPHA" in text


def test_an_import_that_would_create_a_cycle_is_refused(tmp_path: Path) -> None:
    source = SURROGATE.replace("import torch\n", "import torch\n\nimport model\n", 1)
    caller = "def step(x):\n    from surrogate import ATan\n\n    return ATan.apply(x)\n"
    report = rewrite(tmp_path, caller, surrogate=source)
    assert codes_of(report) == ["FGI205"]
    assert "import surrogate" not in (tmp_path / "model.py").read_text().split("def step")[0]


def test_an_existing_cycle_is_no_new_one(tmp_path: Path) -> None:
    source = SURROGATE.replace("import torch\n", "import torch\n\nimport model\n", 1)
    caller = "from surrogate import ATan\n\n\ndef step(x):\n    return ATan.apply(x)\n"
    report = rewrite(tmp_path, caller, surrogate=source)
    assert not codes_of(report)
    assert "surrogate.ALPHA" in (tmp_path / "model.py").read_text()


def test_a_generated_function_whose_parameter_shadows_a_global_is_refused(
    tmp_path: Path,
) -> None:
    # The forward takes an input named like the global its backward reads.
    source = SURROGATE.replace("def forward(ctx, v):", "def forward(ctx, v, ALPHA=1.0):").replace(
        "ALPHA * abs(v)) ** 2)", "ALPHA * abs(v)) ** 2), None"
    )
    caller = "from surrogate import ATan\n\n\ndef step(x):\n    return ATan.apply(x)\n"
    report = rewrite(tmp_path, caller, style="function", surrogate=source)
    assert codes_of(report) == ["FGI204"]
    assert "ATan.apply(x)" in (tmp_path / "model.py").read_text()
