"""Prove a Function is an elementwise surrogate and extract its value f and gradients g_i.

The forward, setup_context and backward bodies are interpreted symbolically: every local,
``ctx`` attribute, saved tensor and helper call is replaced by the expression it stands for, until
the forward is one expression ``f(inputs)`` and each gradient the backward returns is one
expression in ``grad_output``. A gradient is accepted when it is provably ``grad_output * g`` with
``g`` elementwise and free of ``grad_output``; anything else is refused with a code.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TypeVar

import libcst as cst

from fgi_rewrite.analysis import shape
from fgi_rewrite.analysis.expressions import call_name, non_float
from fgi_rewrite.analysis.interpret import Ctx, Frame, Interpreter, Refuse, Value
from fgi_rewrite.analysis.linear import check_elementwise, coefficient, one
from fgi_rewrite.core import codes, ir
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.core.ir import GRAD_OUTPUT, OUTPUT
from fgi_rewrite.core.model import Diagnostic, Param, Surrogate
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.source_module import ClassInfo, ModuleInfo, dotted_name

_BUILTINS = frozenset(dir(builtins))
_Operator = TypeVar("_Operator", cst.BaseBinaryOp, cst.BaseCompOp)

# ---- the class ---------------------------------------------------------------------------------


def analyze(
    index: ProjectIndex,
    info: ClassInfo,
    constants: Mapping[str, cst.BaseExpression] | None = None,
    closure: tuple[tuple[str, str], ...] = (),
) -> Surrogate | Diagnostic:
    """Extract ``info``'s f and g, or say why not. ``constants`` specializes the analysis to
    literal hyperparameters of one call site (for forwards that branch on them); ``closure``
    gives the free names of a class built in a factory the literal values of one factory call."""
    module = index.module(info.path)
    try:
        return _analyze(index, info, module, constants or {}, closure)
    except Refuse as refusal:
        if refusal.specializable:
            # A condition (or loop) on a hyperparameter the call site does not fix: keep it as
            # a run-time branch (branches.py) where everything else is elementwise.
            try:
                return _analyze(index, info, module, constants or {}, closure, runtime=True)
            except Refuse as deeper:
                past = (codes.NotSurrogate, codes.ForwardNotElementwise)
                if deeper.code not in past and (
                    not deeper.specializable or deeper.code is codes.CallableHyperparameter
                ):
                    # The decisive reason lies past the condition (a callable hyperparameter):
                    # name it; literals at a call site may still fold the condition away.
                    refusal = Refuse(deeper.code, deeper.message, deeper.node, specializable=True)
                elif deeper.code in past:
                    refusal = Refuse(
                        refusal.code,
                        f"{refusal.message}; past it, {deeper.message}",
                        refusal.node,
                        specializable=True,
                    )
        if refusal.code in (codes.UnsupportedStatement, codes.ForwardNotElementwise):
            # A generic "cannot read this" may hide the real reason: the body indexes along an
            # axis (a scan over time steps, a time shift), which no call site can make elementwise.
            refusal = _axis_refusal(index, info) or refusal
        if refusal.code is not codes.NotSurrogate and not _surrogate_shaped(index, info):
            # Kernels, solvers, plumbing and linear layers are not surrogates: a note, not a
            # refusal (analysis/shape.py says which Functions have a surrogate's shape).
            refusal = Refuse(
                codes.NotSurrogate,
                f"not an elementwise step ({refusal.code.code}: {refusal.message})",
                refusal.node,
            )
        location = module.location(refusal.node) if refusal.node is not None else info.location
        return Diagnostic(
            refusal.code,
            location,
            f"{info.name}: {refusal.message}",
            specializable=refusal.specializable and not constants,
            subject=info.qualname,
        )


def forward_params(index: ProjectIndex, info: ClassInfo) -> tuple[Param, ...] | None:
    """The forward's inputs (with their default values), or None when they cannot be read."""
    try:
        methods = _methods(index, info)
        if "forward" not in methods:
            return None
        forward, forward_cls = methods["forward"]
        params = _plain_params(forward)
        inputs = params if "setup_context" in methods else params[1:]
        interpreter = Interpreter(index, info)
        module = index.module(forward_cls.path)
        return tuple(Param(p.name.value, _default(interpreter, p, module)) for p in inputs)
    except Refuse:
        return None


