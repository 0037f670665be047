"""Run-time state stays run-time (issue 14): a value the Function reads from module, class or
container state is inlined only when the project provably never changes it; else the rewrite
reads it where the original does. One test per rule of ``project/rebinding.py`` and
``analysis/state.py``: each project differs from a constant one by a single write."""

from __future__ import annotations

from pathlib import Path

import pytest

from fgi_rewrite.analysis.analyze import analyze
from fgi_rewrite.core import codes
from fgi_rewrite.core.model import Diagnostic, Surrogate
from fgi_rewrite.project.index import ProjectIndex

SURROGATE = """\
import math
import torch

WIDTH = 0.5
SLOPES = [2.0, 4.0]
HYPER = {"k": 2.0}


class Box(torch.autograd.Function):
    scale = 3.0

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (v,) = ctx.saved_tensors
        return grad_output * (v.abs() < {read}).float()
"""


def analysis(tmp_path: Path, read: str, **files: str) -> Surrogate:
    (tmp_path / "surrogate.py").write_text(SURROGATE.replace("{read}", read))
    for name, text in files.items():
        (tmp_path / f"{name}.py").write_text(text)
    index = ProjectIndex(tmp_path, sorted(tmp_path.rglob("*.py")))
    (info,) = index.function_classes_in(tmp_path / "surrogate.py")
    result = analyze(index, info)
    assert isinstance(result, Surrogate), result
    return result


def reads(result: Surrogate) -> list[str]:
    return [code for code, _ in result.reads]


# ---- module globals --------------------------------------------------------------------------


def test_a_global_nothing_rebinds_is_inlined(tmp_path: Path) -> None:
    result = analysis(tmp_path, "WIDTH", train="import surrogate\nprint(surrogate.WIDTH)\n")
    assert reads(result) == []
    assert "0.5" in _code(result)


@pytest.mark.parametrize(
    "train",
    [
        "import surrogate\nsurrogate.WIDTH = 2.0\n",
        "import surrogate as s\n\ndef f(w):\n    s.WIDTH = w\n",
        "from surrogate_pkg import surrogate\n",  # no write: the control
        "import surrogate\nsurrogate.WIDTH += 1.0\n",
        "import surrogate\nsetattr(surrogate, 'WIDTH', 1.0)\n",
        "import surrogate\n\ndef f(name, v):\n    setattr(surrogate, name, v)\n",
        "import surrogate\nvars(surrogate)['WIDTH'] = 1.0\n",
        "import surrogate\nsurrogate.__dict__['WIDTH'] = 1.0\n",
        "import importlib\nimportlib.import_module('surrogate').WIDTH = 1.0\n",
        "import sys\n\ndef f():\n    m = sys.modules['surrogate']\n    m.WIDTH = 1.0\n",
        "import surrogate\n\ndef configure(obj, **kw):\n    for k, v in kw.items():\n"
        "        setattr(obj, k, v)\n\nconfigure(surrogate, WIDTH=1.0)\n",
    ],
)
def test_a_global_written_from_another_file_is_read_at_run_time(tmp_path: Path, train: str) -> None:
    result = analysis(tmp_path, "WIDTH", train=train)
    if "surrogate_pkg" in train:
        assert reads(result) == []
    else:
        assert reads(result) == ["__fgi_module__('surrogate').WIDTH"]
        assert result.reads[0][1] == "0.5"  # its initial value, for verification


def test_a_global_rebound_through_a_package_alias_is_read_at_run_time(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "surrogate.py").write_text(SURROGATE.replace("{read}", "WIDTH"))
    (tmp_path / "train.py").write_text("from pkg import surrogate as s\ns.WIDTH = 2.0\n")
    index = ProjectIndex(tmp_path, sorted(tmp_path.rglob("*.py")))
    (info,) = index.function_classes_in(package / "surrogate.py")
    result = analyze(index, info)
    assert isinstance(result, Surrogate)
    assert reads(result) == ["__fgi_module__('pkg.surrogate').WIDTH"]


