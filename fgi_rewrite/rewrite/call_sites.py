"""Find call sites in one module and rewrite them (the single place call sites are edited).

The generated functions and the imports the rewritten sites need are added afterwards, by
``module_edits``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import libcst as cst

from fgi_rewrite.analysis.analyze import forward_params
from fgi_rewrite.core import codes
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.core.model import Diagnostic, Location, Param, Style, Surrogate
from fgi_rewrite.core.names import FreshNames
from fgi_rewrite.core.results import CallSite, CallStyle
from fgi_rewrite.project.entities import ApplyRef, ClassRef, Entity, External, FunctionRef, Unknown
from fgi_rewrite.project.index import ProjectIndex, local_entities
from fgi_rewrite.project.prefilter import CalleeNames, statements_with_candidates
from fgi_rewrite.project.source_module import ClassInfo, ModuleInfo, SourceError
from fgi_rewrite.rewrite.callables import bind_without_callables, passed_callables
from fgi_rewrite.rewrite.emit import Emission, emit_inline, function_name
from fgi_rewrite.rewrite.hygiene import Inserted, Intent, base_intents
from fgi_rewrite.rewrite.references import ModuleNames, Unnameable, names_of

SKIP_MARKER = "fgi: skip"
MAX_DISPATCH = 8  # classes in a run-time dispatch on a class-valued parameter


# Contexts where statements cannot be inserted before the call.
_EXPRESSION_SCOPES = (
    cst.Lambda,
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
    cst.IfExp,
    cst.BooleanOperation,
    cst.Param,
    cst.Decorator,
    cst.Await,
)


Specializer = Callable[
    [ClassInfo, Mapping[str, cst.BaseExpression], tuple[tuple[str, str], ...]],
    "Surrogate | Diagnostic",
]


class _Scope:
    def __init__(
        self, names: Mapping[str, Entity], cls: ClassInfo | None = None, self_name: str = ""
    ) -> None:
        self.names = names
        self.cls = cls  # class whose methods' ``self`` this scope binds
        self.self_name = self_name


class CallSiteRewriter(cst.CSTTransformer):
    def __init__(
        self,
        index: ProjectIndex,
        module: ModuleInfo,
        surrogates: Mapping[str, Surrogate | Diagnostic],
        style: Style,
        names: CalleeNames,
        specialize: Specializer | None = None,
        skip: Mapping[str, str] | None = None,
    ) -> None:
        self.index = index
        self.specialize = specialize
        # Call sites (locations as text) left unchanged: their inserted code cannot mean the
        # same there (``hygiene.py``), said once by the caller.
        self.skip = skip or {}
        self.references = ModuleNames(index, module, names_of(index, module))
        self.inserted = Inserted(intents=base_intents())
        self.pending_sites: list[list[str]] = []  # call sites of the pending statements
        self.module = module
        self.surrogates = surrogates
        self.style = style
        self.scopes: list[_Scope] = []
        self.containers: list[str] = []  # "class" / "function", innermost last
        self.callees: set[int] = set()  # ids of call targets (``f`` in ``f(x)``)
        self.classes: list[ClassInfo] = []
        self.taken: list[cst.Module | cst.FunctionDef] = [module.tree]
        self.allocators: dict[int, FreshNames] = {}  # per scope (module or function)
        self.pending: list[list[str]] = []  # statements to insert, per open simple statement
        self.statement: list[cst.SimpleStatementLine | None] = []
        self.expression_depth = 0
        self.inlined: set[int] = set()
        self.call_sites: list[CallSite] = []
        self.diagnostics: list[Diagnostic] = []
        self.functions: dict[str, str] = {}  # qualname -> generated function name
        # The source as read (code generation of the whole tree costs as much as the transform).
        utf8 = module.tree.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        source = index.text(module.path) if utf8 else module.tree.code
        self.callee_names = names.for_module(source)
        self.skip_lines = {
            i + 1 for i, line in enumerate(source.splitlines()) if SKIP_MARKER in line
        }
        self.mentions_autograd = "autograd" in source

    # -- scopes -----------------------------------------------------------------------------------
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.containers.append("class")
        info = self.module.class_by_node.get(id(node))
        if info is not None:
            self.classes.append(info)

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        self.containers.pop()
        if id(original) in self.module.class_by_node:
            self.classes.pop()
        return updated

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.containers.append("function")
        local = local_entities(self.index, self.module, node)
        cls = None
        self_name = ""
        params = [*node.params.posonly_params, *node.params.params]
        is_static = any(sym.code(d.decorator) == "staticmethod" for d in node.decorators)
        if self.classes and self._directly_in_class(node) and params and not is_static:
            cls, self_name = self.classes[-1], params[0].name.value
        self.scopes.append(_Scope(local, cls, self_name))
        self.taken.append(node)

    def leave_FunctionDef(
        self, original: cst.FunctionDef, updated: cst.FunctionDef
    ) -> cst.FunctionDef:
        self.containers.pop()
        self.scopes.pop()
        self.taken.pop()
        return updated

    def _directly_in_class(self, node: cst.FunctionDef) -> bool:
        return any(s is node for s in self.classes[-1].node.body.body)

    # -- statements -------------------------------------------------------------------------------
    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self.pending.append([])
        self.pending_sites.append([])
        self.statement.append(node if len(node.body) == 1 else None)

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        lines = self.pending.pop()
        sites = tuple(self.pending_sites.pop())
        self.statement.pop()
        if not lines:
            return updated
        block = list(cst.parse_module("\n".join(lines) + "\n").body)
        inserted = len(block)
        if not _is_self_assignment(updated):
            block.append(updated.with_changes(leading_lines=()))
        elif updated.trailing_whitespace.comment is not None:
            # Keep the comment on the line that now computes the assigned value.
            for i, stmt in enumerate(block):
                if isinstance(stmt, cst.SimpleStatementLine) and _assigns(stmt, updated):
                    block[i] = stmt.with_changes(trailing_whitespace=updated.trailing_whitespace)
                    break
        block[0] = block[0].with_changes(leading_lines=updated.leading_lines)
        for stmt in block[:inserted]:  # as they go into the tree (after the changes above)
            self.inserted.add(stmt, sites)
        return cst.FlattenSentinel(block)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, _EXPRESSION_SCOPES):
            self.expression_depth += 1
        if isinstance(node, cst.Call):
            self.callees.add(id(node.func))
        return super().on_visit(node)

    # -- references to apply that are not calls -----------------------------------------------
    def leave_Attribute(
        self, original: cst.Attribute, updated: cst.Attribute
    ) -> cst.BaseExpression:
        """``Fn.apply`` passed or stored where its calls cannot be followed (a default argument,
        an attribute set in one branch, an argument): the generated function takes its place,
        with the same parameters. Aliases the index follows are left as they are."""
        if original.attr.value != "apply" or id(original) in self.callees:
            return updated
        if self.is_followed_alias(original):
            return updated
        if not _is_candidate(original, self.callee_names):
            return updated
        target = self.resolve_callee(original)
        if isinstance(target, Unknown):
            return self.class_parameter_dispatch(original, updated)
        if not isinstance(target, ApplyRef) or target.closure:
            return updated
        result = self.analysis_of(target.info)
        if not isinstance(result, Surrogate):
            return updated
        location = self.module.location(original)
        if location.line in self.skip_lines or str(location) in self.skip:
            return updated
        name = self.functions.setdefault(result.qualname, function_name(result))
        self.call_sites.append(CallSite(result.qualname, str(location), CallStyle.REFERENCE))
        return self.generated(name, location)

    def class_parameter_dispatch(
        self, original: cst.Attribute, updated: cst.Attribute
    ) -> cst.BaseExpression:
        """``spike_fn.apply``, called or stored, on a parameter whose default is a surrogate
        class (``spike_fn=StepPWL``): callers may pass another class, so the generated function
        is chosen at run time by identity, among the default and the surrogate classes defined
        in this module, and any other class keeps its own ``apply``::

            (step_fgi if spike_fn is Step else exp_fgi if spike_fn is Exp else spike_fn.apply)
        """
        if not isinstance(original.value, cst.Name) or self.expression_depth:
            return updated
        parameter = original.value.value
        default = self.parameter_default(parameter)
        if default is None:
            return updated
        entity = self.index.resolve_value(self.module, default)
        if not isinstance(entity, ClassRef):
            return updated
        location = self.module.location(original)
        if location.line in self.skip_lines or str(location) in self.skip:
            return updated
        others = [
            info
            for info in self.module.top_classes.values()
            if info != entity.info and isinstance(self.surrogates.get(info.qualname), Surrogate)
        ]
        if len(others) > MAX_DISPATCH - 1:
            others = []  # a library of surrogates: only the default, not a chain of all of them
        candidates = [entity.info, *others]
        chain: cst.BaseExpression = updated
        chosen: list[tuple[str, str]] = []  # (class name, generated function)
        for info in candidates:
            result = self.surrogates.get(info.qualname)
            name = info.name if info.path == self.module.path else sym.code(default)
            if not isinstance(result, Surrogate) or info.in_function or info.owner is not None:
                continue
            if not self.names_class(name, info):
                continue
            function = self.functions.setdefault(result.qualname, function_name(result))
            self.call_sites.append(CallSite(result.qualname, str(location), CallStyle.REFERENCE))
            chosen.append((name, function))
        for name, function in reversed(chosen):
            test = cst.parse_expression(f"{parameter} is {name}")
            chain = cst.IfExp(test=test, body=self.generated(function, location), orelse=chain)
        return sym.paren(chain) if chosen else updated

    def parameter_default(self, name: str) -> cst.BaseExpression | None:
        """The default of ``name`` when it is a parameter of the enclosing function that its
        body never rebinds."""
        func = self.taken[-1]
        if not isinstance(func, cst.FunctionDef) or name in sym.rebound_names(func):
            return None
        params = func.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            if param.name.value == name:
                return param.default
        return None

    def names_class(self, name: str, info: ClassInfo) -> bool:
        """Whether ``name`` (a dotted name) means ``info`` at the reference."""
        entity = self.resolve_entity(cst.parse_expression(name))
        return isinstance(entity, ClassRef) and entity.info == info

    def is_followed_alias(self, node: cst.Attribute) -> bool:
        """``alias = Fn.apply`` at module or class level, or the only ``self.f = Fn.apply`` of
        a class: the index resolves calls through these, so they stay."""
        statement = self.statement[-1] if self.statement else None
        if statement is None:
            return False
        small = statement.body[0]
        if not isinstance(small, cst.Assign) or small.value is not node or len(small.targets) != 1:
            return False
        target = small.targets[0].target
        if isinstance(target, cst.Name):
            return not self.containers or self.containers[-1] == "class"
        if isinstance(target, cst.Attribute) and self.classes:
            assigned = self.module.self_assignments.get(id(self.classes[-1].node), {})
            return len(assigned.get(target.attr.value, [])) == 1
        return False

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
        result = super().on_leave(original, updated)
        if isinstance(original, _EXPRESSION_SCOPES):
            self.expression_depth -= 1
        return result  # type: ignore[return-value]

    # -- calls ------------------------------------------------------------------------------------
    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not _is_candidate(original.func, self.callee_names):
            return updated  # cheap syntactic filter: most calls cannot reach a surrogate
        target = self.resolve_callee(original.func, original)
        if target is None:
            return updated
        location = self.module.location(original)
        if location.line in self.skip_lines or str(location) in self.skip:
            return updated
        if isinstance(target, Unknown):
            if isinstance(original.func, cst.Attribute) and isinstance(updated.func, cst.Attribute):
                # ``spike_fn.apply(x)`` on a parameter defaulting to a class: dispatch by identity.
                chosen = self.class_parameter_dispatch(original.func, updated.func)
                if chosen is not updated.func:
                    return updated.with_changes(func=chosen)
            self.diagnostics.append(Diagnostic(codes.UnresolvedCallSite, location, target.reason))
            return updated
        if isinstance(target, ClassRef):  # Fn()(x)
            self.diagnostics.append(
                Diagnostic(
                    codes.LegacyCall,
                    location,
                    f"legacy call of {target.info.name}: an instance of a Function is called",
                )
            )
            return updated
        info = target.info
        if info.location.line in self.skip_lines and info.path == self.module.path:
            return updated
        result = self.analysis_of(info)
        if target.closure and self.specialize is not None:
            result = self.specialize(info, {}, target.closure)
        if isinstance(result, Diagnostic) and result.specializable:
            result = self.specialized(info, updated)
        elif isinstance(result, Surrogate) and result.runtime_branches:
            literal = self.specialized(info, updated)  # literals fold the run-time branches
            if isinstance(literal, Surrogate) and not literal.runtime_branches:
                result = literal
        if not isinstance(result, Surrogate):
            return updated
        args = bind_without_callables(self, info, result, updated, location)
        if args is None:
            return updated
        if self.style is Style.INLINE and self.can_inline(original):
            try:
                emission = self.emit(result, args, original)
            except Unnameable as exc:
                self.diagnostics.append(
                    Diagnostic(
                        codes.StateNotReachable,
                        location,
                        f"{result.short_name} reads run-time state this module cannot reach: "
                        f"{exc}; left unchanged",
                    )
                )
                return updated
            self.pending[-1].extend(emission.statements)
            self.pending_sites[-1].append(str(location))
            self.inserted.moved.update(emission.moved)
            self.inlined.add(id(original))
            self.call_sites.append(CallSite(result.qualname, str(location), CallStyle.INLINE))
            return emission.result
        name = self.functions.setdefault(result.qualname, function_name(result))
        self.call_sites.append(CallSite(result.qualname, str(location), CallStyle.FUNCTION))
        return cst.Call(func=self.generated(name, location), args=[cst.Arg(a) for a in args])

    def generated(self, name: str, location: Location) -> cst.Name:
        """A use of a generated function (checked by ``hygiene.py``)."""
        node = cst.Name(name)
        self.inserted.add(node, (str(location),))
        self.inserted.intents[name] = Intent("function", name)
        return node

    def emit(
        self, surrogate: Surrogate, args: Sequence[cst.BaseExpression], call: cst.Call
    ) -> Emission:
        statement = self.statement[-1]
        target = None
        if statement is not None:
            small = statement.body[0]
            if (
                isinstance(small, cst.Assign)
                and small.value is call
                and len(small.targets) == 1
                and isinstance(small.targets[0].target, cst.Name)
            ):
                # ``spk = Fn.apply(v)``: compute straight into ``spk``; the then trivial
                # ``spk = spk`` is dropped when the statement is left.
                target = small.targets[0].target.value
        rendered = self.references.render(surrogate)  # run-time state, as it reads here
        self.inserted.intents.update(self.references.intents(surrogate))
        return emit_inline(rendered, args, self.fresh, target, frozenset(self.inserted.intents))

    def fresh(self, base: str) -> str:
        """A name no code of the innermost module or function scope uses, nor any generated
        there before."""
        scope = self.taken[-1]
        if id(scope) not in self.allocators:
            self.allocators[id(scope)] = FreshNames(
                self.module.names
                if isinstance(scope, cst.Module)
                else self.module.function_facts(scope).names
            )
        return self.allocators[id(scope)](base)

    def can_inline(self, call: cst.Call) -> bool:
        if self.expression_depth or not self.pending or self.statement[-1] is None:
            return False
        statement = self.statement[-1]
        small = statement.body[0]
        if not isinstance(small, (cst.Assign, cst.AnnAssign, cst.AugAssign, cst.Return, cst.Expr)):
            return False
        value = getattr(small, "value", None)
        if value is None:
            return False
        # Only when nothing with a possible side effect runs before the call in this statement.
        inside = sym.call_ids(call)
        for other in sym.calls_in_evaluation_order(value):
            if other is call:
                return True
            if id(other) not in inside and id(other) not in self.inlined:
                return False
        return False

    def analysis_of(self, info: ClassInfo) -> Surrogate | Diagnostic | None:
        """The Function's analysis. The run analyzes the Functions of the files it was given up
        front; one defined elsewhere in the project is analyzed when a call site first needs it
        (through ``specialize``, with nothing to specialize), so that a run over a few files does
        not pay for every Function of a large project."""
        found = self.surrogates.get(info.qualname)
        if found is None and self.specialize is not None and self.index.is_function_class(info):
            found = self.specialize(info, {}, ())
        return found

    def specialized(self, info: ClassInfo, call: cst.Call) -> Surrogate | Diagnostic | None:
        """The analysis of ``info`` with this call's literal hyperparameters bound (for forwards
        that branch or loop on a hyperparameter), or None when the call has no literal."""
        params = forward_params(self.index, info)
        if params is None or self.specialize is None:
            return None
        args = self.bind_arguments(params, info.name, call, None)
        if args is None:
            return None
        constants = {
            p.name: a
            for p, a in zip(params, args, strict=True)
            if sym.literal_value(a) is not NotImplemented
        }
        constants.update(passed_callables(self, params, args))
        return self.specialize(info, constants, ()) if constants else None

    def bind_arguments(
        self,
        params: Sequence[Param],
        name: str,
        call: cst.Call,
        location: Location | None,
    ) -> list[cst.BaseExpression] | None:
        """One expression per parameter (defaults filled in); a problem is reported at
        ``location`` (or silently refused when it is None)."""
        values: list[cst.BaseExpression | None] = [None] * len(params)
        problem = ""
        for i, arg in enumerate(call.args):
            if arg.star:
                problem = "arguments passed with * or **"
                break
            if arg.keyword is None:
                if i >= len(params):
                    problem = f"{len(call.args)} arguments for {len(params)} parameters"
                    break
                values[i] = arg.value
            else:
                names = [p.name for p in params]
                if arg.keyword.value not in names:
                    problem = f"unknown keyword '{arg.keyword.value}'"
                    break
                values[names.index(arg.keyword.value)] = arg.value
        if not problem:
            for i, param in enumerate(params):
                if values[i] is None:
                    if param.default is None:
                        problem = f"missing argument '{param.name}'"
                        break
                    values[i] = param.default
        if problem:
            if location is not None:
                self.diagnostics.append(
                    Diagnostic(
                        codes.BadCallArguments,
                        location,
                        f"call of {name}: {problem}; left unchanged",
                    )
                )
            return None
        return [v for v in values if v is not None]

    # -- resolution -------------------------------------------------------------------------------
    def resolve_callee(
        self, func: cst.BaseExpression, call: cst.Call | None = None
    ) -> ApplyRef | ClassRef | Unknown | None:
        """ApplyRef for a surrogate's apply; ClassRef for a legacy instance call; Unknown for an
        ``x.apply`` that cannot be resolved (in ``call``, when given); None for anything else."""
        if isinstance(func, cst.Call):  # Fn()(x)
            entity = self.resolve_entity(func.func)
            if isinstance(entity, ClassRef) and self.index.is_function_class(entity.info):
                return entity
            return None
        entity = self.resolve_entity(func)
        if isinstance(entity, ApplyRef):
            return entity
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value == "apply"
            and isinstance(entity, Unknown)
            and (
                self.module_mentions_functions()
                or entity.from_parameter
                or sym.code(func.value) in self.callee_names.classes  # a Function's name
            )
            and not (call is not None and self.passes_a_function(call))
        ):
            return Unknown(
                f"cannot resolve '{sym.code(func)}' statically ({entity.reason}); " "left unchanged"
            )
        return None

    def module_mentions_functions(self) -> bool:
        return self.mentions_autograd or bool(self.surrogates)

    def passes_a_function(self, call: cst.Call) -> bool:
        """``net.apply(init_weights)``, ``df.apply(lambda r: ..., axis=1)``: ``nn.Module.apply``
        or pandas' with a function, not a Function's ``apply`` on tensors."""
        positional = [a for a in call.args if a.keyword is None]
        if len(positional) != 1 or positional[0].star:
            return False
        value = positional[0].value
        if isinstance(value, cst.Lambda):
            return True
        if isinstance(value, cst.Name | cst.Attribute):
            return isinstance(self.resolve_entity(value), FunctionRef | ClassRef | External)
        return False

    def resolve_entity(self, node: cst.BaseExpression) -> Entity:
        if isinstance(node, cst.Name):
            for scope in reversed(self.scopes):
                if node.value in scope.names:
                    return scope.names[node.value]
            if self.classes and not self.scopes:
                values = self.classes[-1].body_assignments().get(node.value)
                if values and len(values) == 1:
                    return self.index.resolve_value(self.module, values[0])
            for info in self.module.classes:  # classes local to an enclosing function
                if info.name == node.value and info.in_function:
                    return ClassRef(info)
            return self.index.resolve_name(self.module, node.value)
        if isinstance(node, cst.Attribute):
            if isinstance(node.value, cst.Name):
                method = next((s for s in reversed(self.scopes) if s.cls is not None), None)
                if method is not None and node.value.value == method.self_name and method.cls:
                    return self.resolve_self_attribute(method.cls, node.attr.value)
            base = self.resolve_entity(node.value)
            return self.index.attribute(base, node.attr.value)
        return Unknown("not a name")

    def resolve_self_attribute(self, cls: ClassInfo, attr: str) -> Entity:
        assigned = self.module.self_assignments.get(id(cls.node), {}).get(attr, [])
        if len(assigned) == 1:
            value = assigned[0]
            method = next(m for m in cls.methods().values() if sym.contains(m, value))
            local = local_entities(self.index, self.module, method)
            return self.index.resolve_value(self.module, value, 0, local)
        if len(assigned) > 1:
            return Unknown(f"self.{attr} is assigned more than once")
        return self.index.attribute(ClassRef(cls), attr)


def _is_candidate(func: cst.BaseExpression, names: CalleeNames) -> bool:
    legacy = isinstance(func, cst.Call)
    if isinstance(func, cst.Call):
        func = func.func
    key = (
        func.value
        if isinstance(func, cst.Name)
        else (func.attr.value if isinstance(func, cst.Attribute) else None)
    )
    receiver = None
    if isinstance(func, cst.Attribute):
        inner = func.value
        receiver = (
            inner.value
            if isinstance(inner, cst.Name)
            else (inner.attr.value if isinstance(inner, cst.Attribute) else None)
        )
    bare = isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)
    return names.candidate(key, receiver, legacy, bare)


def _assigns(statement: cst.SimpleStatementLine, user: cst.SimpleStatementLine) -> bool:
    small, mine = statement.body[0], user.body[0]
    return (
        isinstance(small, cst.Assign)
        and isinstance(mine, cst.Assign)
        and sym.code(small.targets[0].target) == sym.code(mine.targets[0].target)
    )


def _is_self_assignment(statement: cst.SimpleStatementLine) -> bool:
    small = statement.body[0]
    return (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
        and isinstance(small.value, cst.Name)
        and small.value.value == small.targets[0].target.value
    )


def rewrite_module(
    index: ProjectIndex,
    module: ModuleInfo,
    surrogates: Mapping[str, Surrogate | Diagnostic],
    style: Style,
    names: CalleeNames,
    specialize: Specializer | None = None,
    skip: Mapping[str, str] | None = None,
) -> tuple[cst.Module, CallSiteRewriter]:
    """Rewrite the call sites of ``module`` (except those in ``skip``); the rewriter says which
    sites it rewrote, which generated functions they call, what it inserted (for
    ``hygiene.py``) and what it could not rewrite."""
    rewriter = CallSiteRewriter(index, module, surrogates, style, names, specialize, skip)
    body = module.tree.body
    try:
        tree = index.ast_tree(module.path)
    except SourceError:  # syntax libcst reads and this Python's ast does not
        return module.tree.visit(rewriter), rewriter
    # ``a = 1; b = 2`` is one libcst statement line but two stdlib statements
    sizes = [len(s.body) if isinstance(s, cst.SimpleStatementLine) else 1 for s in body]
    wanted = statements_with_candidates(tree, sizes, rewriter.callee_names)
    if wanted is None:
        return module.tree.visit(rewriter), rewriter
    # Only the top-level statements that may hold a call site are transformed: a libcst
    # transform rebuilds every node it visits, and most of a module holds none.
    new_body: list[cst.BaseStatement] = []
    for statement, visit in zip(body, wanted, strict=True):
        result = statement.visit(rewriter) if visit else statement
        if isinstance(result, cst.FlattenSentinel):
            new_body.extend(result.nodes)
        elif isinstance(result, cst.BaseStatement):
            new_body.append(result)
    return module.tree.with_changes(body=new_body), rewriter