def specialization_key(
    qualname: str,
    constants: Mapping[str, cst.BaseExpression],
    closure: tuple[tuple[str, str], ...] = (),
) -> str:
    if not constants and not closure:
        return qualname
    pairs = [(k, sym.code(v)) for k, v in sorted(constants.items())] + list(closure)
    return f"{qualname}[{', '.join(f'{k}={v}' for k, v in pairs)}]"


def _methods(index: ProjectIndex, info: ClassInfo) -> dict[str, tuple[cst.FunctionDef, ClassInfo]]:
    found: dict[str, tuple[cst.FunctionDef, ClassInfo]] = {}
    for cls in index.mro(info):
        for name, node in cls.methods().items():
            found.setdefault(name, (node, cls))
    return found


def _plain_params(func: cst.FunctionDef) -> list[cst.Param]:
    params = func.params
    if params.star_kwarg is not None or isinstance(params.star_arg, cst.Param):
        raise Refuse(codes.NotSurrogate, "forward takes *args or **kwargs", func)
    return [*params.posonly_params, *params.params, *params.kwonly_params]


def _analyze(
    index: ProjectIndex,
    info: ClassInfo,
    module: ModuleInfo,
    constants: Mapping[str, cst.BaseExpression],
    closure: tuple[tuple[str, str], ...],
    runtime: bool = False,
) -> Surrogate:
    methods = _methods(index, info)
    if "forward" not in methods or "backward" not in methods:
        raise Refuse(codes.NotSurrogate, "no forward/backward pair in the project", info.node)
    forward, forward_cls = methods["forward"]
    backward, backward_cls = methods["backward"]
    if shape.is_abstract(forward) or shape.is_abstract(backward):
        raise Refuse(
            codes.NotSurrogate,
            f"{'forward' if shape.is_abstract(forward) else 'backward'} raises "
            "NotImplementedError: an abstract base",
            info.node,
        )
    setup = methods.get("setup_context")
    interpreter = Interpreter(index, info, closure, runtime)
    forward_params = _plain_params(forward)
    if setup is None:
        if not forward_params:
            raise Refuse(codes.NotSurrogate, "forward takes no ctx", forward)
        ctx_name, inputs = forward_params[0].name.value, forward_params[1:]
    else:
        ctx_name, inputs = "", forward_params
    params = tuple(
        Param(p.name.value, _default(interpreter, p, index.module(forward_cls.path)))
        for p in inputs
    )
    if not params:
        raise Refuse(codes.NotSurrogate, "forward takes no input", forward)
    names = frozenset(p.name for p in params)
    interpreter.inputs = names
    ctx = Ctx()
    env: dict[str, Value] = {p.name: constants.get(p.name, cst.Name(p.name)) for p in params}
    if ctx_name:
        env[ctx_name] = ctx
    forward_module = index.module(forward_cls.path)
    try:
        value = interpreter.run(
            forward, Frame(forward_module, env, forward=True, params=frozenset(env))
        )
    except Refuse as refusal:
        # A forward we cannot read is a surrogate's only when the failure could be lifted (a
        # condition on a hyperparameter), names what was not understood (a name, a callable)
        # or is a side effect, and the Function has a surrogate's shape; kernels, solvers and
        # plumbing are simply not surrogates.
        node = refusal.node
        if (
            refusal.code is codes.UnresolvedName
            and isinstance(node, cst.Name)
            and node.value in _BUILTINS
        ):
            # ``len(centers)``: not a name the project lacks, a builtin the analysis does not model
            raise Refuse(
                codes.UnsupportedStatement,
                f"uses the builtin '{node.value}' on a value known only at run time",
                node,
                specializable=refusal.specializable,
            ) from None
        if refusal.specializable or refusal.code in (
            codes.SideEffectForward,
            codes.UnresolvedName,
            codes.CallableHyperparameter,
        ):
            raise  # reported when the Function has a surrogate's shape (``analyze``)
        # A note unless the Function has a surrogate's shape (``analyze``): then FGI112.
        raise Refuse(
            codes.ForwardNotElementwise,
            f"forward is not elementwise ({refusal.message})",
            refusal.node,
        ) from None
    if isinstance(value, tuple):
        raise Refuse(codes.SeveralOutputs, "forward returns several values", forward)
    f = _standalone(interpreter.expr(value, forward))
    try:
        check_elementwise(f, allow_random=True, what="forward", allowed=names)
    except Refuse as refusal:
        raise Refuse(codes.ForwardNotElementwise, refusal.message, forward) from None
    if non_float(f):
        raise Refuse(codes.NonFloatOutput, "forward returns a boolean or integer tensor", forward)
    if setup is not None:
        setup_node, setup_cls = setup
        setup_params = _plain_params(setup_node)
        if len(setup_params) != 3:
            raise Refuse(
                codes.UnsupportedStatement, "setup_context(ctx, inputs, output)", setup_node
            )
        setup_env: dict[str, Value] = {
            setup_params[0].name.value: ctx,
            setup_params[1].name.value: tuple(
                constants.get(p.name, cst.Name(p.name)) for p in params
            ),
            setup_params[2].name.value: cst.Name(OUTPUT),
        }
        result = interpreter.exec_block(
            setup_node.body.body, Frame(index.module(setup_cls.path), setup_env, forward=True)
        )
        del result
    ctx = _output_placeholders(ctx, f)
    backward_params = _plain_params(backward)
    if len(backward_params) != 2:
        raise Refuse(codes.SeveralOutputs, "backward takes several output gradients", backward)
    backward_env: dict[str, Value] = {
        backward_params[0].name.value: ctx,
        backward_params[1].name.value: cst.Name(GRAD_OUTPUT),
    }
    returned = interpreter.run(
        backward, Frame(index.module(backward_cls.path), backward_env, False)
    )
    slots = returned if isinstance(returned, tuple) else (returned,)
    if len(slots) < len(params) or any(not _is_none(s) for s in slots[len(params) :]):
        raise Refuse(
            codes.GradientCountMismatch,
            f"backward returns {len(slots)} gradient(s) for {len(params)} input(s)",
            backward,
        )
    grads: list[cst.BaseExpression | None] = []
    for slot in slots[: len(params)]:
        if _is_none(slot):
            grads.append(None)
            continue
        expression = _standalone(_grad_output_metadata(interpreter.expr(slot, backward)))
        c = one(coefficient(expression))
        check_elementwise(c, allow_random=False, what="backward", allowed=names)
        grads.append(c)
    if all(g is None for g in grads):
        raise Refuse(codes.NotSurrogate, "backward returns no gradient", backward)
    needs_math = any("math" in sym.names_in(e) for e in (f, *[g for g in grads if g is not None]))
    # A callable a call site passes is inlined: the rewrite no longer takes it.
    passed = {i for i, p in enumerate(params) if p.name in constants and _passed(constants[p.name])}
    if any(grads[i] is not None for i in passed):
        raise Refuse(codes.CallableHyperparameter, "backward returns a gradient for a callable")
    return Surrogate(
        qualname=specialization_key(info.qualname, constants, closure),
        module=info.module,
        location=info.location,
        params=tuple(p for i, p in enumerate(params) if i not in passed),
        value=f,
        grads=tuple(g for i, g in enumerate(grads) if i not in passed),
        callables=tuple((i, sym.code(constants[params[i].name])) for i in sorted(passed)),
        needs_math=needs_math,
        constants=tuple((k, sym.code(v)) for k, v in sorted(constants.items())),
        closure=closure,
        runtime_branches=runtime,
        reads=interpreter.state.initial_values([f, *[g for g in grads if g is not None]]),
    )