@pytest.mark.parametrize(
    "extra",
    [
        "\n\ndef set_width(w):\n    global WIDTH\n    WIDTH = w\n",
        "\n\ndef reset():\n    globals()['WIDTH'] = 0.1\n",
        "\nWIDTH = 0.25\n",  # bound twice at module level
        "\nif math.pi > 3:\n    WIDTH = 0.25\n",
    ],
)
def test_a_global_the_module_itself_rebinds_is_read_at_run_time(tmp_path: Path, extra: str) -> None:
    (tmp_path / "surrogate.py").write_text(SURROGATE.replace("{read}", "WIDTH") + extra)
    index = ProjectIndex(tmp_path, [tmp_path / "surrogate.py"])
    (info,) = index.function_classes_in(tmp_path / "surrogate.py")
    result = analyze(index, info)
    assert isinstance(result, Surrogate)
    assert reads(result) == ["__fgi_module__('surrogate').WIDTH"]


def test_reading_globals_is_not_writing_them(tmp_path: Path) -> None:
    extra = "\n\ndef show():\n    return globals().get('WIDTH'), globals()['WIDTH']\n"
    (tmp_path / "surrogate.py").write_text(SURROGATE.replace("{read}", "WIDTH") + extra)
    index = ProjectIndex(tmp_path, [tmp_path / "surrogate.py"])
    (info,) = index.function_classes_in(tmp_path / "surrogate.py")
    result = analyze(index, info)
    assert isinstance(result, Surrogate) and reads(result) == []


def test_a_module_passed_to_a_function_that_only_reads_it_stays_constant(tmp_path: Path) -> None:
    train = (
        "import surrogate\n\n\ndef describe(module):\n"
        "    return {k: v for k, v in vars(module).items()}, getattr(module, 'WIDTH')\n\n\n"
        "def bad(obj, name):\n    setattr(obj, name, 1.0)\n\n\n"
        "describe(surrogate)\n"
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert reads(analysis(tmp_path / "a", "WIDTH", train=train)) == []
    written = train.replace("describe(surrogate)", "bad(surrogate, 'WIDTH')")
    assert reads(analysis(tmp_path / "b", "WIDTH", train=written))


@pytest.mark.parametrize(
    "value, inlined",
    [
        ("0.5", True),
        ("math.sqrt(2.0) / 4", True),
        ("1 / 2", True),
        ("float(__import__('os').environ.get('W', 0.5))", False),
        ("torch.tensor(0.5)", False),
    ],
)
def test_a_value_computed_from_the_environment_or_a_call_is_read_at_run_time(
    tmp_path: Path, value: str, inlined: bool
) -> None:
    source = SURROGATE.replace("WIDTH = 0.5", f"WIDTH = {value}").replace("{read}", "WIDTH")
    (tmp_path / "surrogate.py").write_text(source)
    index = ProjectIndex(tmp_path, [tmp_path / "surrogate.py"])
    (info,) = index.function_classes_in(tmp_path / "surrogate.py")
    result = analyze(index, info)
    assert isinstance(result, Surrogate)
    assert (reads(result) == []) is inlined


# ---- class attributes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "train, written",
    [
        ("from surrogate import Box\nprint(Box.scale)\n", False),
        ("from surrogate import Box\nBox.scale = 1.0\n", True),
        ("from surrogate import Box as B\n\ndef f(v):\n    B.scale = v\n", True),
        ("import surrogate\nsurrogate.Box.scale = 1.0\n", True),
        ("from surrogate import Box\n\ndef f(n, v):\n    setattr(Box, n, v)\n", True),
        ("class A:\n    def f(self, v):\n        type(self).scale = v\n", True),
        ("class A:\n    def f(self, v):\n        self.__class__.scale = v\n", True),
        ("class A:\n    def f(self, v):\n        self.scale = v\n", False),  # an instance
        ("class Other:\n    scale = 1.0\n\nOther.scale = 2.0\n", False),  # another class
        (
            "from surrogate import Box\n\ndef put(obj, v):\n    obj.scale = v\n\nput(Box, 1.0)\n",
            True,
        ),
    ],
)
def test_class_attributes(tmp_path: Path, train: str, written: bool) -> None:
    result = analysis(tmp_path, "Box.scale", train=train)
    assert reads(result) == (["__fgi_module__('surrogate').Box.scale"] if written else [])


def test_a_classmethod_of_the_class_writing_cls_counts(tmp_path: Path) -> None:
    source = SURROGATE.replace("{read}", "Box.scale").replace(
        "    scale = 3.0\n",
        "    scale = 3.0\n\n    @classmethod\n    def configure(cls, s):\n        cls.scale = s\n",
    )
    (tmp_path / "surrogate.py").write_text(source)
    index = ProjectIndex(tmp_path, [tmp_path / "surrogate.py"])
    (info,) = index.function_classes_in(tmp_path / "surrogate.py")
    result = analyze(index, info)
    assert isinstance(result, Surrogate)
    assert reads(result) == ["__fgi_module__('surrogate').Box.scale"]


