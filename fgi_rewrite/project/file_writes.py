"""What one file may write into module, class or container state: the syntactic facts the
rebinding proof (``project/rebinding.py``) is made of.

Read with the stdlib AST (about ten times cheaper than libcst), once per file and only for files
a substring prefilter selects. Nothing is resolved here: a receiver is described by how it is
spelled (a global dotted name, ``self``, ``cls``, a local, ``type(x)``); the proof resolves the
global ones with the project index.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

# Methods of list, dict and set that change the container in place.
MUTATING_METHODS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "remove",
        "pop",
        "popitem",
        "clear",
        "sort",
        "reverse",
        "update",
        "setdefault",
        "add",
        "discard",
        "difference_update",
        "intersection_update",
        "symmetric_difference_update",
        "__setitem__",
        "__delitem__",
        "__iadd__",
        "__imul__",
    }
)
# Builtins that only read their argument: passing a value to them is not an escape.
_READING_CALLS = frozenset(
    {
        "isinstance",
        "issubclass",
        "len",
        "hasattr",
        "getattr",
        "type",
        "id",
        "print",
        "repr",
        "str",
        "float",
        "int",
        "bool",
        "hash",
        "sorted",
        "min",
        "max",
        "sum",
        "any",
        "all",
        "tuple",
        "list",
        "dict",
        "set",
        "frozenset",
        "enumerate",
        "zip",
        "iter",
        "next",
        "reversed",
        "callable",
    }
)
# Reads of ``globals()``: anything else (a subscript store, ``update``, ``exec(..., globals())``)
# may write the module's globals.
_GLOBALS_READS = frozenset(
    {"get", "keys", "values", "items", "copy", "__contains__", "__getitem__"}
)
# Calls that give a module object from its name: any module may then be written through it.
_MODULE_LOOKUPS = frozenset({"import_module", "__import__", "reload"})


@dataclass(frozen=True)
class Receiver:
    """What a write acts on, as spelled: ``global`` (a dotted name rooted at a module-level name
    of the file, ``dotted``), ``self`` (the instance of a plain method), ``cls`` (the class of a
    classmethod of ``owner``), ``class_of`` (``type(x)``, ``x.__class__``), ``lookup`` (a module
    looked up by name: ``importlib.import_module(...)``, ``sys.modules[...]``, or a local bound
    to one), ``local_class`` (a dotted name rooted at a class defined in the enclosing function,
    ``dotted``) or ``unknown`` (a local, a parameter, an attribute of one, a call's result)."""

    kind: str
    dotted: str = ""
    owner: str = ""  # for ``cls``: the dotted path of the class in its module


@dataclass
class FileWrites:
    attribute_writes: list[tuple[Receiver, str]] = field(default_factory=list)
    setattrs: list[tuple[Receiver, str | None]] = field(default_factory=list)  # None: not literal
    dict_uses: list[Receiver] = field(default_factory=list)  # ``vars(X)``, ``X.__dict__``
    item_writes: list[Receiver] = field(default_factory=list)  # stores, dels, mutating methods
    declared_global: set[str] = field(default_factory=set)
    writes_globals: bool = False  # ``globals()`` (or module-level ``vars()``) used to write
    # Global names and dotted names rooted at one, used as plain values (stored, returned).
    escaped: set[str] = field(default_factory=set)
    # Those passed to a call instead: (dotted, callee as spelled, position or keyword); the
    # callee may only read its parameter (``parameter_read_only``).
    passed: list[tuple[str, str, int | str]] = field(default_factory=list)
    local_attributes: set[str] = field(default_factory=set)  # ``f(x.SLOPES)``, x a local
    imports: dict[str, str] = field(default_factory=dict)  # local name -> dotted (resolved)

    def writes_of(self, attr: str) -> list[Receiver]:
        """What ``.attr`` is written on: assignments, and ``setattr`` with that name or with a
        name that is not a literal (which may be it)."""
        written = [receiver for receiver, a in self.attribute_writes if a == attr]
        return written + [receiver for receiver, a in self.setattrs if a in (attr, None)]


@dataclass
class _Scope:
    local: set[str]
    self_name: str = ""
    cls_name: str = ""
    owner: str = ""
    lookups: set[str] = field(default_factory=set)  # locals bound to a module looked up by name
    classes: set[str] = field(default_factory=set)  # classes defined in this function's body


def _target_names(target: ast.expr) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return {n for e in target.elts for n in _target_names(e)}
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return set()


def _locals(func: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """Parameters and names bound in ``func``'s own body (not in nested functions), minus those
    declared ``global`` or ``nonlocal``."""
    arguments = func.args
    names = {
        a.arg
        for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)
        + tuple(a for a in (arguments.vararg, arguments.kwarg) if a is not None)
    }
    declared: set[str] = set()
    pending: list[ast.AST] = list(func.body) if isinstance(func.body, list) else [func.body]
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            declared.update(node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        elif isinstance(node, ast.Lambda):
            continue
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= _target_names(target)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            names |= _target_names(node.target)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            names |= _target_names(node.optional_vars)
        elif isinstance(node, ast.NamedExpr):
            names |= _target_names(node.target)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        pending.extend(ast.iter_child_nodes(node))
    return names - declared


def _local_classes(func: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """The classes defined in ``func``'s own body (not in nested functions or classes)."""
    if isinstance(func, ast.Lambda):
        return set()
    found: set[str] = set()
    pending: list[ast.AST] = list(func.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.ClassDef):
            found.add(node.name)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            pending.extend(ast.iter_child_nodes(node))
    return found


def _decorators(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    found = set()
    for decorator in func.decorator_list:
        while isinstance(decorator, ast.Call):
            decorator = decorator.func
        if isinstance(decorator, ast.Name):
            found.add(decorator.id)
        elif isinstance(decorator, ast.Attribute):
            found.add(decorator.attr)
    return found


def _is_lookup(node: ast.expr) -> bool:
    """``importlib.import_module(...)``, ``__import__(...)``, ``sys.modules[...]``."""
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return name in _MODULE_LOOKUPS
    return isinstance(node, ast.Subscript) and _dotted(node.value) == "sys.modules"


def _container(node: ast.expr) -> ast.expr:
    """The container an item store changes: ``TABLE`` in ``TABLE[0][1] = v`` (the nested list
    is part of it), ``mod.SLOPES`` in ``mod.SLOPES[0] = v``."""
    while isinstance(node, ast.Subscript):
        node = node.value
    return node


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


class _Collector(ast.NodeVisitor):
    def __init__(self, package: str) -> None:
        self.package = package
        self.facts = FileWrites()
        self.scopes: list[_Scope] = []
        self.classes: list[str] = []
        self.stack: list[ast.AST] = []  # the node being visited last, its ancestors before it

    def visit(self, node: ast.AST) -> None:
        self.stack.append(node)
        try:
            super().visit(node)
        finally:
            self.stack.pop()

    def parent(self, up: int = 1) -> ast.AST | None:
        """The ancestor ``up`` levels above the node being visited."""
        return self.stack[-1 - up] if len(self.stack) > up else None

    # -- scopes ---------------------------------------------------------------------------------
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for child in (*node.bases, *node.keywords, *node.decorator_list):
            self.visit(child)
        self.classes.append(node.name)
        for stmt in node.body:
            self.visit(stmt)
        self.classes.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        scope = _Scope(_locals(node), classes=_local_classes(node))
        args = [*node.args.posonlyargs, *node.args.args]
        in_class = bool(self.classes) and not isinstance(node, ast.Lambda)
        if in_class and args and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            decorators = _decorators(node)
            if "classmethod" in decorators:
                scope.cls_name, scope.owner = args[0].arg, ".".join(self.classes)
            elif "staticmethod" not in decorators:
                scope.self_name = args[0].arg
        self.scopes.append(scope)
        self.generic_visit(node)
        self.scopes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node)

    def _is_local(self, name: str) -> bool:
        return any(name in scope.local for scope in self.scopes)

    # -- receivers ------------------------------------------------------------------------------
    def receiver(self, node: ast.expr) -> Receiver:
        if _is_lookup(node):
            return Receiver("lookup")
        if isinstance(node, ast.Attribute) and node.attr == "__class__":
            return Receiver("class_of")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "type"
            and len(node.args) == 1
        ):
            return Receiver("class_of")
        dotted = _dotted(node)
        if dotted is None:
            return Receiver("unknown")
        head = dotted.split(".")[0]
        scope = self.scopes[-1] if self.scopes else None
        if scope is not None and head == scope.self_name and "." not in dotted:
            return Receiver("self")
        if scope is not None and head == scope.cls_name and "." not in dotted:
            return Receiver("cls", owner=scope.owner)
        if any(head in s.lookups for s in self.scopes) and "." not in dotted:
            return Receiver("lookup")
        if self._is_local(head):
            # The innermost function binding ``head`` decides what it is: a class it builds?
            binding = next((s for s in reversed(self.scopes) if head in s.local), None)
            if binding is not None and head in binding.classes:
                return Receiver("local_class", dotted)
            return Receiver("unknown")
        return Receiver("global", dotted)

    # -- writes ---------------------------------------------------------------------------------
    def target(self, node: ast.expr) -> None:
        if isinstance(node, ast.Attribute):
            self.facts.attribute_writes.append((self.receiver(node.value), node.attr))
        elif isinstance(node, ast.Subscript):
            self.facts.item_writes.append(self.receiver(_container(node)))
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                self.target(element)
        elif isinstance(node, ast.Starred):
            self.target(node.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self.target(target)
            if self.scopes and isinstance(target, ast.Name) and _is_lookup(node.value):
                self.scopes[-1].lookups.add(target.id)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.target(node.target)
        if isinstance(node.target, ast.Name) and not self._is_local(node.target.id):
            # ``SLOPES += [x]`` extends the list in place (and rebinds the name).
            self.facts.item_writes.append(Receiver("global", node.target.id))
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.target(node.target)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self.target(target)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        self.target(node.target)
        self.generic_visit(node)

    def visit_withitem(self, node: ast.withitem) -> None:
        if node.optional_vars is not None:
            self.target(node.optional_vars)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self.facts.declared_global.update(node.names)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        if name in ("setattr", "delattr") and node.args:
            attr = None
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                attr = node.args[1].value if isinstance(node.args[1].value, str) else None
            self.facts.setattrs.append((self.receiver(node.args[0]), attr))
        elif name == "vars":
            if node.args:
                self.facts.dict_uses.append(self.receiver(node.args[0]))
            elif not self.scopes:
                self.facts.writes_globals = True
        elif name == "globals" and not self._globals_read(node):
            self.facts.writes_globals = True
        if isinstance(func, ast.Attribute) and func.attr in MUTATING_METHODS:
            self.facts.item_writes.append(self.receiver(_container(func.value)))
        self.generic_visit(node)

    def _globals_read(self, call: ast.Call) -> bool:
        parent = self.parent()
        if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Load):
            return True
        if isinstance(parent, ast.Attribute) and parent.attr in _GLOBALS_READS:
            return True
        return isinstance(parent, ast.Compare)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr == "__dict__":
            self.facts.dict_uses.append(self.receiver(node.value))
        if isinstance(node.ctx, ast.Load) and self._escapes(node):
            dotted = _dotted(node)
            if dotted is not None and not self._is_local(dotted.split(".")[0]):
                self.escape(node, dotted)
            else:
                self.facts.local_attributes.add(node.attr)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and not self._is_local(node.id) and self._escapes(node):
            self.escape(node, node.id)

    def escape(self, node: ast.expr, dotted: str) -> None:
        """A global value used as a value: passed to a call (which may only read it), or
        anything else."""
        parent = self.parent()
        where: int | str | None = None
        call = parent
        if isinstance(parent, ast.keyword):
            call, where = self.parent(2), parent.arg
        elif isinstance(parent, ast.Call) and node in parent.args:
            where = parent.args.index(node)
        callee = _dotted(call.func) if isinstance(call, ast.Call) else None
        if where is not None and callee is not None and not self._is_local(callee.split(".")[0]):
            self.facts.passed.append((dotted, callee, where))
            return
        self.facts.escaped.add(dotted)

    def _escapes(self, node: ast.expr) -> bool:
        """Whether the value of ``node`` is used as a value (passed, stored, returned) rather
        than only read from: an attribute or item access, a call of it, a base class, a
        comparison, an iteration, an argument of a reading builtin."""
        parent = self.parent()
        if isinstance(parent, (ast.Attribute, ast.Subscript)) and parent.value is node:
            return False
        if isinstance(parent, ast.Call):
            if parent.func is node:
                return False
            callee = parent.func
            if isinstance(callee, ast.Name) and callee.id in _READING_CALLS:
                return False
        if isinstance(parent, ast.ClassDef) and node in parent.bases:
            return False
        if isinstance(parent, (ast.Compare, ast.Expr)):
            return False
        if isinstance(parent, (ast.For, ast.comprehension)) and parent.iter is node:
            return False
        return not isinstance(parent, (ast.Import, ast.ImportFrom))

    # -- imports --------------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.facts.imports[alias.asname] = alias.name
            else:
                head = alias.name.split(".")[0]
                self.facts.imports.setdefault(head, head)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            package = self.package.split(".") if self.package else []
            anchor = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:
            if alias.name != "*":
                local = alias.asname or alias.name
                self.facts.imports[local] = f"{base}.{alias.name}" if base else alias.name


def collect(tree: ast.Module, package: str) -> FileWrites:
    """The write facts of one parsed file (``package``: for its relative imports)."""
    collector = _Collector(package)
    collector.visit(tree)
    return collector.facts


def parameter_read_only(func: ast.FunctionDef | ast.AsyncFunctionDef, position: int | str) -> bool:
    """Whether ``func`` only reads from the parameter at ``position`` (an index, or a keyword):
    attributes and items of it, ``getattr``/``vars(...).items()``-style reads, comparisons. A
    store, a ``setattr``, a mutating call through it, or passing it on counts as not."""
    arguments = [*func.args.posonlyargs, *func.args.args]
    if isinstance(position, int):
        if not 0 <= position < len(arguments):
            return False
        name = arguments[position].arg
    else:
        name = position
        if name not in {a.arg for a in (*arguments, *func.args.kwonlyargs)}:
            return False
    parents = {id(c): p for p in ast.walk(func) for c in ast.iter_child_nodes(p)}
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and node.id == name and not _read_only(node, parents):
            return False
    return True


def _read_only(node: ast.Name, parents: dict[int, ast.AST]) -> bool:
    if not isinstance(node.ctx, ast.Load):
        return False
    top: ast.expr = node
    parent = parents.get(id(top))
    while isinstance(parent, (ast.Attribute, ast.Subscript)) and parent.value is top:
        if not isinstance(parent.ctx, ast.Load):
            return False  # ``param.X = v``, ``param.L[0] = v``, ``del param.X``
        top, parent = parent, parents.get(id(parent))
    if isinstance(parent, ast.Call) and parent.func is top:
        return not (isinstance(top, ast.Attribute) and top.attr in MUTATING_METHODS)
    if top is node and isinstance(parent, ast.Call):
        callee = parent.func
        name = callee.id if isinstance(callee, ast.Name) else ""
        if name == "vars":
            outer = parents.get(id(parent))
            return isinstance(outer, ast.Attribute) and outer.attr in _GLOBALS_READS
        return name in _READING_CALLS and name != "setattr"
    if top is node:
        return isinstance(parent, (ast.Compare, ast.Expr))
    return True  # a value read from it, used anywhere
