"""One parsed source file and the facts read from it, with no cross-module resolution.

Kept apart from the project index so that what a single file says (its imports, classes, single
assignments, the names each function uses and binds) can be read and tested without resolving
anything across modules. Disk access is in ``read_source`` alone; a ``SourceReader`` serves
some files (stdin) from memory instead.
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from fgi_rewrite.core.model import Location
from fgi_rewrite.project import elide
from fgi_rewrite.project.notebook import NotebookModule, locate


class SourceError(Exception):
    """A file that cannot be read or parsed."""


@dataclass(frozen=True)
class ClassInfo:
    qualname: str
    module: str
    path: Path
    node: cst.ClassDef = field(compare=False, repr=False)
    defined_in: ModuleInfo = field(compare=False, repr=False)
    # Classes defined in a class body can be reached through ``self.Name``.
    owner: ClassInfo | None = field(default=None, compare=False, repr=False)
    in_function: bool = False

    @property
    def name(self) -> str:
        return self.node.name.value

    @property
    def location(self) -> Location:
        return self.defined_in.location(self.node)

    def body_assignments(self) -> dict[str, list[cst.BaseExpression]]:
        return assignments(self.node.body.body)

    def methods(self) -> dict[str, cst.FunctionDef]:
        return {s.name.value: s for s in self.node.body.body if isinstance(s, cst.FunctionDef)}


def dotted_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = dotted_name(node.value)
        return f"{head}.{node.attr.value}" if head else None
    return None


def assignments(body: Iterable[cst.CSTNode]) -> dict[str, list[cst.BaseExpression]]:
    """Name → every value assigned to it at this level (not inside nested blocks)."""
    found: dict[str, list[cst.BaseExpression]] = {}
    for stmt in body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            if isinstance(stmt, (cst.If, cst.Try, cst.For, cst.While, cst.With)):
                # Names bound conditionally count as rebound: they are not single assignments.
                for inner in bound_names(stmt):
                    found.setdefault(inner, []).append(cst.Name("__fgi_conditional__"))
            continue
        for small in stmt.body:
            if isinstance(small, cst.Assign):
                for target in small.targets:
                    if isinstance(target.target, cst.Name):
                        found.setdefault(target.target.value, []).append(small.value)
                    for name, value in _unpacked(target.target, small.value):
                        found.setdefault(name, []).append(value)
            elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                if small.value is not None:
                    found.setdefault(small.target.value, []).append(small.value)
            elif isinstance(small, cst.AugAssign) and isinstance(small.target, cst.Name):
                found.setdefault(small.target.value, []).append(cst.Name("__fgi_augmented__"))
    return found


def _unpacked(
    target: cst.BaseExpression, value: cst.BaseExpression
) -> list[tuple[str, cst.BaseExpression]]:
    """``a, b = x, y``: each name with its own value (Python evaluates the right side first,
    and a name assigned once cannot be read there); any other unpacking binds its names to a
    value that is not known."""
    if not isinstance(target, (cst.Tuple, cst.List)):
        return []
    names = [e.value for e in target.elements]
    if (
        isinstance(value, (cst.Tuple, cst.List))
        and len(value.elements) == len(names)
        and not any(isinstance(e, cst.StarredElement) for e in (*target.elements, *value.elements))
    ):
        return [
            (n.value, e.value)
            for n, e in zip(names, value.elements, strict=True)
            if isinstance(n, cst.Name)
        ]
    unknown = cst.Name("__fgi_unpacked__")
    return [(n.value, unknown) for n in names if isinstance(n, cst.Name)]


def bound_names(node: cst.CSTNode) -> set[str]:
    """Names a statement binds, found by walking statements only (never expressions, which is
    what makes it cheap): assignment and loop targets, ``as`` names, nested defs and classes."""
    names: set[str] = set()

    def targets(target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            names.add(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                targets(element.value)
        elif isinstance(target, cst.StarredElement):
            targets(target.value)

    def walk(stmt: cst.CSTNode) -> None:
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            names.add(stmt.name.value)
            return
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Assign):
                    for t in small.targets:
                        targets(t.target)
                elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
                    targets(small.target)
                elif isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(
                    small.names, cst.ImportStar
                ):
                    for alias in small.names:
                        asname = alias.asname.name if alias.asname else alias.name
                        if isinstance(asname, cst.Name):
                            names.add(asname.value)
            return
        if isinstance(stmt, cst.For):
            targets(stmt.target)
        if isinstance(stmt, cst.With):
            for item in stmt.items:
                if item.asname is not None:
                    targets(item.asname.name)
        if isinstance(stmt, cst.ExceptHandler) and stmt.name is not None:
            targets(stmt.name.name)
        for child in stmt.children:
            if isinstance(
                child,
                (
                    cst.BaseSuite,
                    cst.BaseStatement,
                    cst.ExceptHandler,
                    cst.Else,
                    cst.Finally,
                    cst.If,
                ),
            ):
                walk(child)

    walk(node)
    return names


@dataclass(frozen=True)
class FunctionFacts:
    names: frozenset[str]  # every name used inside (to pick collision-free temporaries)
    nested_bound: frozenset[str]  # names bound inside compound statements or nested defs


class _FactsCollector(cst.CSTVisitor):
    """One pass over a module collecting, for every function, the names it uses and binds."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, set[str], set[str], int]] = []  # (id, names, bound, depth)
        self.module_names: set[str] = set()
        self.facts: dict[int, FunctionFacts] = {}
        self.block_depth = 0

    def visit_Name(self, node: cst.Name) -> None:
        self.module_names.add(node.value)
        for _, names, _, _ in self.stack:
            names.add(node.value)

    def _bind(self, name: str) -> None:
        if self.stack:
            func_id, names, bound, depth = self.stack[-1]
            if self.block_depth > depth:
                bound.add(name)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        if isinstance(node.target, cst.Name):
            self._bind(node.target.value)

    def visit_For(self, node: cst.For) -> None:
        self.block_depth += 1
        for name in sym_names(node.target):
            self._bind(name)

    def leave_For(self, original_node: cst.For) -> None:
        self.block_depth -= 1

    def visit_If(self, node: cst.If) -> None:
        self.block_depth += 1

    def leave_If(self, original_node: cst.If) -> None:
        self.block_depth -= 1

    def visit_While(self, node: cst.While) -> None:
        self.block_depth += 1

    def leave_While(self, original_node: cst.While) -> None:
        self.block_depth -= 1

    def visit_Try(self, node: cst.Try) -> None:
        self.block_depth += 1

    def leave_Try(self, original_node: cst.Try) -> None:
        self.block_depth -= 1

    def visit_With(self, node: cst.With) -> None:
        self.block_depth += 1

    def leave_With(self, original_node: cst.With) -> None:
        self.block_depth -= 1

    def visit_AsName(self, node: cst.AsName) -> None:
        if isinstance(node.name, cst.Name):
            self._bind(node.name.value)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.block_depth += 1
        self._bind(node.name.value)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.block_depth -= 1

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.block_depth += 1
        self._bind(node.name.value)
        self.stack.append((id(node), set(), set(), self.block_depth))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        func_id, names, bound, _ = self.stack.pop()
        self.facts[func_id] = FunctionFacts(frozenset(names), frozenset(bound))
        for _, outer_names, _, _ in self.stack:
            outer_names.update(names)
        self.block_depth -= 1


