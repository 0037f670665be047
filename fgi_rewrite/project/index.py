"""Project index: parse the files that matter and resolve names statically, across modules.

Nothing here imports torch or the user's code: names are resolved by reading import statements and
single assignments, the way a reader would.

What a single file says is read in ``source_module``; what a name resolves to is one of the
``entities``. This module holds what needs the whole project: the index and local scopes.

A Jupyter notebook is indexed as one module, its code cells in order (``project/notebook.py``),
named by its path: no import reaches it, and its absolute imports resolve from its own directory
first (Jupyter's working directory), then as any module's.
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from pathlib import Path

import libcst as cst

from fgi_rewrite.project.entities import (
    FUNCTION_BASES,
    ApplyRef,
    ClassRef,
    Entity,
    External,
    FunctionRef,
    ModuleRef,
    Unknown,
    ValueRef,
)
from fgi_rewrite.project.local_scope import local_entities
from fgi_rewrite.project.notebook import (
    NotebookModule,
    build_module,
    hidden_code,
    is_notebook,
    locate,
)
from fgi_rewrite.project.notebook_json import NotebookError, read_notebook
from fgi_rewrite.project.prefilter import CalleeNames, assigns_apply
from fgi_rewrite.project.rebinding import RebindingProof
from fgi_rewrite.project.source_module import (
    FROM_DISK,
    ClassInfo,
    ModuleInfo,
    SourceError,
    SourceReader,
    collect_definitions,
    exported_names,
    module_name_for,
    parse_source,
    source_encoding,
)

_BUILTIN_NAMES = frozenset(dir(builtins))
_NOT_DEFINED = "is not defined at module level"
_CALLER_CHOOSES = ": each caller chooses the Function"


class ProjectIndex:
    """Lazily parsed view of a project; a module is parsed the first time something needs it."""

    def __init__(self, root: Path, files: Iterable[Path], read: SourceReader = FROM_DISK) -> None:
        self.root = root
        self.read = read  # every source the index parses comes through it
        self._by_path: dict[Path, ModuleInfo | SourceError] = {}
        self._names: dict[str, list[Path]] = {}
        self._texts: dict[Path, str] = {}
        self._ast: dict[Path, ast.Module] = {}
        self._notebooks: dict[Path, NotebookModule | SourceError] = {}
        self._hidden: dict[Path, str] = {}
        self._containing: dict[tuple[str, ...], list[Path]] = {}
        self._files = tuple(files)
        self._paths = frozenset(self._files)
        for path in self._files:
            if not is_notebook(path):  # no import reaches a notebook
                name, _, _ = module_name_for(path)
                self._names.setdefault(name, []).append(path)

    # -- parsing --------------------------------------------------------------------------------
    def notebook(self, path: Path) -> NotebookModule:
        """A notebook's code cells as one module (SourceError when it is not a notebook)."""
        cached = self._notebooks.get(path)
        if cached is None:
            try:
                cached = build_module(read_notebook(self.read(path)))
            except NotebookError as exc:
                cached = SourceError(f"cannot read the notebook: {exc}")
            except SourceError as exc:
                cached = exc
            self._notebooks[path] = cached
        if isinstance(cached, SourceError):
            raise cached
        return cached

    def source(self, path: Path) -> bytes | str:
        """What the index parses: the file, or a notebook's module (text: its cells' coding
        cookies mean nothing)."""
        return self.notebook(path).source if is_notebook(path) else self.read(path)

    def text(self, path: Path) -> str:
        if path not in self._texts:
            try:
                # A big module unreduced (``elide``): a superset of what its parse holds.
                source = self.source(path) if is_notebook(path) else self.read.whole(path)
            except SourceError:
                source = ""
            text = source if isinstance(source, str) else source.decode("utf-8", "replace")
            self._texts[path] = text
        return self._texts[path]

    def module(self, path: Path) -> ModuleInfo:
        cached = self._by_path.get(path)
        if isinstance(cached, SourceError):
            raise cached
        if cached is not None:
            return cached
        notebook = None
        try:
            if is_notebook(path):
                notebook, tree = self._parse_notebook(path)
            else:
                tree = parse_source(self.read(path))
        except SourceError as exc:
            self._by_path[path] = exc
            raise
        if notebook is not None:
            name = package = ""
            is_package = False
            # A name no import can form, unique in the project: the notebook's path.
            qualifier = relative_name(path, self.root)
        else:
            name, package, is_package = module_name_for(path)
            qualifier = name
            if len(self._names.get(name, [])) > 1:
                where = (
                    path.parent.relative_to(self.root) if path.is_relative_to(self.root) else path
                )
                qualifier = f"{name}@{where.as_posix()}"
        info = ModuleInfo(name or qualifier, path, package, is_package, tree, qualifier=qualifier)
        info.notebook = notebook
        collect_definitions(info)
        self._by_path[path] = info
        return info

    def _parse_notebook(self, path: Path) -> tuple[NotebookModule, cst.Module]:
        """The notebook's module and its tree. A cell libcst refuses (syntax newer than it
        knows) is left out, as a cell that does not parse, and the rest parsed again."""
        notebook = self.notebook(path)
        excluded: dict[int, tuple[str, int]] = {}
        while True:
            try:
                tree = parse_source(notebook.source)
                break
            except SourceError as exc:
                cause = exc.__cause__
                if not isinstance(cause, cst.ParserSyntaxError):
                    raise
                line = cause.raw_line
                at = locate(notebook, line) or locate(notebook, line - 1)
                if at is None or at.cell in excluded:
                    raise
                excluded[at.cell] = (str(exc), at.line)
                notebook = build_module(notebook.notebook, excluded)
        if excluded:  # what the other views read is this module
            self._notebooks[path] = notebook
            self._texts.pop(path, None)
            self._ast.pop(path, None)
        return notebook, tree

    def ast_tree(self, path: Path) -> ast.Module:
        """The stdlib AST (about ten times cheaper than libcst), for prefiltering; raises
        SourceError for invalid source, with libcst's view of it."""
        cached = self._ast.get(path)
        if cached is not None:
            return cached
        source = self.source(path)
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
        """Raise SourceError if ``path`` is not valid Python (or not in its encoding, also where
        the parser does not look), without building a libcst tree nor keeping a stdlib one."""
        if path in self._by_path:
            self.module(path)
            return
        data = b"" if is_notebook(path) else self.read(path)
        try:
            data.decode(source_encoding(data))
        except UnicodeDecodeError as exc:
            raise SourceError(f"cannot decode: {exc}") from exc
        except LookupError:
            pass  # an unknown coding cookie: the parser says so
        self.ast_tree(path)
        self._ast.pop(path, None)  # a file only checked: its tree is not needed again

    def has_candidate_call(self, path: Path, names: CalleeNames) -> bool:
        """Whether some call in ``path`` may reach a Function's apply (stdlib AST, no libcst).
        Where the file mentions autograd, any ``name.apply(...)`` counts, so that unresolvable
        ones are reported."""
        any_apply = "autograd" in self.text(path)
        tree = self.ast_tree(path)
        external = self._external_roots(tree, path)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "apply"
                and _ast_key(node.value.func if isinstance(node.value, ast.Call) else node.value)
                in names.classes
            ):
                return True  # ``Fn.apply`` (or ``Fn().apply``) stored, passed or called
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

    def _external_roots(self, tree: ast.Module, path: Path) -> set[str]:
        """Local names bound by importing a package outside the project (torch, numpy...)."""
        project = {name.split(".")[0] for name in self._names}

        def outside(dotted: str) -> bool:
            root = dotted.split(".")[0]
            return root not in project and self._beside_notebook(root, path) is None

        roots: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if outside(alias.name):
                        roots.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                if outside(node.module):
                    roots.update(a.asname or a.name for a in node.names)
        return roots

    def _beside_notebook(self, name: str, near: Path | None) -> Path | None:
        """The project file that ``import <name>`` in the notebook ``near`` reaches from the
        notebook's directory (Jupyter's working directory), if any."""
        if near is None or not is_notebook(near):
            return None
        *packages, last = name.split(".")
        directory = near.parent.joinpath(*packages)
        for candidate in (directory / f"{last}.py", directory / last / "__init__.py"):
            if candidate in self._paths:
                return candidate
        return None

    def module_named(self, name: str, near: Path | None = None) -> ModuleInfo | None:
        beside = self._beside_notebook(name, near)
        if beside is not None:
            try:
                return self.module(beside)
            except SourceError:
                return None
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
        scanned: set[Path] = set()

        def scan(paths: Iterable[Path]) -> None:
            for path in paths:
                scanned.add(path)
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
        functions = set(seeds)

        def derives(path: Path, names: set[str]) -> bool:
            autograd = "autograd" in self.text(path)
            return bool(names & (functions if autograd else functions - seeds))

        def grow() -> None:
            functions.update(seeds)  # with the aliases the scan found (``Function as F_``)
            while True:
                grown = {n for path, found in bases.items() for n, b in found if derives(path, b)}
                if grown <= functions:
                    return
                functions.update(grown)

        scan(self.candidate_files())
        grow()
        while functions - seeds:
            # A subclass of a project Function in a file that never says "Function" (its
            # backward in a base class of another module): found by the base's name.
            derived = "|".join(re.escape(n) for n in sorted(functions - seeds))
            pattern = re.compile(rf"^[ \t]*class\s+\w+\s*\([^)]*\b(?:{derived})\b", re.MULTILINE)
            more = [p for p in self._files if p not in scanned and pattern.search(self.text(p))]
            if not more:
                break
            scan(more)
            grow()
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

    def hidden_mentions(self, word: str) -> list[Path]:
        """The notebooks whose magics or left-out cells (``%time Fn.alpha = 2``) contain the
        word ``word``: code the analysis cannot read, so may change what it names."""
        pattern = re.compile(rf"\b{re.escape(word)}\b")
        return [p for p in self._files if is_notebook(p) and pattern.search(self.hidden_text(p))]

    def hidden_text(self, path: Path) -> str:
        """A notebook's magics and the cells its module leaves out (``%time Fn.alpha = 2``);
        kept for the run, since every rebinding question asks again."""
        if path not in self._hidden:
            try:
                self._hidden[path] = hidden_code(self.notebook(path))
            except SourceError:
                self._hidden[path] = ""
        return self._hidden[path]

    def files_containing(self, words: tuple[str, ...]) -> list[Path]:
        """The project's files whose text contains any of ``words`` (a substring prefilter;
        each answer is kept for the run)."""
        if words not in self._containing:
            self._containing[words] = [
                p for p in self._files if any(w in self.text(p) for w in words)
            ]
        return self._containing[words]

    @cached_property
    def rebinding(self) -> RebindingProof:
        """Whether values read at run time may change (``project/rebinding.py``)."""
        return RebindingProof(self)

    def module_by_qualifier(self, qualifier: str) -> ModuleInfo | None:
        """The module a ``ModuleInfo.qualifier`` names (``name`` or ``name@dir``)."""
        name, _, where = qualifier.partition("@")
        for path in self._names.get(name, []):
            relative = (
                path.parent.relative_to(self.root) if path.is_relative_to(self.root) else path
            )
            if not where or relative.as_posix() == where:
                try:
                    return self.module(path)
                except SourceError:
                    return None
        return None

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
        for source in reversed(module.star_imports):  # the last one binding it wins
            found = self.star_imported(module, source, name, depth + 1)
            if found is not None:
                return found
        if name in module.function_imports and name not in _BUILTIN_NAMES:
            # Only functions import it: the name a class defined in one of them sees.
            return self.resolve_dotted(module.function_imports[name], module.path, depth + 1)
        if module.is_package or True:
            submodule = self.module_named(f"{module.name}.{name}", module.path)
            if submodule is not None and submodule is not module:
                return ModuleRef(submodule)
        outside = [s for s in module.star_imports if self.module_named(s, module.path) is None]
        if outside:  # ``from spikeutils.ops import *``: a package the index does not read
            return Unknown(f"'{name}' {_NOT_DEFINED} (from {outside[-1]} import * perhaps)")
        return Unknown(f"'{name}' {_NOT_DEFINED}")

    def star_imported(
        self, module: ModuleInfo, source: str, name: str, depth: int
    ) -> Entity | None:
        """What ``from source import *`` in ``module`` binds ``name`` to, if it binds it: a
        name of the project module ``source`` that its ``__all__`` lists, or, without one, a
        public name defined there (also through its own star imports: a package
        ``__init__`` re-exporting its modules)."""
        found = self.module_named(source, module.path)
        if found is None or found is module:
            return None
        exported = exported_names(found)
        if (name not in exported) if exported is not None else name.startswith("_"):
            return None
        entity = self.resolve_name(found, name, depth + 1)
        if isinstance(entity, Unknown) and _NOT_DEFINED in entity.reason:
            return None
        return entity

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
            instance_of = callee.info if isinstance(callee, ClassRef) else None
            return Unknown("the value of a call is not known statically", instance_of=instance_of)
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
        if isinstance(base, Unknown) and base.instance_of is not None:
            return self.instance_attribute(base.instance_of, attr, depth + 1)
        if isinstance(base, Unknown) and base.from_parameter:
            # The case users meet most: ``spike_fn.apply(x)`` in a layer taking ``spike_fn``.
            reason = base.reason.removesuffix(_CALLER_CHOOSES) + _CALLER_CHOOSES
            return Unknown(reason, from_parameter=True)
        return Unknown("attribute of an unknown value")

    def self_attribute(self, info: ClassInfo, attr: str, depth: int = 0) -> Entity:
        """What ``self.attr`` is in the methods of ``info``: the one ``self.attr = value`` of the
        class and its project bases (resolved where it is assigned), else the class
        attribute."""
        assigned = [
            (cls, value)
            for cls in self.mro(info)
            for value in self.module(cls.path).self_assignments.get(id(cls.node), {}).get(attr, [])
        ]
        if len(assigned) > 1:
            return Unknown(f"self.{attr} is assigned more than once")
        if not assigned:
            entity = self.attribute(ClassRef(info), attr, depth + 1)
        else:
            cls, value = assigned[0]
            module = self.module(cls.path)
            method = next(m for m in cls.methods().values() if _contains(m, value))
            local = local_entities(self, module, method)
            entity = self.resolve_value(module, value, depth + 1, local)
        if isinstance(entity, ApplyRef | ClassRef) and self._assigned_from_outside(attr):
            # ``layer.spike_fn = Other.apply`` somewhere: what ``self.spike_fn`` calls depends
            # on the run.
            return Unknown(f"'{attr}' is also assigned from outside {info.name}")
        return entity

    def instance_attribute(self, info: ClassInfo, attr: str, depth: int = 0) -> Entity:
        """An attribute of an instance of ``info`` read from outside its class
        (``layer.spike_fct``, ``Fn().apply``): only a Function's ``apply`` or class, or another
        instance, is resolved (what a call site needs), never a value, which any code holding
        the instance may change; nor an attribute assigned anywhere but through ``self``."""
        unknown = Unknown(f"an attribute of a {info.name} instance is not known statically")
        entity = self.self_attribute(info, attr, depth + 1)
        if isinstance(entity, ApplyRef) or (
            isinstance(entity, ClassRef) and self.is_function_class(entity.info)
        ):
            return entity
        if isinstance(entity, Unknown) and entity.instance_of is not None:
            return entity
        return unknown

    @functools.cache  # noqa: B019 - one index per run
    def apply_attribute_owners(self, attr: str) -> tuple[tuple[ClassInfo, ApplyRef], ...]:
        """The classes of the project whose instances hold a Function's ``apply`` as ``attr``
        (``self.spike_fct = SpikeFn.apply``, resolved): what an unresolved ``obj.attr(x)`` may
        be calling."""
        found: list[tuple[ClassInfo, ApplyRef]] = []
        for path in self.alias_files():
            if not assigns_apply(self.text(path), attr):
                continue
            try:
                module = self.module(path)
            except SourceError:
                continue
            for cls in module.classes:
                own = module.self_assignments.get(id(cls.node), {})
                if attr in own or attr in cls.body_assignments():
                    entity = self.self_attribute(cls, attr)
                    if isinstance(entity, ApplyRef):
                        found.append((cls, entity))
        return tuple(found)

    @functools.cache  # noqa: B019 - one index per run
    def _assigned_from_outside(self, attr: str) -> bool:
        """``obj.attr = ...`` (or ``setattr(obj, "attr", ...)``) anywhere in the project with
        ``obj`` other than ``self``."""
        pattern = re.compile(  # in any layout: black's brackets, backslash continuations
            rf"(?:\b(?!self\b)\w+[\s\\]*\.[\s\\]*{re.escape(attr)}[\s\\]*=(?!=))"
            rf"|setattr\([^,]*,\s*['\"]{re.escape(attr)}['\"]"
        )
        return any(attr in text and pattern.search(text) for text in map(self.text, self._files))

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
        if not any(isinstance(r, ApplyRef) for r in results):
            return Unknown(f"the value of a call of {ref.node.name.value} is not known statically")
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


def _contains(tree: cst.CSTNode, node: cst.CSTNode) -> bool:
    found = False

    class Finder(cst.CSTVisitor):
        def on_visit(self, n: cst.CSTNode) -> bool:
            nonlocal found
            found = found or n is node
            return not found

    tree.visit(Finder())
    return found


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


def relative_name(path: Path, root: Path) -> str:
    """``path`` relative to the project root, with ``/`` (absolute outside it)."""
    return (path.relative_to(root) if path.is_relative_to(root) else path).as_posix()


def _common_parts(a: Path, b: Path) -> tuple[str, ...]:
    common = []
    for x, y in zip(a.parts, b.parts, strict=False):
        if x != y:
            break
        common.append(x)
    return tuple(common)
