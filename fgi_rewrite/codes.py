"""Stable diagnostic codes.

Each code is a class; its docstring is the text that ``fgi-rewrite --explain CODE`` prints: what the
code means, an example and what to do about it. Codes never change meaning once released.
"""

from __future__ import annotations

import inspect
from enum import Enum


class Severity(Enum):
    INFO = "info"  # shown with -v only, never affects the exit status
    WARNING = "warning"  # shown, does not fail --check
    REFUSAL = "refusal"  # a surrogate or call site left unrewritten: fails --check
    ERROR = "error"  # unreadable input or internal error: exit 123


class Code:
    """Base class of all codes; subclasses set ``code`` and ``severity``."""

    code: str = ""
    severity: Severity = Severity.WARNING

    @classmethod
    def explain(cls) -> str:
        return f"{cls.code} ({cls.severity.value}): {inspect.cleandoc(cls.__doc__ or '')}\n"


class NotSurrogate(Code):
    """The autograd.Function is not a surrogate: its forward is not an elementwise expression of its
    inputs (a matmul, a multi-step kernel, plumbing), so it is left alone.

    Example: ``forward(ctx, x, w): return x @ w``.
    Fix: nothing to fix; fgi-rewrite only handles elementwise surrogates.
    """

    code = "FGI001"
    severity = Severity.INFO


class BackwardNotElementwise(Code):
    """The backward uses an operation that mixes elements (a reduction, matmul, indexing, roll,
    reshape) or an operation fgi-rewrite does not know to be elementwise. Forward gradient injection
    can only express gradients of the form ``grad_output * g(inputs)`` with ``g`` elementwise.

    Example: ``return grad_output * x / x.abs().sum()``.
    Fix: none needed; the Function keeps its custom backward. If the operation is elementwise,
    please report it so it can be added to the list of known elementwise operations.
    """

    code = "FGI101"
    severity = Severity.REFUSAL


class GradientNotLinear(Code):
    """The gradient the backward returns is not ``grad_output`` times something that does not depend
    on ``grad_output`` (it squares it, takes its absolute value, adds a constant...). Such a
    backward is not the derivative of any forward and cannot be injected.

    Example: ``return grad_output.abs() * g`` or ``return grad_output * g + 1``.
    Fix: none; keep the custom Function.
    """

    code = "FGI102"
    severity = Severity.REFUSAL


class RandomBackward(Code):
    """The backward draws random numbers (or uses random numbers the forward drew but did not
    return). An injected gradient is computed in the forward pass, so the random stream would be
    consumed in a different order than the original.

    Example: ``return grad_output * torch.rand_like(x)``.
    Fix: none; keep the custom Function.
    """

    code = "FGI103"
    severity = Severity.REFUSAL


class SeveralOutputs(Code):
    """The forward returns several tensors (a tuple). Forward gradient injection rewrites one output.

    Example: ``return spikes, membrane``.
    Fix: split the Function into one Function per output.
    """

    code = "FGI104"
    severity = Severity.REFUSAL


class CallableHyperparameter(Code):
    """A hyperparameter is a callable (a surrogate shape passed in, stored on ctx and called in
    backward) that cannot be resolved to a module-level function statically.

    Example: ``ctx.fn = fn`` in forward and ``ctx.fn(x)`` in backward, with ``fn`` chosen at run time.
    Fix: pass a module-level function at every call site, or keep the Function.
    """

    code = "FGI105"
    severity = Severity.REFUSAL


class SideEffectForward(Code):
    """The forward (or backward) has a side effect besides computing its result: an in-place
    update of an input or a global, a print, a call whose result is dropped.

    Example: ``x.clamp_(0, 1)`` or ``COUNTER[0] += 1`` in forward.
    Fix: move the side effect out of the Function.
    """

    code = "FGI106"
    severity = Severity.REFUSAL


class UnsupportedStatement(Code):
    """The forward or backward uses a statement fgi-rewrite cannot turn into one expression: a loop
    whose range is not a constant, a condition that depends on tensor values or on run-time data,
    try/with blocks, nested functions.

    Example: ``if x.mean() > 0: ...`` in backward.
    Fix: rewrite the condition with ``torch.where`` or keep the Function.
    """

    code = "FGI107"
    severity = Severity.REFUSAL


class UnresolvedName(Code):
    """A name used by the forward or backward cannot be resolved statically to an input, a
    hyperparameter, a constant, a helper function, ``torch`` or ``math``.

    Example: ``return grad_output * g(x) * CONFIG.scale`` with ``CONFIG`` built at run time.
    Fix: make the value a literal constant or pass it through ``apply``.
    """

    code = "FGI108"
    severity = Severity.REFUSAL


class GradientCountMismatch(Code):
    """The backward returns fewer gradients than the forward takes inputs (or non-None gradients
    for inputs that do not exist). PyTorch rejects this at run time, so the Function is broken.

    Example: ``forward(ctx, x, th)`` with ``backward`` returning only ``grad_x``.
    Fix: return one gradient (or None) per forward input.
    """

    code = "FGI109"
    severity = Severity.REFUSAL


class NonFloatOutput(Code):
    """The forward returns a boolean or integer tensor (for example a bare comparison). Such an
    output carries no gradient, so the backward is never called; there is nothing to inject.

    Example: ``return x > 0``.
    Fix: return ``(x > 0).float()`` if a gradient was intended.
    """

    code = "FGI110"
    severity = Severity.REFUSAL


class MutableHyperparameter(Code):
    """A class attribute used as a hyperparameter is reassigned somewhere in the project, so its
    value at call time cannot be known statically.

    Example: ``SpikeFn.alpha = 0.3`` in a training script.
    Fix: pass the hyperparameter through ``apply``.
    """

    code = "FGI111"
    severity = Severity.REFUSAL


class UnresolvedCallSite(Code):
    """A call site could not be resolved statically to one surrogate Function (for example
    ``spike_fn.apply(x)`` where ``spike_fn`` is a parameter), so it is left as it is.

    Fix: call the Function (or an alias of its ``apply``) directly, or rewrite the site by hand.
    """

    code = "FGI201"
    severity = Severity.WARNING


class LegacyCall(Code):
    """A legacy (pre-0.4 style) call ``Fn()(x)``: an instance of the Function is called. Modern
    PyTorch rejects it, so it is reported and not rewritten.

    Fix: use ``Fn.apply(x)``.
    """

    code = "FGI202"
    severity = Severity.WARNING


class BadCallArguments(Code):
    """A call site passes the wrong number of arguments, unknown keywords or ``*args``/``**kwargs``,
    so its arguments cannot be bound to the forward's parameters. Calls with a missing argument are
    errors in the original code too.

    Example: ``Step.apply()`` for ``forward(ctx, x)``.
    Fix: pass every required argument explicitly.
    """

    code = "FGI203"
    severity = Severity.WARNING


class UnreadableFile(Code):
    """A file could not be read or parsed (syntax error, undecodable bytes, not a regular file). It
    is left untouched and the run exits with status 123.

    Fix: make the file valid Python 3 source.
    """

    code = "FGI901"
    severity = Severity.ERROR


ALL_CODES: dict[str, type[Code]] = {
    cls.code: cls
    for cls in (
        NotSurrogate,
        BackwardNotElementwise,
        GradientNotLinear,
        RandomBackward,
        SeveralOutputs,
        CallableHyperparameter,
        SideEffectForward,
        UnsupportedStatement,
        UnresolvedName,
        GradientCountMismatch,
        NonFloatOutput,
        MutableHyperparameter,
        UnresolvedCallSite,
        LegacyCall,
        BadCallArguments,
        UnreadableFile,
    )
}