def _default(
    interpreter: Interpreter, param: cst.Param, module: ModuleInfo
) -> cst.BaseExpression | None:
    if param.default is None:
        return None
    return interpreter.expr(interpreter.eval_default(param.default, module), param.default)


def _grad_output_metadata(node: cst.BaseExpression) -> cst.BaseExpression:
    """``grad_output.dtype`` (and device) are those of the forward output: say so, so that they do
    not count as a use of grad_output's values."""

    class Swap(cst.CSTTransformer):
        def leave_Attribute(
            self, original: cst.Attribute, updated: cst.Attribute
        ) -> cst.BaseExpression:
            if (
                isinstance(updated.value, cst.Name)
                and updated.value.value == GRAD_OUTPUT
                and updated.attr.value in ("dtype", "device")
            ):
                return updated.with_changes(value=cst.Name(OUTPUT))
            return updated

        def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
            # ``torch.ones_like(grad_output)`` depends on its shape and dtype only: the output's.
            name = dotted_name(updated.func) or ""
            if (
                name.rsplit(".", 1)[-1] in ("ones_like", "zeros_like", "full_like", "empty_like")
                and updated.args
                and isinstance(updated.args[0].value, cst.Name)
                and updated.args[0].value.value == GRAD_OUTPUT
            ):
                first = updated.args[0].with_changes(value=cst.Name(OUTPUT))
                return updated.with_changes(args=[first, *updated.args[1:]])
            # ``grad_output.new_zeros(())`` takes only its dtype and device: the output's.
            func = updated.func
            if (
                isinstance(func, cst.Attribute)
                and isinstance(func.value, cst.Name)
                and func.value.value == GRAD_OUTPUT
                and func.attr.value in ("new_zeros", "new_ones", "new_full", "new_tensor")
            ):
                return updated.with_changes(func=func.with_changes(value=cst.Name(OUTPUT)))
            return updated

    result = node.visit(Swap())
    assert isinstance(result, cst.BaseExpression)
    return result