# ---- containers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "train, changed",
    [
        ("from surrogate import SLOPES\nprint(SLOPES[0], len(SLOPES))\n", False),
        ("from surrogate import SLOPES\nSLOPES[0] = 0.5\n", True),
        ("import surrogate\nsurrogate.SLOPES[0] = 0.5\n", True),
        ("from surrogate import SLOPES\nSLOPES.append(0.5)\n", True),
        ("from surrogate import SLOPES\nSLOPES += [0.5]\n", True),
        ("from surrogate import SLOPES\n\ndef f(x):\n    x[0] = 1\n\nf(SLOPES)\n", True),
        ("from surrogate import SLOPES\nkeep = SLOPES\n", True),
    ],
)
def test_list_entries(tmp_path: Path, train: str, changed: bool) -> None:
    result = analysis(tmp_path, "SLOPES[0]", train=train)
    assert reads(result) == (["__fgi_module__('surrogate').SLOPES[0]"] if changed else [])
    if changed:
        assert result.reads[0][1] == "2.0"


def test_dict_entries(tmp_path: Path) -> None:
    assert reads(analysis(tmp_path, 'HYPER["k"]')) == []
    changed = analysis(
        tmp_path, 'HYPER["k"]', train="from surrogate import HYPER\nHYPER['k'] = 1\n"
    )
    assert reads(changed) == ["__fgi_module__('surrogate').HYPER[\"k\"]"]


# ---- objects ----------------------------------------------------------------------------------


def test_a_config_object_is_read_at_run_time(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(
        "from types import SimpleNamespace\n\ncfg = SimpleNamespace(width=0.5)\n"
    )
    source = SURROGATE.replace("{read}", "cfg.width").replace(
        "import torch\n", "import torch\n\nfrom config import cfg\n", 1
    )
    (tmp_path / "surrogate.py").write_text(source)
    index = ProjectIndex(tmp_path, sorted(tmp_path.rglob("*.py")))
    (info,) = index.function_classes_in(tmp_path / "surrogate.py")
    result = analyze(index, info)
    assert isinstance(result, Surrogate)
    assert reads(result) == ["__fgi_module__('surrogate').cfg.width"]


def test_a_method_of_run_time_state_is_a_callable_hyperparameter(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(
        "class C:\n    def width(self):\n        return 0.5\n\ncfg = C()\n"
    )
    source = SURROGATE.replace("{read}", "cfg.width()").replace(
        "import torch\n", "import torch\n\nfrom config import cfg\n", 1
    )
    (tmp_path / "surrogate.py").write_text(source)
    index = ProjectIndex(tmp_path, sorted(tmp_path.rglob("*.py")))
    (info,) = index.function_classes_in(tmp_path / "surrogate.py")
    result = analyze(index, info)
    assert isinstance(result, Diagnostic) and result.code is codes.CallableHyperparameter


def test_a_default_is_the_value_when_the_def_ran(tmp_path: Path) -> None:
    source = (
        SURROGATE.replace("{read}", "width")
        .replace("def forward(ctx, v):", "def forward(ctx, v, width=WIDTH):")
        .replace(
            "ctx.save_for_backward(v)\n", "ctx.save_for_backward(v)\n        ctx.width = width\n", 1
        )
        .replace("(v.abs() < width)", "(v.abs() < ctx.width)")
        .replace(
            "return grad_output * (v.abs() < ctx.width).float()",
            "return grad_output * (v.abs() < ctx.width).float(), None",
        )
    )
    source += "\n\ndef set_width(w):\n    global WIDTH\n    WIDTH = w\n"
    (tmp_path / "surrogate.py").write_text(source)
    index = ProjectIndex(tmp_path, [tmp_path / "surrogate.py"])
    (info,) = index.function_classes_in(tmp_path / "surrogate.py")
    result = analyze(index, info)
    assert isinstance(result, Surrogate)
    assert result.params[1].default is not None
    assert _code_of(result.params[1].default) == "0.5"  # not a read of WIDTH now


def _code(result: Surrogate) -> str:
    return " ".join(_code_of(g) for g in result.grads if g is not None)


def _code_of(node: object) -> str:
    import libcst as cst

    assert isinstance(node, cst.CSTNode)
    return cst.Module(body=[]).code_for_node(node)
