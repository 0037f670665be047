"""Callables a call site passes as a hyperparameter (the surrogate shape the backward calls):
which arguments the analysis may inline, as ``core/ir.CALLABLE`` markers.

A lambda's free names must be the module's globals (not locals of the functions around the
call, which the analysis cannot see), and evaluating it must do nothing (no default computed by
a call), since the rewrite drops the argument; a function must be a module-level ``def`` whose
name the call site reads is never rebound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import libcst as cst

from fgi_rewrite.analysis.analyze import forward_params
from fgi_rewrite.core import ir
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.core.model import Location, Param, Surrogate
from fgi_rewrite.project.entities import Entity, FunctionRef
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.source_module import ClassInfo, ModuleInfo


class _Scope(Protocol):
    @property
    def names(self) -> Mapping[str, Entity]: ...


class CallSiteRewriter(Protocol):
    """What these rules ask of the call-site rewriter (``call_sites.CallSiteRewriter``)."""

    @property
    def index(self) -> ProjectIndex: ...

    @property
    def module(self) -> ModuleInfo: ...

    @property
    def scopes(self) -> Sequence[_Scope]: ...

    def resolve_entity(self, node: cst.BaseExpression) -> Entity: ...

    def bind_arguments(
        self, params: Sequence[Param], name: str, call: cst.Call, location: Location | None
    ) -> list[cst.BaseExpression] | None: ...


def passed_callables(
    rewriter: CallSiteRewriter, params: Sequence[Param], args: Sequence[cst.BaseExpression]
) -> dict[str, cst.BaseExpression]:
    """The arguments that are a lambda or a module-level function the analysis may inline, by
    parameter, as ``ir.CALLABLE`` markers (see the module docstring)."""
    found: dict[str, cst.BaseExpression] = {}
    module = rewriter.module
    for param, arg in zip(params, args, strict=True):
        if isinstance(arg, cst.Lambda):
            own = {p.name.value for p in (*arg.params.params, *arg.params.kwonly_params)}
            local = {n for scope in rewriter.scopes for n in scope.names}
            defaults = [p.default for p in arg.params.params if p.default is not None]
            if sym.names_in(arg) - own & local or any(
                sym.literal_value(d) is NotImplemented for d in defaults
            ):
                continue
            found[param.name] = ir.callable_marker(
                module.qualifier, arg.with_changes(lpar=[], rpar=[])
            )
        elif isinstance(arg, cst.Name | cst.Attribute):
            entity = rewriter.resolve_entity(arg)
            if not isinstance(entity, FunctionRef):
                continue
            home = rewriter.index.module(entity.path)
            name = entity.node.name.value
            if home.functions.get(name) is not entity.node:
                continue  # not a module-level function
            if isinstance(arg, cst.Name) and not any(arg.value in s.names for s in rewriter.scopes):
                if rewriter.index.rebinding.global_rebound(module, arg.value):
                    continue
            found[param.name] = ir.callable_marker(home.qualifier, name)
    return found


def bind_without_callables(
    rewriter: CallSiteRewriter,
    info: ClassInfo,
    result: Surrogate,
    call: cst.Call,
    location: Location,
) -> list[cst.BaseExpression] | None:
    """The call's arguments for ``result``'s parameters: those a specialization inlined (a
    lambda or a function passed as a hyperparameter) are left out."""
    if not result.callables:
        return rewriter.bind_arguments(result.params, result.short_name, call, location)
    params = forward_params(rewriter.index, info)
    if params is None:
        return None
    args = rewriter.bind_arguments(params, result.short_name, call, location)
    dropped = {i for i, _ in result.callables}
    return None if args is None else [a for i, a in enumerate(args) if i not in dropped]