def _standalone(node: cst.BaseExpression) -> cst.BaseExpression:
    """An extracted expression on one line without the parentheses that only wrapped it in its
    statement (black's ``return (\n    ...\n)``): the same, however the source is laid out, in
    what the report says and what is emitted."""
    flat = sym.one_line(node).visit(_Spaced())
    assert isinstance(flat, cst.BaseExpression)
    if isinstance(flat, (cst.Tuple, cst.GeneratorExp, cst.NamedExpr, cst.Yield)):
        return flat
    return flat.with_changes(lpar=[], rpar=[])


class _Spaced(cst.CSTTransformer):
    """One space around binary operators and comparisons (black writes ``x**2`` where the
    source may say ``x ** 2``)."""

    def leave_BinaryOperation(
        self, original: cst.BinaryOperation, updated: cst.BinaryOperation
    ) -> cst.BinaryOperation:
        return updated.with_changes(operator=_spaced(updated.operator))

    def leave_ComparisonTarget(
        self, original: cst.ComparisonTarget, updated: cst.ComparisonTarget
    ) -> cst.ComparisonTarget:
        return updated.with_changes(operator=_spaced(updated.operator))


_SPACE = cst.SimpleWhitespace(" ")


def _spaced(operator: _Operator) -> _Operator:
    return operator.with_changes(whitespace_before=_SPACE, whitespace_after=_SPACE)


def _is_none(value: Value) -> bool:
    return isinstance(value, cst.Name) and value.value == "None"


def _output_placeholders(ctx: Ctx, f: cst.BaseExpression) -> Ctx:
    """Saved tensors equal to the forward's result refer to it instead of recomputing it."""
    target = sym.code(f)

    def swap(v: Value) -> Value:
        if isinstance(v, cst.BaseExpression) and sym.code(_standalone(v)) == target:
            return cst.Name(OUTPUT)
        return v

    saved = tuple(swap(v) for v in ctx.saved) if ctx.saved is not None else None
    return Ctx({k: swap(v) for k, v in ctx.attrs.items()}, saved)


