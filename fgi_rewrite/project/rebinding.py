"""The proof that a value read at run time never changes, so that the rewrite may inline it.

A module global, a class attribute or an entry of a container a global holds is inlined only
when no file of the project may change it after it is first bound: no ``global`` statement for
it, no attribute assignment (``=``, ``+=``, ``del``, a loop target) through the module or the
class from any file and any alias, no ``setattr``/``delattr`` that could reach it (one with a
name that is not a literal counts for every attribute of its receiver), no write through
``vars()``/``__dict__``/``globals()``, no item assignment or mutating method call on a container.
A write through a receiver that cannot be resolved (a parameter, a local, an attribute of one)
counts when the module, class or container may reach it: when it is used as a plain value
anywhere (passed, stored, returned). A write through a module looked up by name
(``importlib.import_module(...)``, ``sys.modules[...]``, or a local bound to one) counts for
every module; ``type(x).attr = v`` and ``x.__class__.attr = v`` count for every class. A value
passed to a project function that only reads the parameter (its attributes, ``getattr``,
``vars(p).items()``) is not used as a value. Whatever cannot be decided counts as a write: the
value is then read at run time instead of inlined, which is always what the original does.

Each question answers with the reason a write is possible (shown in notes), or None when none is.
The scan is cheap: a file is read with the stdlib AST (``file_writes.collect``) only when a
substring prefilter says it may hold a relevant write, once per run; receivers are resolved with
the project index only for those writes.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import libcst as cst

from fgi_rewrite.project.entities import (
    ClassRef,
    Entity,
    FunctionRef,
    ModuleRef,
    Unknown,
    ValueRef,
)
from fgi_rewrite.project.file_writes import FileWrites, collect, parameter_read_only
from fgi_rewrite.project.source_module import ClassInfo, ModuleInfo, SourceError, module_name_for


class ProjectIndex(Protocol):
    """What the proof asks of the project index (``index.ProjectIndex``, which holds one proof
    per run and answers its lookups)."""

    def text(self, path: Path) -> str: ...

    def ast_tree(self, path: Path) -> ast.Module: ...

    def module(self, path: Path) -> ModuleInfo: ...

    def files_containing(self, words: tuple[str, ...]) -> list[Path]: ...

    def hidden_mentions(self, word: str) -> list[Path]: ...

    def resolve_dotted(self, dotted: str, near: Path | None = None, depth: int = 0) -> Entity: ...

    def resolve_expr(
        self,
        module: ModuleInfo,
        node: cst.BaseExpression,
        depth: int = 0,
        local: Mapping[str, Entity] | None = None,
    ) -> Entity: ...


# Substrings of a file that may write any attribute or name (then its facts are read).
_ANY_ATTRIBUTE = ("setattr(", "delattr(", "vars(", "__dict__")
_LOOKUPS = ("import_module", "__import__", "sys.modules", "reload(")


class RebindingProof:
    """Answers, for one project, whether a value may change after it is bound."""

    def __init__(self, index: ProjectIndex) -> None:
        self.index = index
        self._facts: dict[Path, FileWrites | None] = {}
        self._resolved: dict[tuple[Path, str], Entity] = {}
        self._module_escapes: dict[Path, bool] = {}
        self._class_escapes: dict[ClassInfo, bool] = {}

    # -- the three questions ---------------------------------------------------------------------
    def global_rebound(self, module: ModuleInfo, name: str) -> str | None:
        """Why ``module``'s global ``name`` may be rebound after its single binding, or None."""
        where = module.name
        hidden = self.hidden(name)
        if hidden:
            return hidden
        if name in module.assignments and (name in module.imports or name in module.functions):
            return f"'{name}' is bound twice in {where}"
        own = self.facts(module.path)
        if own is None:
            return f"{where} cannot be read"
        if name in own.declared_global:
            return f"'global {name}' in {where}"
        if own.writes_globals:
            return f"{where} writes globals()"
        short = module.name.rsplit(".", 1)[-1]
        return self._attribute_writes(
            name,
            lambda entity: isinstance(entity, ModuleRef) and entity.module.path == module.path,
            names=(short, *_LOOKUPS),
            lookups=True,
        ) or self._unresolved_writes(name, lambda: self.module_escapes(module), f"module {where}")

    def attribute_rebound(self, chain: Sequence[ClassInfo], attr: str) -> str | None:
        """Why ``attr`` of the classes in ``chain`` (a class and its bases up to the one that
        defines ``attr``: a write to any of them changes what the first gives) may change."""
        wanted = set(chain)
        hidden = self.hidden(attr)
        if hidden:
            return hidden
        for info in chain:
            local = self._local_class_writes(info, attr) if info.in_function else None
            if local:
                return local

        def matches(entity: Entity) -> bool:
            return isinstance(entity, ClassRef) and entity.info in wanted

        found = self._attribute_writes(
            attr, matches, classes=wanted, names=tuple(info.name for info in chain)
        )
        if found:
            return found
        return self._unresolved_writes(
            attr,
            lambda: any(self.class_escapes(info) for info in chain),
            f"class {chain[0].name}",
            classes=True,
        )

    def container_mutated(
        self, module: ModuleInfo, name: str, node: cst.BaseExpression
    ) -> str | None:
        """Why the container ``module``'s global ``name`` holds (the literal ``node``) may be
        changed in place: an item store, a mutating method call, or the container used as a
        plain value anywhere (passed, stored), which any code could then change."""
        hidden = self.hidden(name)
        if hidden:
            return hidden
        for path in self.files_with_word(name):
            facts = self.facts(path)
            if facts is None:
                return f"{path.name} cannot be read"
            if name in facts.local_attributes:
                return f"'.{name}' of a local is used as a value in {path.name}"
            for dotted in self._mentioning(facts, name, path):
                entity = self.resolve(path, dotted)
                if isinstance(entity, Unknown) or (
                    isinstance(entity, ValueRef) and entity.node is node
                ):
                    return f"'{dotted}' is used as a value in {path.name}"
            for receiver in facts.item_writes:
                if receiver.kind == "global" and receiver.dotted.split(".")[-1] == name:
                    entity = self.resolve(path, receiver.dotted)
                    if isinstance(entity, ValueRef) and entity.node is node:
                        return f"'{receiver.dotted}' is changed in place in {path.name}"
                    if isinstance(entity, Unknown):
                        return f"'{receiver.dotted}' in {path.name} may be it"
        return None

    def _local_class_writes(self, info: ClassInfo, attr: str) -> str | None:
        """A class built inside a function is reached through that function's name for it (and
        ``cls`` in its classmethods), which no module-level resolution sees: any such write of
        ``attr`` in its file counts. Where the class object leaves the function (returned,
        stored), a write through any name the proof cannot resolve counts too."""
        facts = self.facts(info.path)
        if facts is None:
            return f"{info.path.name} cannot be read"
        for receiver in facts.writes_of(attr):
            if receiver.kind == "local_class" and receiver.dotted == info.name:
                return f"'{info.name}.{attr}' is written where {info.name} is built"
            if receiver.kind == "cls" and receiver.owner.rsplit(".", 1)[-1] == info.name:
                return f"'cls.{attr}' is written in a classmethod of {info.name}"
        if not _used_as_value(self.index.text(info.path), info.name, (".", "(")):
            return None
        for path in self.files_with(f".{attr}", f"'{attr}'", f'"{attr}"'):
            facts = self.facts(path)
            if facts is None:
                return f"{path.name} cannot be read"
            for receiver, written in [*facts.attribute_writes, *facts.setattrs]:
                if written != attr or receiver.kind in ("self", "lookup"):
                    continue
                if receiver.kind == "global":
                    entity = self.resolve(path, receiver.dotted)
                    if isinstance(entity, (ModuleRef, ClassRef)):
                        continue
                return (
                    f"{info.name} leaves the function that builds it and '.{attr}' is "
                    f"written in {path.name}"
                )
        return None

    def hidden(self, name: str) -> str | None:
        """A notebook magic (or a cell the module leaves out) that names ``name``: unread code."""
        for path in self.index.hidden_mentions(name):
            return f"'{name}' appears in an IPython magic or a non-Python cell of {path.name}"
        return None

    # -- writes ----------------------------------------------------------------------------------
    def _attribute_writes(
        self,
        attr: str,
        matches: object,
        classes: set[ClassInfo] | None = None,
        names: tuple[str, ...] = (),
        lookups: bool = False,
    ) -> str | None:
        """A write of ``attr`` (assignment, setattr with its name) through a receiver that
        resolves to the target (``matches``), or (``lookups``, for modules) to a module looked
        up by name. A file that may write any attribute (``setattr``, ``vars``) can only reach
        the target through a name of it (``names``, or a class's ``cls``/``type(x)``)."""
        assert callable(matches)
        reach = names if classes is None else (*names, "cls", "type(", "__class__")
        for path in self._candidates(f".{attr}", reach):
            facts = self.facts(path)
            if facts is None:
                return f"{path.name} cannot be read"
            written = facts.writes_of(attr)
            if classes is None:
                written += facts.dict_uses
            for receiver in written:
                if receiver.kind == "global":
                    entity = self.resolve(path, receiver.dotted)
                    if matches(entity):
                        return f"'{receiver.dotted}.{attr}' is written in {path.name}"
                elif receiver.kind == "cls" and classes is not None:
                    owner = self.resolve(path, receiver.owner)
                    if isinstance(owner, ClassRef) and owner.info in classes:
                        return f"'cls.{attr}' is written in {path.name} ({receiver.owner})"
                elif receiver.kind == "class_of" and classes is not None:
                    return f"'type(...).{attr}' is written in {path.name}"
                elif receiver.kind == "lookup" and lookups:
                    return f"'.{attr}' of a module looked up by name is written in {path.name}"
        return None

    def _unresolved_writes(
        self, attr: str, escapes: Callable[[], bool], what: str, classes: bool = False
    ) -> str | None:
        """A write of ``attr`` through a receiver that cannot be resolved, which counts when the
        target is used as a plain value somewhere (``escapes``, asked only then, once)."""
        known: list[bool] = []

        def escaped() -> bool:
            if not known:
                known.append(escapes())
            return known[0]

        def unknown(path: Path, named: bool) -> str | None:
            facts = self.facts(path)
            if facts is None:
                return f"{path.name} cannot be read"
            receivers = [r for r, a in facts.attribute_writes if a == attr]
            receivers += [r for r, a in facts.setattrs if a == attr or (a is None and not named)]
            if not classes and not named:
                receivers += facts.dict_uses
            if any(r.kind == "unknown" for r in receivers) and escaped():
                return f"{what} is used as a value and '.{attr}' is written in {path.name}"
            return None

        # Writes that name the attribute first: the files with a setattr that does not (many,
        # in large projects) only matter when the target is used as a value at all.
        for path in self.files_with(f".{attr}", f"'{attr}'", f'"{attr}"'):
            found = unknown(path, named=True)
            if found:
                return found
        generic = self.files_with(*_ANY_ATTRIBUTE)
        if not generic or not escaped():
            return None
        for path in generic:
            found = unknown(path, named=False)
            if found:
                return found
        return None

    def _candidates(self, written: str, names: tuple[str, ...]) -> list[Path]:
        """Files that may write the attribute: ``written`` in them, or a way to write any
        attribute together with one of ``names``."""
        direct = set(self.files_with(written))
        generic = set(self.files_with(*_ANY_ATTRIBUTE)) & set(self.files_with(*names))
        return sorted(direct | generic)

    # -- escapes ---------------------------------------------------------------------------------
    def module_escapes(self, module: ModuleInfo) -> bool:
        if module.path not in self._module_escapes:
            self._module_escapes[module.path] = self._module_escapes_uncached(module)
        return self._module_escapes[module.path]

    def _module_escapes_uncached(self, module: ModuleInfo) -> bool:
        """Whether the module object may reach code the proof cannot follow: it is passed or
        stored as a value somewhere (a module looked up by name is followed where it is bound:
        ``lookup`` receivers)."""
        short = module.name.rsplit(".", 1)[-1]
        for path in self.files_with_word(short):
            if not _used_as_value(self.index.text(path), short, (".",)):
                continue  # every use reads an attribute of it, or imports it
            facts = self.facts(path)
            if facts is None:
                return True
            for dotted in self._mentioning(facts, short, path):
                entity = self.resolve(path, dotted)
                if isinstance(entity, ModuleRef) and entity.module.path == module.path:
                    return True
        return False

    def class_escapes(self, info: ClassInfo) -> bool:
        if info not in self._class_escapes:
            self._class_escapes[info] = self._class_escapes_uncached(info)
        return self._class_escapes[info]

    def _class_escapes_uncached(self, info: ClassInfo) -> bool:
        """Whether the class object may reach code the proof cannot follow (see
        ``module_escapes``); instantiating it, reading its attributes, subclassing it and
        ``isinstance`` do not count."""
        for path in self.files_with_word(info.name):
            if not _used_as_value(self.index.text(path), info.name, (".", "(")):
                continue  # every use reads an attribute, calls it or imports it
            facts = self.facts(path)
            if facts is None:
                return True
            for dotted in self._mentioning(facts, info.name, path):
                entity = self.resolve(path, dotted)
                if isinstance(entity, ClassRef) and entity.info == info:
                    return True
        return False

    def _mentioning(self, facts: FileWrites, name: str, path: Path) -> list[str]:
        """The dotted names of a file, used as plain values, that may denote ``name``: ending
        with it, or rooted at a name an import binds to something ending with it. One passed to
        a project function that only reads its parameter does not count."""
        aliases = {local for local, full in facts.imports.items() if full.endswith(name)}

        def may_be(dotted: str) -> bool:
            return dotted.rsplit(".", 1)[-1] == name or dotted.split(".")[0] in aliases

        found = {d for d in facts.escaped if may_be(d)}
        found |= {
            d
            for d, callee, where in facts.passed
            if may_be(d) and not self._reads(path, callee, where)
        }
        return sorted(found)

    def _reads(self, path: Path, callee: str, where: int | str) -> bool:
        """Whether the project function ``callee`` (as spelled in ``path``) only reads its
        parameter ``where``."""
        entity = self.resolve(path, callee)
        if not isinstance(entity, FunctionRef):
            return False
        try:
            tree = self.index.ast_tree(entity.path)
        except SourceError:
            return False
        name = entity.node.name.value
        functions = [s for s in tree.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]
        function = next((f for f in reversed(functions) if f.name == name), None)
        return function is not None and parameter_read_only(function, where)

    # -- the scan --------------------------------------------------------------------------------
    def files_with(self, *words: str) -> list[Path]:
        return self.index.files_containing(words)

    def files_with_word(self, word: str) -> list[Path]:
        """Files where ``word`` stands as a whole identifier."""
        pattern = re.compile(rf"(?<![\w]){re.escape(word)}(?![\w])")
        return [p for p in self.files_with(word) if pattern.search(self.index.text(p))]

    def facts(self, path: Path) -> FileWrites | None:
        """The write facts of one file (None when it cannot be parsed)."""
        if path not in self._facts:
            try:
                tree = self.index.ast_tree(path)
            except SourceError:
                self._facts[path] = None
            else:
                self._facts[path] = collect(tree, module_name_for(path)[1])
        return self._facts[path]

    def resolve(self, path: Path, dotted: str) -> Entity:
        """What a dotted name spelled at module level of ``path`` denotes."""
        key = (path, dotted)
        if key not in self._resolved:
            self._resolved[key] = self._resolve(path, dotted)
        return self._resolved[key]

    def _resolve(self, path: Path, dotted: str) -> Entity:
        facts = self.facts(path)
        head, _, rest = dotted.partition(".")
        if facts is not None and head in facts.imports:
            full = facts.imports[head] + (f".{rest}" if rest else "")
            return self.index.resolve_dotted(full, path)
        try:
            module = self.index.module(path)
            return self.index.resolve_expr(module, cst.parse_expression(dotted))
        except (SourceError, cst.ParserSyntaxError):
            return Unknown("cannot be read")


def _used_as_value(text: str, word: str, followers: tuple[str, ...]) -> bool:
    """Whether ``word`` may be used as a plain value in ``text``: some occurrence is neither
    followed by one of ``followers`` (``.``: an attribute is read) nor on an import line. A
    cheap text test before the file's facts are read."""
    for match in re.finditer(rf"(?<![\w.]){re.escape(word)}(?!\w)", text):
        rest = text[match.end() : match.end() + 40].lstrip(" \t")
        if rest.startswith(followers):
            continue
        line_start = text.rfind("\n", 0, match.start()) + 1
        if text[line_start : match.start()].lstrip().startswith(("import ", "from ")):
            continue
        return True
    return False


def classes_up_to(mro: Iterable[ClassInfo], attr: str) -> list[ClassInfo]:
    """The classes of ``mro`` up to the first that defines ``attr`` in its body: a write of
    ``attr`` to any of them changes what the first class gives."""
    chain = []
    for info in mro:
        chain.append(info)
        if attr in info.body_assignments():
            break
    return chain
