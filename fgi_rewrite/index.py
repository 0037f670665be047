"""Project index: parse the files that matter and resolve names statically, across modules.

Nothing here imports torch or the user's code: names are resolved by reading import statements and
single assignments, the way a reader would.
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from fgi_rewrite import symbolic as sym
from fgi_rewrite.model import Location
from fgi_rewrite.prefilter import CalleeNames

FUNCTION_BASES = frozenset(
    {
        "torch.autograd.Function",
        "torch.autograd.function.Function",
        "torch.autograd.function.InplaceFunction",
    }
)
_PREFILTER = ("Function", ".apply")
_BUILTIN_NAMES = frozenset(dir(builtins))


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
        return _assignments(self.node.body.body)

    def methods(self) -> dict[str, cst.FunctionDef]:
        return {s.name.value: s for s in self.node.body.body if isinstance(s, cst.FunctionDef)}


# ---- entities: what a name refers to -------------------------------------------------------


@dataclass(frozen=True)
class External:
    """A name outside the project (``torch.sigmoid``, ``math.pi``)."""

    dotted: str


@dataclass(frozen=True)
class ModuleRef:
    module: ModuleInfo = field(compare=False)


@dataclass(frozen=True)
class ClassRef:
    info: ClassInfo


@dataclass(frozen=True)
class FunctionRef:
    node: cst.FunctionDef = field(compare=False)
    path: Path


@dataclass(frozen=True)
class ApplyRef:
    """``Fn.apply`` of a project class, directly or through any chain of aliases.

    ``closure`` holds the literal arguments of the factory call that built the class (for
    classes defined inside a factory function), as (name, code) pairs."""

    info: ClassInfo
    closure: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ValueRef:
    node: cst.BaseExpression = field(compare=False)
    path: Path


@dataclass(frozen=True)
class Unknown:
    reason: str = ""
    # A parameter of the enclosing function, or an attribute of one: the caller decides.
    from_parameter: bool = False


Entity = External | ModuleRef | ClassRef | FunctionRef | ApplyRef | ValueRef | Unknown


def dotted_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = dotted_name(node.value)
        return f"{head}.{node.attr.value}" if head else None
    return None


def _assignments(body: Iterable[cst.CSTNode]) -> dict[str, list[cst.BaseExpression]]:
    """Name → every value assigned to it at this level (not inside nested blocks)."""
    found: dict[str, list[cst.BaseExpression]] = {}
    for stmt in body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            if isinstance(stmt, (cst.If, cst.Try, cst.For, cst.While, cst.With)):
                # Names bound conditionally count as rebound: they are not single assignments.
                for inner in _bound_names(stmt):
                    found.setdefault(inner, []).append(cst.Name("__fgi_conditional__"))
            continue
        for small in stmt.body:
            if isinstance(small, cst.Assign):
                for target in small.targets:
                    if isinstance(target.target, cst.Name):
                        found.setdefault(target.target.value, []).append(small.value)
            elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                if small.value is not None:
                    found.setdefault(small.target.value, []).append(small.value)
            elif isinstance(small, cst.AugAssign) and isinstance(small.target, cst.Name):
                found.setdefault(small.target.value, []).append(cst.Name("__fgi_augmented__"))
    return found


def _bound_names(node: cst.CSTNode) -> set[str]:
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
    # Prefix of qualified names: the module name, made unique when two files of the project
    # share it (two top-level ``train.py`` scripts), so that analyses never mix them up.
    qualifier: str = ""

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

    @property
    def names(self) -> set[str]:
        return self._facts.module_names

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
        return _assignments(self.tree.body)

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
            return Location(self.path, 1, 1)
        return Location(self.path, start.line, start.column + 1)


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


def read_source(path: Path) -> bytes:
    try:
        if not path.is_file():
            raise SourceError("not a regular file")
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(exc.strerror or str(exc)) from exc


def parse_source(source: bytes) -> cst.Module:
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise SourceError(
            f"cannot parse: {str(exc).splitlines()[0]} (line {exc.raw_line})"
        ) from exc
    except (UnicodeDecodeError, LookupError, SyntaxError, ValueError) as exc:
        raise SourceError(f"cannot decode: {exc}") from exc


class _ClassCollector(cst.CSTVisitor):
    def __init__(self, module: ModuleInfo) -> None:
        self.module = module
        self.stack: list[tuple[str, ClassInfo | None, bool]] = (
            []
        )  # (qual prefix, owner, in_function)

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

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.stack.pop()


def _collect_imports(module: ModuleInfo) -> None:
    module.imports.update(import_bindings(module, module.tree.body))
    found: dict[str, set[str]] = {}

    def visit(node: cst.CSTNode) -> None:
        if isinstance(node, cst.FunctionDef) and isinstance(node.body, cst.IndentedBlock):
            for name, full in import_bindings(module, node.body.body).items():
                found.setdefault(name, set()).add(full)

    sym.walk(module.tree, visit)
    module.function_imports.update(
        (name, next(iter(fulls))) for name, fulls in found.items() if len(fulls) == 1
    )


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
                base = dotted_name(small.module) if small.module is not None else ""
                if small.relative:
                    package = module.package.split(".") if module.package else []
                    up = len(small.relative) - 1
                    anchor = package[: len(package) - up] if up else package
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in small.names:
                    name = dotted_name(alias.name) or ""
                    local = name
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        local = alias.asname.name.value
                    bindings[local] = f"{base}.{name}" if base else name
    return bindings


class ProjectIndex:
    """Lazily parsed view of a project; a module is parsed the first time something needs it."""

    def __init__(self, root: Path, files: Iterable[Path]) -> None:
        self.root = root
        self._by_path: dict[Path, ModuleInfo | SourceError] = {}
        self._names: dict[str, list[Path]] = {}
        self._texts: dict[Path, str] = {}
        self._ast: dict[Path, ast.Module] = {}
        self._files = tuple(files)
        for path in self._files:
            name, _, _ = module_name_for(path)
            self._names.setdefault(name, []).append(path)

    # -- parsing --------------------------------------------------------------------------------
    def text(self, path: Path) -> str:
        if path not in self._texts:
            try:
                self._texts[path] = read_source(path).decode("utf-8", errors="replace")
            except SourceError:
                self._texts[path] = ""
        return self._texts[path]

    def module(self, path: Path) -> ModuleInfo:
        cached = self._by_path.get(path)
        if isinstance(cached, SourceError):
            raise cached
        if cached is not None:
            return cached
        try:
            tree = parse_source(read_source(path))
        except SourceError as exc:
            self._by_path[path] = exc
            raise
        name, package, is_package = module_name_for(path)
        qualifier = name
        if len(self._names.get(name, [])) > 1:
            where = path.parent.relative_to(self.root) if path.is_relative_to(self.root) else path
            qualifier = f"{name}@{where.as_posix()}"
        info = ModuleInfo(name, path, package, is_package, tree, qualifier=qualifier)
        _collect_imports(info)
        tree.visit(_ClassCollector(info))
        self._by_path[path] = info
        return info

    def ast_tree(self, path: Path) -> ast.Module:
        """The stdlib AST (about ten times cheaper than libcst), for prefiltering; raises
        SourceError for invalid source, with libcst's view of it."""
        cached = self._ast.get(path)
        if cached is not None:
            return cached
        source = read_source(path)
        try:
            tree = ast.parse(source, filename=str(path))
        except SyntaxError:
            self.module(path)  # libcst may accept newer syntax; else it raises SourceError
            tree = ast.Module(body=[], type_ignores=[])
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceError(f"cannot decode: {exc}") from exc
        self._ast[path] = tree
        return tree

    def check_syntax(self, path: Path) -> None:
        """Raise SourceError if ``path`` is not valid Python, without building a libcst tree."""
        if path in self._by_path:
            self.module(path)
        else:
            self.ast_tree(path)

    def has_candidate_call(self, path: Path, names: CalleeNames) -> bool:
        """Whether some call in ``path`` may reach a Function's apply (stdlib AST, no libcst).
        Where the file mentions autograd, any ``name.apply(...)`` counts, so that unresolvable
        ones are reported."""
        any_apply = "autograd" in self.text(path)
        tree = self.ast_tree(path)
        external = self._external_roots(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "apply"
                and _ast_key(node.value) in names.classes
            ):
                return True  # ``Fn.apply`` stored or passed: a reference to rewrite
            if (
                any_apply
                and isinstance(node, ast.Attribute)
                and node.attr == "apply"
                and isinstance(node.value, ast.Name)
            ):
                return True  # ``spike_fn.apply`` on a parameter whose default may be a class
            if not isinstance(node, ast.Call):
                continue
            legacy = isinstance(node.func, ast.Call)
            func = node.func.func if isinstance(node.func, ast.Call) else node.func
            if _ast_root(func) in external:
                continue  # torch.sigmoid(...) is not a project class called sigmoid
            receiver = _ast_key(func.value) if isinstance(func, ast.Attribute) else None
            bare_receiver = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            if names.candidate(_ast_key(func), receiver, legacy, any_apply and bare_receiver):
                return True
        # ``spike_fn.apply(v - thr)`` on a parameter: reported as unresolved (FGI201)
        return bool(names.classes) and _has_parameter_apply(tree)

    def _external_roots(self, tree: ast.Module) -> set[str]:
        """Local names bound by importing a package outside the project (torch, numpy...)."""
        project = {name.split(".")[0] for name in self._names}
        roots: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] not in project:
                        roots.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                if node.module.split(".")[0] not in project:
                    roots.update(a.asname or a.name for a in node.names)
        return roots

    def module_named(self, name: str, near: Path | None = None) -> ModuleInfo | None:
        candidates = self._names.get(name, [])
        if len(candidates) > 1 and near is not None:
            # Prefer the candidate that shares the importer's top-level directory.
            candidates = sorted(candidates, key=lambda p: -len(_common_parts(p, near)))
        for path in candidates:
            try:
                return self.module(path)
            except SourceError:
                return None
        return None

    def candidate_files(self) -> Iterator[Path]:
        """Files that may define a Function subclass (a cheap substring prefilter)."""
        for path in self._files:
            if "Function" in self.text(path):
                yield path

    def alias_files(self) -> Iterator[Path]:
        """Files that may bind a name to a Function's ``apply`` (``spike = SpikeFn.apply``) or
        define a Function: where ``CalleeNames`` looks for the names call sites may use."""
        for path in self._files:
            text = self.text(path)
            if "Function" in text or ".apply" in text:
                yield path

    def maybe_function_files(self) -> list[Path]:
        """Files with a class whose base may be an autograd Function, found with the stdlib AST:
        a base named ``Function`` (or an import alias of it), or a class of such, transitively."""
        return list(self._maybe_functions()[0])

    def maybe_function_names(self) -> frozenset[str]:
        """The names of those classes (from the same stdlib-AST pass)."""
        return self._maybe_functions()[1]

    @functools.cache  # noqa: B019 - one index per run; the AST pass is the same for both callers
    def _maybe_functions(self) -> tuple[tuple[Path, ...], frozenset[str]]:
        seeds = {"Function", "InplaceFunction"}
        bases: dict[Path, list[tuple[str, set[str]]]] = {}
        for path in self.candidate_files():
            try:
                tree = self.ast_tree(path)
            except SourceError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    seeds.update(a.asname for a in node.names if a.name in seeds and a.asname)
                elif isinstance(node, ast.ClassDef):
                    names = {_ast_key(b) for b in node.bases} - {None}
                    bases.setdefault(path, []).append((node.name, names))  # type: ignore[arg-type]
        # ``Function`` itself counts only in a file that says "autograd" (``torch.autograd``,
        # ``from torch.autograd import Function``): sympy's ``Function`` has hundreds of
        # subclasses. A subclass of a project class that derives from it counts anywhere.
        autograd = {path for path in bases if "autograd" in self.text(path)}
        functions = set(seeds)

        def derives(path: Path, names: set[str]) -> bool:
            return bool(names & (functions if path in autograd else functions - seeds))

        while True:
            grown = {n for path, found in bases.items() for n, b in found if derives(path, b)}
            if grown <= functions:
                break
            functions |= grown
        files = tuple(p for p, found in bases.items() if any(derives(p, b) for _, b in found))
        found_names = frozenset(
            n for path, found in bases.items() for n, b in found if derives(path, b)
        )
        return files, found_names

    def function_classes_in(self, path: Path) -> list[ClassInfo]:
        """The Function subclasses defined in ``path`` (none when it cannot be parsed)."""
        try:
            module = self.module(path)
        except SourceError:
            return []
        return [c for c in module.classes if self.is_function_class(c)]

    def is_reassigned(self, info: ClassInfo, attribute: str) -> bool:
        pattern = re.compile(
            rf"\b{re.escape(info.name)}\.{re.escape(attribute)}\s*(?:[-+*/]?=)(?!=)"
        )
        return any(pattern.search(self.text(path)) for path in self._files)

    # -- resolution -----------------------------------------------------------------------------
    def is_function_class(self, info: ClassInfo, _seen: frozenset[str] = frozenset()) -> bool:
        if info.qualname in _seen:
            return False
        module = self.module(info.path)
        for base in info.node.bases:
            entity = self.resolve_expr(module, base.value)
            if isinstance(entity, External) and entity.dotted in FUNCTION_BASES:
                return True
            if isinstance(entity, ClassRef) and self.is_function_class(
                entity.info, _seen | {info.qualname}
            ):
                return True
        return False

    def mro(self, info: ClassInfo) -> list[ClassInfo]:
        order: list[ClassInfo] = []
        pending = [info]
        while pending:
            current = pending.pop(0)
            if current in order:
                continue
            order.append(current)
            module = self.module(current.path)
            for base in current.node.bases:
                entity = self.resolve_expr(module, base.value)
                if isinstance(entity, ClassRef):
                    pending.append(entity.info)
        return order

    def resolve_dotted(self, dotted: str, near: Path | None = None, depth: int = 0) -> Entity:
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            module = self.module_named(".".join(parts[:cut]), near)
            if module is not None:
                entity: Entity = ModuleRef(module)
                for attr in parts[cut:]:
                    entity = self.attribute(entity, attr, depth + 1)
                return entity
        return External(dotted)

    def resolve_name(self, module: ModuleInfo, name: str, depth: int = 0) -> Entity:
        if depth > 20:
            return Unknown("alias chain too deep")
        if name in module.top_classes:
            return ClassRef(module.top_classes[name])
        if name in module.functions:
            return FunctionRef(module.functions[name], module.path)
        values = module.assignments.get(name)
        if values:
            if len(values) > 1:
                return Unknown(f"'{name}' is assigned more than once")
            return self.resolve_value(module, values[0], depth + 1)
        if name in module.imports:
            return self.resolve_dotted(module.imports[name], module.path, depth + 1)
        if name in module.function_imports and name not in _BUILTIN_NAMES:
            # Only functions import it: the name a class defined in one of them sees.
            return self.resolve_dotted(module.function_imports[name], module.path, depth + 1)
        if module.is_package or True:
            submodule = self.module_named(f"{module.name}.{name}", module.path)
            if submodule is not None and submodule is not module:
                return ModuleRef(submodule)
        return Unknown(f"'{name}' is not defined at module level")

    def resolve_value(
        self,
        module: ModuleInfo,
        value: cst.BaseExpression,
        depth: int = 0,
        local: Mapping[str, Entity] | None = None,
    ) -> Entity:
        entity = self.resolve_expr(module, value, depth, local)
        if isinstance(entity, Unknown) and not isinstance(
            value, (cst.Name, cst.Attribute, cst.Call)
        ):
            return ValueRef(value, module.path)
        return entity

    def resolve_expr(
        self,
        module: ModuleInfo,
        node: cst.BaseExpression,
        depth: int = 0,
        local: Mapping[str, Entity] | None = None,
    ) -> Entity:
        if depth > 20:
            return Unknown("alias chain too deep")
        if isinstance(node, cst.Name):
            if local is not None and node.value in local:
                return local[node.value]
            return self.resolve_name(module, node.value, depth + 1)
        if isinstance(node, cst.Attribute):
            base = self.resolve_expr(module, node.value, depth + 1, local)
            return self.attribute(base, node.attr.value, depth + 1)
        if isinstance(node, cst.Call):
            callee = self.resolve_expr(module, node.func, depth + 1, local)
            if isinstance(callee, FunctionRef):
                return self.factory_result(callee, depth + 1, node)
            return Unknown("the value of a call is not known statically")
        return Unknown("not a name")

    def attribute(self, base: Entity, attr: str, depth: int = 0) -> Entity:
        if isinstance(base, External):
            return External(f"{base.dotted}.{attr}")
        if isinstance(base, ModuleRef):
            return self.resolve_name(base.module, attr, depth + 1)
        if isinstance(base, ClassRef):
            if attr == "apply" and self.is_function_class(base.info):
                return ApplyRef(base.info)
            for cls in self.mro(base.info):
                nested = [
                    c for c in self.module(cls.path).classes if c.owner is cls and c.name == attr
                ]
                if nested:
                    return ClassRef(nested[0])
                values = cls.body_assignments().get(attr)
                if values:
                    if len(values) > 1:
                        return Unknown(f"'{attr}' is assigned more than once in the class")
                    return self.resolve_value(self.module(cls.path), values[0], depth + 1)
            return Unknown(f"class {base.info.name} has no attribute '{attr}'")
        if isinstance(base, Unknown) and base.from_parameter:
            # The case users meet most: ``spike_fn.apply(x)`` in a layer taking ``spike_fn``.
            return Unknown(f"{base.reason}: each caller chooses the Function", from_parameter=True)
        return Unknown("attribute of an unknown value")

    def factory_result(self, ref: FunctionRef, depth: int, call: cst.Call | None = None) -> Entity:
        """A function whose every return gives the same ``Fn.apply`` (a factory) returns that;
        a class built inside the factory sees the call's literal arguments as its closure."""
        module = self.module(ref.path)
        returns: list[cst.Return] = []

        class Returns(cst.CSTVisitor):
            def __init__(self) -> None:
                self.depth = 0

            def visit_FunctionDef(self, n: cst.FunctionDef) -> bool:
                self.depth += 1
                return self.depth == 1

            def leave_FunctionDef(self, n: cst.FunctionDef) -> None:
                self.depth -= 1

            def visit_Return(self, n: cst.Return) -> None:
                returns.append(n)

        ref.node.visit(Returns())
        if not returns:
            return Unknown("factory returns nothing")
        local = local_entities(self, module, ref.node, depth + 1)
        results = {
            self.resolve_expr(module, r.value, depth + 1, local) if r.value else Unknown()
            for r in returns
        }
        if len(results) == 1:
            (result,) = results
            if isinstance(result, ApplyRef):
                if result.info.in_function and call is not None:
                    return ApplyRef(result.info, _literal_arguments(ref.node, call))
                return result
        return Unknown("a factory that does not always return the same Function")