def _axis_refusal(index: ProjectIndex, info: ClassInfo) -> Refuse | None:
    """Why a Function that indexes along a tensor axis is not an elementwise surrogate: a loop over
    an axis (``for t in range(x.shape[-1]): out[..., t] = ...``) is a multi-step kernel; slicing
    in the backward mixes gradient elements; slicing in the forward (a time shift) makes the value
    non-elementwise."""
    methods = _methods(index, info)
    bodies = [(name, methods[name][0]) for name in ("forward", "backward") if name in methods]
    for _, body in bodies:
        loop = _axis_loop(body)
        if loop is not None:
            header = sym.code(loop.iter)
            return Refuse(
                codes.NotSurrogate,
                f"a loop over a tensor axis ('for ... in {header}'): a multi-step kernel",
                loop,
            )
    for name, body in reversed(bodies):
        subscript = _axis_subscript(body)
        if subscript is None:
            continue
        if name == "backward":
            return Refuse(
                codes.BackwardNotElementwise,
                f"the backward indexes along an axis ('{sym.code(subscript)}')",
                subscript,
            )
        return Refuse(
            codes.ForwardNotElementwise,
            f"the forward indexes along an axis ('{sym.code(subscript)}'), as in a time shift: "
            "its value is not an elementwise function of the inputs",
            subscript,
        )
    return None


def _axis_subscript(node: cst.CSTNode) -> cst.Subscript | None:
    """The first ``x[..., 1:]`` / ``x[:, t]`` on anything but a shape or a size."""
    found: list[cst.Subscript] = []

    def visit(n: cst.CSTNode) -> None:
        if not isinstance(n, cst.Subscript) or found:
            return
        value = n.value
        if isinstance(value, cst.Attribute) and value.attr.value == "shape":
            return
        if isinstance(value, cst.Call) and call_name(value)[1] == "size":
            return
        if any(_selects_along_axis(e.slice, len(n.slice) > 1) for e in n.slice):
            found.append(n)

    sym.walk(node, visit)
    return found[0] if found else None


def _selects_along_axis(element: cst.BaseSlice, several: bool) -> bool:
    """``1:`` / ``:-1`` anywhere, or a position (``t``, ``0``) among several indices; not ``:``,
    ``...`` or ``None`` (which only copy or add axes) and not a lone mask ``x[x < 0]``."""
    if isinstance(element, cst.Slice):
        return any(part is not None for part in (element.lower, element.upper, element.step))
    value = element.value if isinstance(element, cst.Index) else None
    if isinstance(value, cst.Ellipsis) or (isinstance(value, cst.Name) and value.value == "None"):
        return False
    return several


def _axis_loop(node: cst.CSTNode) -> cst.For | None:
    """The first ``for`` over a tensor's shape or length whose body indexes along an axis."""
    found: list[cst.For] = []

    def visit(n: cst.CSTNode) -> None:
        if not isinstance(n, cst.For) or found:
            return
        header = sym.code(n.iter)
        over_axis = any(word in header for word in (".shape", ".size(", "len("))
        if over_axis and (_axis_subscript(n.body) or _indexes_with(n.body, n.target)):
            found.append(n)

    sym.walk(node, visit)
    return found[0] if found else None


def _indexes_with(body: cst.CSTNode, target: cst.BaseAssignTargetExpression) -> bool:
    """Whether ``body`` indexes something with the loop variable (``inp[t]``: a time step)."""
    if not isinstance(target, cst.Name):
        return False
    found = False

    def visit(n: cst.CSTNode) -> None:
        nonlocal found
        if isinstance(n, cst.Subscript) and any(
            isinstance(e.slice, cst.Index) and sym.mentions(e.slice.value, target.value)
            for e in n.slice
        ):
            found = True

    sym.walk(body, visit)
    return found


def _surrogate_shaped(index: ProjectIndex, info: ClassInfo) -> bool:
    methods = _methods(index, info)
    if "forward" not in methods:
        return False
    forward, forward_cls = methods["forward"]
    backward = methods.get("backward")
    return shape.surrogate_shaped(
        index,
        (forward, index.module(forward_cls.path)),
        (backward[0], index.module(backward[1].path)) if backward else None,
    )


def _passed(constant: cst.BaseExpression) -> bool:
    return ir.callable_parts(constant) is not None
