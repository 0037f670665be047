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
from fgi_rewrite.core.codes import Severity
from fgi_rewrite.core.model import (
    Diagnostic,
    Location,
    Param,
    Style,
    Surrogate,
    shown_path,
)
from fgi_rewrite.core.names import FreshNames
from fgi_rewrite.core.results import CallSite, CallStyle
from fgi_rewrite.project.entities import ApplyRef, ClassRef, Entity, External, FunctionRef, Unknown
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.local_scope import local_entities
from fgi_rewrite.project.prefilter import CalleeNames, statements_with_candidates
from fgi_rewrite.project.skips import skip_lines
from fgi_rewrite.project.source_module import ClassInfo, ModuleInfo, SourceError
from fgi_rewrite.rewrite.callables import bind_without_callables, passed_callables
from fgi_rewrite.rewrite.emit import Emission, emit_inline, function_name
from fgi_rewrite.rewrite.formatting import (
    HEADERS,
    BlackStyle,
    edited_header,
    edited_statement,
    format_statements,
)
from fgi_rewrite.rewrite.hygiene import Inserted, Intent, base_intents
from fgi_rewrite.rewrite.references import ModuleNames, Unnameable, names_of

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
        layout: BlackStyle | None = None,
        skip: Mapping[str, str] | None = None,
    ) -> None:
        self.index = index
        self.layout = layout  # black's settings for inserted code (None: left unformatted)
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
        self.indents: list[str] = []  # of the blocks around the current statement
        self.edits = 0  # call sites and references replaced so far
        self.edits_before: list[int] = []  # ``edits`` when each open simple statement began
        # ``edits`` when each open compound statement began and when its body began
        self.header_edits: list[list[int | None]] = []
        self.elifs: set[int] = set()  # ids of the ``If`` nodes written ``elif``
        self.expression_depth = 0
        self.inlined: set[int] = set()
        self.call_sites: list[CallSite] = []
        self.diagnostics: list[Diagnostic] = []
        self.functions: dict[str, str] = {}  # qualname -> generated function name
        # The source as read (code generation of the whole tree costs as much as the transform).
        utf8 = module.tree.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        source = index.text(module.path) if utf8 else module.tree.code
        self.source = source
        self.callee_names = names.for_module(source)
        # Lines of the module's text (of the tree: a notebook's cells joined) with the marker.
        self.skip_tree_lines = skip_lines(source)
        # (cell, line) as locations give them: a notebook's cells have their own lines.
        self.skip_lines = {
            (at.cell, at.line) for at in (module.position(n, 1) for n in skip_lines(source))
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
    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self.indents.append(node.indent if node.indent is not None else self.module_indent)
        if self.header_edits and self.header_edits[-1][1] is None:
            self.header_edits[-1][1] = self.edits  # the body of the innermost compound statement

    def leave_IndentedBlock(
        self, original: cst.IndentedBlock, updated: cst.IndentedBlock
    ) -> cst.BaseSuite:
        self.indents.pop()
        return updated

    @property
    def module_indent(self) -> str:
        return self.module.tree.default_indent

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self.pending.append([])
        self.pending_sites.append([])
        self.statement.append(node if len(node.body) == 1 else None)
        self.edits_before.append(self.edits)

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        lines = self.pending.pop()
        sites = tuple(self.pending_sites.pop())
        self.statement.pop()
        if self.edits_before.pop() != self.edits and self.layout is not None:
            updated = edited_statement(
                original, updated, self.layout, self.indent, self.module_indent, self.source
            )
        if not lines:
            return updated
        block = list(cst.parse_module("\n".join(lines) + "\n").body)
        if _is_self_assignment(updated) and updated.trailing_whitespace.comment is not None:
            # Keep the comment on the line that now computes the assigned value.
            for i, stmt in enumerate(block):
                if isinstance(stmt, cst.SimpleStatementLine) and _assigns(stmt, updated):
                    block[i] = stmt.with_changes(trailing_whitespace=updated.trailing_whitespace)
                    break
        if self.layout is not None:
            block = format_statements(block, self.layout, "".join(self.indents), self.source)
        inserted = len(block)
        if not _is_self_assignment(updated):
            block.append(updated.with_changes(leading_lines=()))
        block[0] = block[0].with_changes(leading_lines=updated.leading_lines)
        for stmt in block[:inserted]:  # as they go into the tree (after the changes above)
            self.inserted.add(stmt, sites)
        return cst.FlattenSentinel(block)

    @property
    def indent(self) -> str:
        return "".join(self.indents)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, _EXPRESSION_SCOPES):
            self.expression_depth += 1
        if isinstance(node, HEADERS):
            self.header_edits.append([self.edits, None])
            if isinstance(node, cst.If) and isinstance(node.orelse, cst.If):
                self.elifs.add(id(node.orelse))
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
        if self.is_followed_alias(original) and isinstance(self.resolve_entity(original), ApplyRef):
            return updated  # calls through the alias are rewritten where they are
        if not _is_candidate(original, self.callee_names):
            return updated
        target = self.resolve_callee(original)
        if isinstance(target, Unknown):
            return self.class_parameter_dispatch(original, updated)
        if not isinstance(target, ApplyRef) or target.closure:
            return updated
        result = self.analysis_of(target.info)
        if self.skipped(original):
            return updated
        if not isinstance(result, Surrogate):
            if not target.info.in_function:  # a factory's ``return Fn.apply``: its calls count
                self.left_unchanged(original, target.info, result)
            return updated
        location = self.module.location(original)
        name = self.functions.setdefault(result.qualname, function_name(result))
        self.call_sites.append(CallSite(result.qualname, location, CallStyle.REFERENCE))
        self.edits += 1
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
        if self.expression_depth:
            return updated
        default = self.class_default(original.value)
        if default is None:
            return updated
        entity = self.index.resolve_value(self.module, default)
        if not isinstance(entity, ClassRef):
            return updated
        chooser = sym.code(sym.one_line(original.value))
        location = self.module.location(original)
        if self.skipped(original):
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
            name = info.name if info.path == self.module.path else sym.code(sym.one_line(default))
            if not isinstance(result, Surrogate) or info.in_function or info.owner is not None:
                continue
            if not self.names_class(name, info):
                continue
            function = self.functions.setdefault(result.qualname, function_name(result))
            self.call_sites.append(CallSite(result.qualname, location, CallStyle.REFERENCE))
            chosen.append((name, function))
        for name, function in reversed(chosen):
            test = cst.parse_expression(f"{chooser} is {name}")
            chain = cst.IfExp(test=test, body=self.generated(function, location), orelse=chain)
        if not chosen:
            return updated
        self.edits += 1
        return sym.paren(chain)

    def class_default(self, chooser: cst.BaseExpression) -> cst.BaseExpression | None:
        """The default that decides what ``chooser`` (the receiver of ``.apply``) holds unless
        a caller passes something else: a parameter of the enclosing function, or ``self.attr``
        whose one assignment in the class stores a parameter of that method
        (``def __init__(self, spike=MultiSpike): self.spike = spike``)."""
        if isinstance(chooser, cst.Name):
            func = self.taken[-1]
            return (
                _parameter_default(func, chooser.value)
                if isinstance(func, cst.FunctionDef)
                else None
            )
        method = next((s for s in reversed(self.scopes) if s.cls is not None), None)
        if (
            method is None
            or method.cls is None
            or not isinstance(chooser, cst.Attribute)
            or not isinstance(chooser.value, cst.Name)
            or chooser.value.value != method.self_name
        ):
            return None
        assigned = self.module.self_assignments.get(id(method.cls.node), {})
        values = assigned.get(chooser.attr.value, [])
        if len(values) != 1 or not isinstance(values[0], cst.Name):
            return None
        home = next((m for m in method.cls.methods().values() if sym.contains(m, values[0])), None)
        return _parameter_default(home, values[0].value) if home is not None else None

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
            # Followed only where calls through ``self.f`` resolve to it (one assignment, none
            # from outside the class): else the stored value itself is rewritten.
            entity = self.index.self_attribute(self.classes[-1], target.attr.value)
            return isinstance(entity, ApplyRef)
        return False

    def skipped(self, node: cst.CSTNode) -> bool:
        """A ``# fgi: skip`` on any line of ``node`` or of its statement: black moves the
        comment of a statement it wraps over lines after the closing bracket."""
        if self.skip and str(self.module.location(node)) in self.skip:
            return True  # its inserted code cannot mean the same here (hygiene.py)
        if not self.skip_tree_lines:
            return False
        statement = self.statement[-1] if self.statement else None
        for part in (node, statement):
            position = self.module.positions.get(part) if part is not None else None
            if position is not None:
                start, end = position.start.line, position.end.line  # type: ignore[attr-defined]
                if any(line in self.skip_tree_lines for line in range(start, end + 1)):
                    return True
        return False

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
        result = super().on_leave(original, updated)
        if isinstance(original, _EXPRESSION_SCOPES):
            self.expression_depth -= 1
        if isinstance(original, HEADERS):
            start, body = self.header_edits.pop()
            edited = body is not None and body != start and id(original) not in self.elifs
            if edited and self.layout is not None and isinstance(result, HEADERS):
                # A reference replaced in a ``def`` line (a default argument) or another header.
                result = edited_header(
                    original, result, self.layout, self.indent, self.module_indent, self.source
                )
        return result  # type: ignore[return-value]

    # -- calls ------------------------------------------------------------------------------------
    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not _is_candidate(original.func, self.callee_names):
            return updated  # cheap syntactic filter: most calls cannot reach a surrogate
        target = self.resolve_callee(original.func, original)
        if target is None:
            self.report_unresolved_alias(original)
            return updated
        location = self.module.location(original)
        if self.skipped(original):
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
        result = analysis = self.analysis_of(info)
        if target.closure and self.specialize is not None:
            result = self.specialize(info, {}, target.closure)
        if isinstance(result, Diagnostic) and result.specializable:
            result = self.specialized(info, updated)
        elif isinstance(result, Surrogate) and result.runtime_branches:
            literal = self.specialized(info, updated)  # literals fold the run-time branches
            if isinstance(literal, Surrogate) and not literal.runtime_branches:
                result = literal
        if not isinstance(result, Surrogate):
            self.left_unchanged(original, info, result or analysis)
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
            self.call_sites.append(CallSite(result.qualname, location, CallStyle.INLINE))
            self.edits += 1
            return emission.result
        name = self.functions.setdefault(result.qualname, function_name(result))
        self.call_sites.append(CallSite(result.qualname, location, CallStyle.FUNCTION))
        self.edits += 1
        return cst.Call(func=self.generated(name, location), args=[cst.Arg(a) for a in args])

    def generated(self, name: str, location: Location) -> cst.Name:
        """A use of a generated function (checked by ``hygiene.py``)."""
        node = cst.Name(name)
        self.inserted.add(node, (str(location),))
        self.inserted.intents[name] = Intent("function", name)
        return node

    # -- uses left as they are ------------------------------------------------------------------
    def left_unchanged(
        self,
        node: cst.Call | cst.Attribute,
        info: ClassInfo,
        analysis: Surrogate | Diagnostic | None,
    ) -> None:
        """A use of a Function that is a surrogate, or would be but is refused, is left: say so
        there (FGI206), with the refusal's reason. Uses of Functions that are not surrogates
        (an FGI001 note) are not reported."""
        if not isinstance(analysis, Diagnostic) or not _is_surrogate(analysis):
            return
        used = sym.code(sym.one_line(node.func if isinstance(node, cst.Call) else node))
        self.diagnostics.append(
            Diagnostic(
                codes.SurrogateUseLeft,
                self.module.location(node),
                f"{used} left unchanged: {info.name} is refused ({analysis.code.code} in "
                f"{shown_path(analysis.location.path, self.index.root)}: {analysis.message})",
                subject=info.qualname,
            )
        )

    def report_unresolved_alias(self, call: cst.Call) -> None:
        """``layer.spike_fct(u)`` where some class holds a surrogate's ``apply`` as
        ``spike_fct`` but ``layer`` cannot be resolved to an instance: left, and said so."""
        func = call.func
        if (
            not isinstance(func, cst.Attribute)
            or func.attr.value == "apply"
            or func.attr.value not in self.callee_names.aliases
            or self.skipped(call)
        ):
            return
        entity = self.resolve_entity(func)
        if not isinstance(entity, Unknown):
            return
        owners = [
            (cls, ref)
            for cls, ref in self.index.apply_attribute_owners(func.attr.value)
            if _is_surrogate(self.analysis_of(ref.info))
        ]
        if not owners:
            return
        holders = ", ".join(sorted({f"{ref.info.name}.apply in {cls.name}" for cls, ref in owners}))
        receiver = sym.code(sym.one_line(func.value))
        self.diagnostics.append(
            Diagnostic(
                codes.SurrogateUseLeft,
                self.module.location(call),
                f"{sym.code(sym.one_line(func))}(...) left unchanged: '{func.attr.value}' is "
                f"{holders}, but what '{receiver}' holds is not known statically "
                f"({entity.reason})",
                subject=owners[0][1].info.qualname,
            )
        )

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
                or sym.code(sym.one_line(func.value))
                in self.callee_names.classes  # a Function's name
            )
            and not (call is not None and self.passes_a_function(call))
        ):
            return Unknown(
                f"cannot resolve '{sym.code(sym.one_line(func))}' statically ({entity.reason}); "
                "left unchanged"
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
        if isinstance(node, cst.Call):  # ``Fn().apply``, ``make_spike()(x)``
            callee = self.resolve_entity(node.func)
            if isinstance(callee, FunctionRef):
                return self.index.factory_result(callee, 0, node)
            if isinstance(callee, ClassRef):
                return Unknown(
                    "the value of a call is not known statically", instance_of=callee.info
                )
        return Unknown("not a name")

    def resolve_self_attribute(self, cls: ClassInfo, attr: str) -> Entity:
        return self.index.self_attribute(cls, attr)


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
        inner = func.value.func if isinstance(func.value, cst.Call) else func.value  # Fn().apply
        receiver = (
            inner.value
            if isinstance(inner, cst.Name)
            else (inner.attr.value if isinstance(inner, cst.Attribute) else None)
        )
    bare = isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)
    return names.candidate(key, receiver, legacy, bare)


def _is_surrogate(analysis: Surrogate | Diagnostic | None) -> bool:
    """A surrogate, or a refused one (not an FGI001 note on a kernel or plumbing)."""
    return isinstance(analysis, Surrogate) or (
        isinstance(analysis, Diagnostic) and analysis.code.severity is not Severity.INFO
    )


def _parameter_default(func: cst.FunctionDef, name: str) -> cst.BaseExpression | None:
    """The default of ``func``'s parameter ``name`` when its body never rebinds it."""
    if name in sym.rebound_names(func):
        return None
    params = func.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == name:
            return param.default
    return None


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
    layout: BlackStyle | None = None,
    skip: Mapping[str, str] | None = None,
) -> tuple[cst.Module, CallSiteRewriter]:
    """Rewrite the call sites of ``module`` (except those in ``skip``); the rewriter says which
    sites it rewrote, which generated functions they call, what it inserted (for
    ``hygiene.py``) and what it could not rewrite. Inserted code is formatted with black's
    ``layout`` (formatting.py) when one is given."""
    rewriter = CallSiteRewriter(index, module, surrogates, style, names, specialize, layout, skip)
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