def _literal_arguments(func: cst.FunctionDef, call: cst.Call) -> tuple[tuple[str, str], ...]:
    """Parameters of ``func`` bound to literal values by ``call`` (or by literal defaults)."""
    params = [*func.params.posonly_params, *func.params.params, *func.params.kwonly_params]
    bound: dict[str, cst.BaseExpression] = {}
    positional = [a for a in call.args if a.keyword is None and not a.star]
    for param, arg in zip(params, positional, strict=False):
        bound[param.name.value] = arg.value
    for arg in call.args:
        if arg.keyword is not None:
            bound[arg.keyword.value] = arg.value
    for param in params:
        if param.name.value not in bound and param.default is not None:
            bound[param.name.value] = param.default
    code = cst.Module(body=[]).code_for_node
    literal = (cst.Integer, cst.Float, cst.SimpleString, cst.UnaryOperation, cst.Name)
    return tuple(
        (name, code(value))
        for name, value in sorted(bound.items())
        if isinstance(value, literal)
        and (not isinstance(value, cst.Name) or value.value in ("True", "False", "None"))
    )


@dataclass(frozen=True)
class _Imported:
    """A name a function body imports, resolved on first lookup."""

    dotted: str


class LocalScope(Mapping[str, Entity]):
    """Names bound in a function body, resolved on first lookup: parameters shadow, single
    assignments resolve, local classes are classes."""

    def __init__(
        self, index: ProjectIndex, module: ModuleInfo, func: cst.FunctionDef, depth: int = 0
    ) -> None:
        self.index, self.module, self.func, self.depth = index, module, func, depth
        self._resolved: dict[str, Entity] = {}

    @cached_property
    def _bindings(self) -> dict[str, Entity | _Imported | list[cst.BaseExpression]]:
        bindings: dict[str, Entity | _Imported | list[cst.BaseExpression]] = {}
        params = self.func.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            bindings[param.name.value] = Unknown(
                f"'{param.name.value}' is a parameter", from_parameter=True
            )
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                bindings[star.name.value] = Unknown("star parameter")
        body = self.func.body.body if isinstance(self.func.body, cst.IndentedBlock) else ()
        class_by_node = self.module.class_by_node
        for stmt in body:
            if isinstance(stmt, cst.ClassDef) and id(stmt) in class_by_node:
                bindings[stmt.name.value] = ClassRef(class_by_node[id(stmt)])
        imports = import_bindings(self.module, body)
        for name, values in _assignments(body).items():
            if name not in bindings:
                bindings[name] = (
                    Unknown(f"'{name}' is imported and assigned") if name in imports else values
                )
        for name, full in imports.items():
            bindings.setdefault(name, _Imported(full))
        for name in _bound_names(self.func.body) - set(bindings):
            bindings[name] = Unknown(f"'{name}' is bound in a nested block")
        return bindings

    def __getitem__(self, name: str) -> Entity:
        if name not in self._resolved:
            binding = self._bindings[name]
            if isinstance(binding, _Imported):
                binding = self.index.resolve_dotted(
                    binding.dotted, self.module.path, self.depth + 1
                )
            elif isinstance(binding, list):
                if len(binding) == 1:
                    self._resolved[name] = Unknown(f"'{name}' refers to itself")  # cycle guard
                    binding = self.index.resolve_value(
                        self.module, binding[0], self.depth + 1, self
                    )
                else:
                    binding = Unknown(f"'{name}' is assigned more than once")
            self._resolved[name] = binding
        return self._resolved[name]

    def __contains__(self, name: object) -> bool:
        return name in self._bindings

    def __iter__(self) -> Iterator[str]:
        return iter(self._bindings)

    def __len__(self) -> int:
        return len(self._bindings)


def local_entities(
    index: ProjectIndex, module: ModuleInfo, func: cst.FunctionDef, depth: int = 0
) -> LocalScope:
    return LocalScope(index, module, func, depth)


def _ast_root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) and node is not None else None


def _has_parameter_apply(tree: ast.Module) -> bool:
    """Whether some function calls ``p.apply(...)`` with arguments on one of its parameters."""
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        arguments = func.args
        params = {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)}
        for node in ast.walk(func):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "apply"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in params
                and node.args
            ):
                return True
    return False


def _ast_key(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _common_parts(a: Path, b: Path) -> tuple[str, ...]:
    common = []
    for x, y in zip(a.parts, b.parts, strict=False):
        if x != y:
            break
        common.append(x)
    return tuple(common)
