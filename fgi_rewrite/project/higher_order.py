"""Where a project may differentiate a surrogate's gradient: the higher-order scan.

The default FGI form builds its gradient from detached tensors, so a second derivative through
it is zero (or ``None``), where an original ``backward`` written in torch ops gives ``g'(x)``;
and its ``x.requires_grad`` guard drops forward-mode tangents. The scan finds what needs more:

* reverse-over-reverse: ``create_graph`` passed and not literally ``False``/``None`` (any call:
  ``torch.autograd.grad``, ``.backward``, ``torch.autograd.functional.jacobian``...), also as
  the positional argument of ``torch.autograd.grad``/``backward`` (and a literal ``True`` as
  the third argument of a ``.backward`` method: ``t.backward(g, True, True)``);
  ``torch.autograd.functional.hessian``/``hvp``/``vhp``/``jvp`` (the last two differentiate the
  backward); ``gradgradcheck``; the reverse-mode transforms of ``torch.func``/``functorch``
  (``grad``, ``grad_and_value``, ``vjp``, ``jacrev``), which compose, so that one of them may
  be nested in another anywhere in the project;
* forward mode: ``torch.func``/``functorch`` ``jvp``, ``jacfwd``, ``linearize``, ``hessian``
  (forward over reverse), ``torch.autograd.forward_ad``, ``strategy="forward-mode"`` and
  ``check_forward_ad=True``.

"Reachable" is project-wide: a use anywhere in the project counts for every surrogate the run
rewrites. Models, losses and penalty helpers are passed around as values (``penalty(net, x)``,
a config naming the model class, a checkpoint), so which rewritten call a use differentiates
is not decidable from the text; a finer rule would miss some. A use on a line marked
``# fgi: skip`` is not counted (the user says it never reaches a surrogate).

Cheap, once per run: a substring test on the text of every project file (which the index reads
anyway), then the stdlib AST (cached by the index) of the few files that pass, and import
aliases resolved per file (``from torch.func import grad as g``, ``import torch.autograd.
functional as AF``). Nothing is imported or executed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fgi_rewrite.core.model import Location, shown_path
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.skips import skip_lines
from fgi_rewrite.project.source_module import SourceError

# A file can only hold a use if its text has one of these (``import func``: ``from torch import
# func``): plain substrings first (fast), then the same with word boundaries (``torch.functional``
# and ``feed_forward_adjoint`` are not uses).
_TOKENS = (
    "create_graph",
    "gradgradcheck",
    "torch.func",
    "import func",
    "functorch",
    "hessian",
    "hvp",
    "vhp",
    "jvp",
    "vjp",
    "jacfwd",
    "jacrev",
    "linearize",
    "forward_ad",
    "grad_and_value",
)
_PREFILTER = re.compile(
    r"create_graph|gradgradcheck|torch\.func\b|import func\b|functorch|hessian|\bhvp\b"
    r"|\bvhp\b|\bjvp\b|\bvjp\b|jacfwd|jacrev|linearize|\bforward_ad\b|grad_and_value"
)
# Otherwise only a positional create_graph is left: a ``grad(``/``backward(`` call with at least
# three arguments (``t.backward(g, True, True)``, ``torch.autograd.grad(l, x, None, True, True)``).
_LONG_CALL = re.compile(r"\b(?:grad|backward)\(")

_TRANSFORM_ROOTS = ("torch.func", "functorch")
_REVERSE_TRANSFORMS = ("grad", "grad_and_value", "vjp", "jacrev")
_FORWARD_TRANSFORMS = ("jvp", "jacfwd", "linearize", "hessian")
_REVERSE = frozenset(
    {f"{root}.{name}" for root in _TRANSFORM_ROOTS for name in _REVERSE_TRANSFORMS}
    | {
        f"torch.autograd.functional.{name}" for name in ("hessian", "hvp", "vhp", "jvp")
    }  # jvp and vhp by the double-backward trick
    | {"torch.autograd.gradgradcheck", "torch.autograd.gradcheck.gradgradcheck"}
)
_FORWARD = frozenset(
    {f"{root}.{name}" for root in _TRANSFORM_ROOTS for name in _FORWARD_TRANSFORMS}
)
_FORWARD_MODULES = ("torch.autograd.forward_ad",)  # any name of it
# The modules whose ``import *`` may bind one of the names above.
_STAR_MODULES = frozenset(
    {*_TRANSFORM_ROOTS, "torch.autograd.functional", "torch.autograd", *_FORWARD_MODULES}
)
# Where ``create_graph`` is a positional parameter: its index.
_CREATE_GRAPH_POSITION = {"torch.autograd.grad": 4, "torch.autograd.backward": 3}
_TENSOR_BACKWARD_POSITION = 2
_STRATEGY_TAKERS = frozenset(
    {"torch.autograd.functional.jacobian", "torch.autograd.functional.hessian"}
)  # ``t.backward(gradient, retain_graph, create_graph)``


@dataclass(frozen=True)
class HigherOrderUse:
    location: Location
    what: str  # as shown: ``torch.autograd.grad(create_graph=True)``, ``torch.func.hessian``
    forward_mode: bool = False

    def render(self, root: Path | None = None) -> str:
        path = self.location.path
        shown = shown_path(path, root) if root is not None else str(path)
        return f"{shown}:{self.location.line}: {self.what}"


@dataclass(frozen=True)
class HigherOrderUses:
    """The uses found in a project, in path and line order."""

    uses: tuple[HigherOrderUse, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.uses)

    @property
    def forward_mode(self) -> tuple[HigherOrderUse, ...]:
        return tuple(u for u in self.uses if u.forward_mode)

    def summary(self, root: Path | None = None, uses: Iterable[HigherOrderUse] = ()) -> str:
        """The first use, and how many more: ``train.py:12: torch.autograd.grad(create_graph=
        True) and 2 more``."""
        chosen = tuple(uses) or self.uses
        if not chosen:
            return ""
        more = f" and {len(chosen) - 1} more" if len(chosen) > 1 else ""
        return chosen[0].render(root) + more


def scan_project(index: ProjectIndex, paths: Iterable[Path]) -> HigherOrderUses:
    """Every higher-order use in the files ``paths`` (the project), read through ``index``."""
    found: list[HigherOrderUse] = []
    for path in sorted(paths):
        text = index.text(path)
        if not _may_use(text):
            continue
        try:
            tree = index.ast_tree(path)
        except SourceError:
            continue  # a file Python cannot read differentiates nothing
        skipped = skip_lines(text)
        found.extend(u for u in uses_in(tree, path) if u.location.line not in skipped)
    return HigherOrderUses(tuple(found))


def _may_use(text: str) -> bool:
    if any(token in text for token in _TOKENS) and _PREFILTER.search(text):
        return True
    return ("grad(" in text or "backward(" in text) and any(
        _arguments_at_least(text, match.end(), 3) for match in _LONG_CALL.finditer(text)
    )


def _arguments_at_least(text: str, start: int, count: int) -> bool:
    """Whether the call whose arguments start at ``start`` has ``count`` arguments or more (top-
    level commas; brackets nest; a bracket in a string may end the count early)."""
    depth = commas = 0
    for char in text[start : start + 4000]:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                return False
            depth -= 1
        elif char == "," and depth == 0:
            commas += 1
            if commas >= count - 1:
                return True
    return False


def uses_in(tree: ast.Module, path: Path) -> list[HigherOrderUse]:
    """The higher-order uses of one parsed file."""
    finder = _Finder(path, _aliases(tree))
    finder.visit(tree)
    return sorted(finder.found, key=lambda u: (u.location.line, u.location.column, u.what))


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> the dotted name it is imported as, from every import of the file (a name
    imported in a function counts everywhere: a wider net, never a narrower one)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _is_off(node: ast.expr) -> bool:
    """``False``/``None``: the literal values that turn create_graph off."""
    return isinstance(node, ast.Constant) and node.value in (False, None)


class _Finder(ast.NodeVisitor):
    def __init__(self, path: Path, aliases: dict[str, str]) -> None:
        self.path = path
        self.aliases = aliases
        self.found: list[HigherOrderUse] = []

    def add(self, node: ast.AST, what: str, forward_mode: bool = False) -> None:
        location = Location(
            self.path, getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
        )
        self.found.append(HigherOrderUse(location, what, forward_mode))

    def dotted(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            target = self.aliases.get(node.id)
            if target is None and node.id in ("torch", "functorch"):
                return node.id  # used without an import we saw: still torch
            return target
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base is not None else None
        return None

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return
        for alias in node.names:
            if alias.name == "*" and node.module in _STAR_MODULES:
                self.add(node, f"from {node.module} import *", node.module in _FORWARD_MODULES)
            else:
                self.reference(node, f"{node.module}.{alias.name}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name in _FORWARD_MODULES:
                self.add(node, f"import {alias.name}", forward_mode=True)

    def visit_Name(self, node: ast.Name) -> None:
        name = self.dotted(node)
        if name is not None and name != node.id:  # an imported alias, not ``torch`` itself
            self.reference(node, name)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = self.dotted(node)
        if name is None or not self.reference(node, name):
            self.generic_visit(node)

    def reference(self, node: ast.AST, name: str) -> bool:
        """Record ``name`` if it is a higher-order API (a whole chain counts once)."""
        if name in _REVERSE:
            self.add(node, name)
            return True
        if name in _FORWARD or any(name.startswith(m + ".") for m in _FORWARD_MODULES):
            self.add(node, name, forward_mode=True)
            return True
        return False

    def visit_Call(self, node: ast.Call) -> None:
        callee = self.dotted(node.func) or _short(node.func)
        for keyword in node.keywords:
            if keyword.arg == "create_graph" and not _is_off(keyword.value):
                self.add(node, f"{callee}(create_graph={_short(keyword.value)})")
            elif (
                callee in _STRATEGY_TAKERS
                and keyword.arg in ("strategy", "outer_jacobian_strategy")
                and _says_forward(keyword.value)
            ):
                self.add(node, f"{callee}({keyword.arg}='forward-mode')", forward_mode=True)
            elif keyword.arg == "check_forward_ad" and not _is_off(keyword.value):
                self.add(node, f"{callee}(check_forward_ad=...)", forward_mode=True)
        self.positional_create_graph(node, callee)
        self.generic_visit(node)

    def positional_create_graph(self, node: ast.Call, callee: str) -> None:
        """``torch.autograd.grad(l, x, g, r, flag)`` with any value but False/None; for a
        ``.backward`` method (any object's: a surrogate's own ``backward(x, grad, alpha)`` is
        no use) only the literal ``True``, ``t.backward(g, True, True)``."""
        if any(isinstance(a, ast.Starred) for a in node.args):
            return
        position = _CREATE_GRAPH_POSITION.get(callee)
        if position is not None:
            on = len(node.args) > position and not _is_off(node.args[position])
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "backward":
            position = _TENSOR_BACKWARD_POSITION
            on = len(node.args) > position and _is_true(node.args[position])
        else:
            return
        if on:
            self.add(node, f"{callee}(..., {_short(node.args[position])}): create_graph")


def _is_true(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _says_forward(node: ast.expr) -> bool:
    return not (isinstance(node, ast.Constant) and node.value != "forward-mode")


def _short(node: ast.expr) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 40 else text[:37] + "..."