def sym_names(node: cst.CSTNode) -> set[str]:
    found: set[str] = set()

    class Names(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            found.add(n.value)

    node.visit(Names())
    return found


@dataclass
class ModuleInfo:
    name: str
    path: Path
    package: str  # dotted package the module lives in ('' at top level)
    is_package: bool
    tree: cst.Module = field(repr=False)
    imports: dict[str, str] = field(default_factory=dict)
    # Imports at the top of function bodies (``def f(): import torch``), where every function
    # agrees: what a class defined in such a function sees as its bases' names.
    function_imports: dict[str, str] = field(default_factory=dict)
    classes: list[ClassInfo] = field(default_factory=list)
    # ``from .base import *`` at module level: the dotted names of the modules, in order.
    star_imports: list[str] = field(default_factory=list)
    # Prefix of qualified names: the module name, made unique when two files of the project
    # share it (two top-level ``train.py`` scripts), so that analyses never mix them up.
    qualifier: str = ""
    # A Jupyter notebook's code cells as one module (``tree``): locations are the cells'.
    notebook: NotebookModule | None = field(default=None, repr=False)

    @cached_property
    def positions(self) -> Mapping[cst.CSTNode, object]:
        """Resolved on first use: positions cost as much as parsing, and most files need none."""
        return MetadataWrapper(self.tree, unsafe_skip_copy=True).resolve(PositionProvider)

    @cached_property
    def _facts(self) -> _FactsCollector:
        collector = _FactsCollector()
        self.tree.visit(collector)
        return collector

    def function_facts(self, func: cst.FunctionDef) -> FunctionFacts:
        return self._facts.facts[id(func)]

    @cached_property
    def names(self) -> set[str]:
        """Every name the module uses (also those of the statements a big file was read
        without: ``elide``)."""
        return self._facts.module_names | elide.names_left_out(self.tree)

    @cached_property
    def self_assignments(self) -> dict[int, dict[str, list[cst.BaseExpression]]]:
        """Per class (by node id): ``self.attr = value`` assignments in its methods."""
        found: dict[int, dict[str, list[cst.BaseExpression]]] = {}
        for info in self.classes:
            per_attr: dict[str, list[cst.BaseExpression]] = {}
            for method in info.methods().values():
                params = [*method.params.posonly_params, *method.params.params]
                if params:
                    _collect_self_assignments(method, params[0].name.value, per_attr)
            found[id(info.node)] = per_attr
        return found

    @cached_property
    def assignments(self) -> dict[str, list[cst.BaseExpression]]:
        return assignments(self.tree.body)

    @cached_property
    def functions(self) -> dict[str, cst.FunctionDef]:
        return {s.name.value: s for s in self.tree.body if isinstance(s, cst.FunctionDef)}

    @cached_property
    def top_classes(self) -> dict[str, ClassInfo]:
        return {c.name: c for c in self.classes if c.qualname == f"{self.qualifier}.{c.name}"}

    @cached_property
    def class_by_node(self) -> dict[int, ClassInfo]:
        return {id(c.node): c for c in self.classes}

    def location(self, node: cst.CSTNode) -> Location:
        pos = self.positions.get(node)
        start = getattr(pos, "start", None)
        if start is None:
            return self.position(1, 1)
        return self.position(start.line, start.column + 1)

    def position(self, line: int, column: int) -> Location:
        """The location of a position of ``tree`` (1-based): in a notebook, in its cell."""
        if self.notebook is None:
            return Location(self.path, line, column)
        # A cell separator (no node a report names) stands for the cell after it.
        at = locate(self.notebook, line, column) or locate(self.notebook, line + 1, 1)
        if at is None:
            return Location(self.path, 1, 1)
        return Location(self.path, at.line, at.column, at.cell)


def _collect_self_assignments(
    method: cst.FunctionDef, self_name: str, into: dict[str, list[cst.BaseExpression]]
) -> None:
    class Visitor(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            for target in node.targets:
                t = target.target
                if (
                    isinstance(t, cst.Attribute)
                    and isinstance(t.value, cst.Name)
                    and t.value.value == self_name
                ):
                    into.setdefault(t.attr.value, []).append(node.value)

    method.visit(Visitor())


def module_name_for(path: Path) -> tuple[str, str, bool]:
    """Dotted module name found by walking up through ``__init__.py`` packages, as mypy does."""
    is_package = path.name == "__init__.py"
    parts = [] if is_package else [path.stem]
    directory = path.parent
    while (directory / "__init__.py").is_file():
        parts.insert(0, directory.name)
        directory = directory.parent
    name = ".".join(parts) or path.parent.name
    package = name if is_package else name.rpartition(".")[0]
    return name, package, is_package


@dataclass(frozen=True)
class SourceReader:
    """Reads a project's sources: from disk, except ``overlay`` (the source read from stdin,
    under the path it stands for), served from memory. Picklable, for worker processes."""

    overlay: Mapping[Path, bytes] = field(default_factory=dict)
    # The project's files: what a big file's statements may be used by (``elide``).
    project: tuple[Path, ...] = ()

    def __call__(self, path: Path) -> bytes:
        """The source to parse: a big file is reduced to what a run may need (``elide``; its
        results are restored before they are written or shown)."""
        data = self.overlay.get(path)
        return data if data is not None else elide.reduce(path, read_source(path), self.project)

    def whole(self, path: Path) -> bytes:
        """The source as it is, for text searches (which need no parse)."""
        data = self.overlay.get(path)
        return data if data is not None else read_source(path)


FROM_DISK = SourceReader()


def read_source(path: Path) -> bytes:
    try:
        if not path.is_file():
            raise SourceError("not a regular file")
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(exc.strerror or str(exc)) from exc


def source_encoding(data: bytes) -> str:
    """The encoding Python reads ``data`` in: its BOM or coding cookie, else UTF-8 (also when
    the first lines cannot be decoded to look for a cookie)."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:  # not UTF-8 in the first two lines, or a BOM with another cookie
        return "utf-8"
    return encoding


def parse_source(source: bytes | str) -> cst.Module:
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise SourceError(
            f"cannot parse: {str(exc).splitlines()[0]} (line {exc.raw_line})"
        ) from exc
    except (UnicodeDecodeError, LookupError, SyntaxError, ValueError) as exc:
        raise SourceError(f"cannot decode: {exc}") from exc


# Nodes whose children never hold a definition: expressions (a lambda cannot hold a ``def``) and
# one-line statements. Not descending into them makes the definitions pass cheap.
_NO_DEFINITIONS = (cst.BaseExpression, cst.SimpleStatementLine, cst.Decorator, cst.Parameters)


class _DefinitionCollector(cst.CSTVisitor):
    """Classes with their qualified names, and the imports at the top of every function body, in
    one pass over the statements."""

    def __init__(self, module: ModuleInfo) -> None:
        self.module = module
        # (qualified prefix, owning class, inside a function)
        self.stack: list[tuple[str, ClassInfo | None, bool]] = []
        self.function_imports: dict[str, set[str]] = {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        super().on_visit(node)
        return not isinstance(node, _NO_DEFINITIONS)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        prefix, owner, in_function = (
            self.stack[-1] if self.stack else (self.module.qualifier, None, False)
        )
        qualname = f"{prefix}.{node.name.value}"
        info = ClassInfo(
            qualname=qualname,
            module=self.module.name,
            path=self.module.path,
            node=node,
            defined_in=self.module,
            owner=owner,
            in_function=in_function,
        )
        self.module.classes.append(info)
        self.stack.append((qualname, info, in_function))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.stack.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        prefix, _owner, _ = self.stack[-1] if self.stack else (self.module.qualifier, None, False)
        self.stack.append((f"{prefix}.{node.name.value}.<locals>", None, True))
        if isinstance(node.body, cst.IndentedBlock):
            for name, full in import_bindings(self.module, node.body.body).items():
                self.function_imports.setdefault(name, set()).add(full)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.stack.pop()


def import_bindings(
    module: ModuleInfo, body: Sequence[cst.BaseStatement | cst.BaseSmallStatement]
) -> dict[str, str]:
    """Local name -> dotted name of what it imports, for the imports directly in ``body`` (and in
    a ``try:`` there: ``try: import x / except ImportError: ...``)."""
    bindings: dict[str, str] = {}
    for stmt in body:
        smalls: Iterable[cst.BaseSmallStatement] = (
            stmt.body if isinstance(stmt, cst.SimpleStatementLine) else ()
        )
        if isinstance(stmt, cst.Try):
            smalls = [
                s
                for line in stmt.body.body
                if isinstance(line, cst.SimpleStatementLine)
                for s in line.body
            ]
        for small in smalls:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    full = dotted_name(alias.name) or ""
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        bindings[alias.asname.name.value] = full
                    else:
                        head = full.split(".")[0]
                        bindings[head] = head
            elif isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                base = imported_module(module, small)
                for alias in small.names:
                    name = dotted_name(alias.name) or ""
                    local = name
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        local = alias.asname.name.value
                    bindings[local] = f"{base}.{name}" if base else name
    return bindings


def imported_module(module: ModuleInfo, small: cst.ImportFrom) -> str:
    """The dotted name of the module ``from X import ...`` in ``module`` reads (relative
    imports resolved against its package)."""
    base = dotted_name(small.module) if small.module is not None else ""
    if small.relative:
        package = module.package.split(".") if module.package else []
        up = len(small.relative) - 1
        anchor = package[: len(package) - up] if up else package
        base = ".".join([*anchor, *([base] if base else [])])
    return base or ""


def star_imports(module: ModuleInfo) -> list[str]:
    """The modules ``module`` star-imports at module level (``from .base import *``), in
    order (also in a ``try:`` there)."""
    found: list[str] = []
    for stmt in module.tree.body:
        lines = stmt.body.body if isinstance(stmt, cst.Try) else [stmt]
        for line in lines:
            if isinstance(line, cst.SimpleStatementLine):
                found += [
                    imported_module(module, small)
                    for small in line.body
                    if isinstance(small, cst.ImportFrom) and isinstance(small.names, cst.ImportStar)
                ]
    return found


def exported_names(module: ModuleInfo) -> frozenset[str] | None:
    """The names ``from module import *`` takes when ``__all__`` is one literal list or tuple
    of strings; None when it takes every public name (no ``__all__``, or one built at run
    time, where every public name is the safe guess)."""
    values = module.assignments.get("__all__", [])
    if len(values) != 1 or not isinstance(values[0], (cst.List, cst.Tuple)):
        return None
    names = [
        e.value.evaluated_value if isinstance(e.value, cst.SimpleString) else None
        for e in values[0].elements
    ]
    if not all(isinstance(n, str) for n in names):
        return None
    return frozenset(n for n in names if isinstance(n, str))


def public_names(module: ModuleInfo) -> frozenset[str]:
    """The module-level names without a leading underscore (what ``import *`` takes without
    ``__all__``)."""
    names = {*module.top_classes, *module.functions, *module.assignments, *module.imports}
    return frozenset(n for n in names if not n.startswith("_"))


def collect_definitions(module: ModuleInfo) -> None:
    """Fill a freshly parsed module's imports and classes."""
    module.imports.update(import_bindings(module, module.tree.body))
    module.star_imports.extend(star_imports(module))
    collector = _DefinitionCollector(module)
    module.tree.visit(collector)
    module.function_imports.update(
        (name, next(iter(fulls)))
        for name, fulls in collector.function_imports.items()
        if len(fulls) == 1  # functions that disagree on what a name is: neither
    )
