"""The hyperparameter values and input domains a surrogate is verified with.

``hyper_configs`` chooses, per hyperparameter (a forward input with no gradient), the literal or
module-constant value each call site passes, else the forward's default, else the default of an
enclosing function's parameter or ``self`` attribute the call site passes on (and then the samples
too, since a caller may pass another value), else the documented ``SAMPLES`` (``INT_SAMPLES``
where ``integer_params`` finds the code needs ints, ``BOOL_SAMPLES`` for a flag); each
combination once (``_distinct``), at most ``MAX_CONFIGS`` of them. Each hyperparameter is passed
the way the call sites pass it (``hyper_kinds``: a number, a 0-dim tensor or an ``nn.Parameter``;
an argument of unknown kind as a number and, in one further combination kept within
``MAX_CONFIGS``, as an ``nn.Parameter``). ``probability_params`` names the inputs sampled in
[0, 1], and
``call_nodes`` maps call-site positions to their call nodes. This reads the user's source only;
the isolated module the values are checked in is built by ``isolate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path

import libcst as cst

from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.core.model import Location, Surrogate
from fgi_rewrite.project.entities import ValueRef
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.source_module import ModuleInfo, dotted_name
from fgi_rewrite.rewrite.emit import tensor_default, used_as_tensor
from fgi_rewrite.verify.hyper_kinds import (
    PARAMETER,
    TENSOR,
    UNKNOWN,
    argument_kind,
    call_owners,
    kinds_to_check,
    tensor_payload,
)
from fgi_rewrite.verify.job import HyperConfig

SAMPLES = (1.0, 2.0, 5.0)  # hyperparameter values when neither the call site nor a default says
INT_SAMPLES = (1, 2, 5)  # the same for a hyperparameter the code uses as an integer
BOOL_SAMPLES = (False, True, False)  # the same for a flag (a known value of it is a bool)
# Keyword arguments that take an int (``torch.round(x, decimals=k)``, ``x.roll(shifts=k)``).
INT_KEYWORDS = frozenset({"decimals", "shifts", "dims", "dim", "diagonal"})
# Calls that draw a 0/1 sample with their argument as the probability: its domain is [0, 1].
PROBABILITY_CALLS = frozenset({"bernoulli", "bernoulli_"})
MAX_CONFIGS = 4  # hyperparameter combinations checked per surrogate


def _resampled(found: Sequence[tuple[object, str]]) -> tuple[tuple[object, str], ...]:
    return tuple(
        (value, source) if source in ("call site", "default", "sample") else (None, "sample")
        for value, source in found
    )


def _enclosing_defaults(
    module: ModuleInfo,
) -> dict[int, dict[str, tuple[str, cst.BaseExpression]]]:
    """Per call node (by id): the names that are parameters with a default of an enclosing
    function (the innermost binding the name, closures included) that its body never rebinds
    (``def make(k=25.0): ... Fn.apply(v, k)``), and the ``self.attr`` of the enclosing class
    that ``_self_defaults`` knows; each with where its value comes from and the value."""
    found: dict[int, dict[str, tuple[str, cst.BaseExpression]]] = {}
    stack: list[tuple[str, dict[str, cst.BaseExpression | None]]] = []
    classes: list[cst.ClassDef] = []
    attributes: dict[int, dict[str, tuple[str, cst.BaseExpression]]] = {}

    class Rebound(cst.CSTVisitor):
        def __init__(self) -> None:
            self.names: set[str] = set()

        def _target(self, node: cst.BaseExpression) -> None:
            for name in _target_names(node):
                self.names.add(name)

        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            self._target(node.target)

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            self._target(node.target)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            self._target(node.target)

        def visit_For(self, node: cst.For) -> None:
            self._target(node.target)

        def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
            self._target(node.target)

        def visit_AsName(self, node: cst.AsName) -> None:
            self._target(node.name)

        def visit_Global(self, node: cst.Global) -> None:
            self.names.update(n.name.value for n in node.names)

        def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
            self.names.update(n.name.value for n in node.names)

    class Visitor(cst.CSTVisitor):
        def visit_ClassDef(self, node: cst.ClassDef) -> None:
            classes.append(node)

        def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
            classes.pop()

        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            rebound = Rebound()
            node.body.visit(rebound)
            params = [*node.params.params, *node.params.kwonly_params]
            names = {p.name.value: p.default for p in params} | dict.fromkeys(rebound.names)
            for p in params:
                if p.name.value in rebound.names:
                    names[p.name.value] = None
            stack.append((node.name.value, names))

        def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
            stack.pop()

        def visit_Call(self, node: cst.Call) -> None:
            # A name resolves to the innermost function binding it (closures included).
            scope: dict[str, tuple[str, cst.BaseExpression | None]] = {}
            for function, names in stack:
                scope.update((n, (function, d)) for n, d in names.items())
            for name, (function, default) in scope.items():
                if default is not None:
                    found.setdefault(id(node), {})[name] = (f"default of {function}", default)
            if classes and stack:  # ``self.alpha``: set once, from an __init__ default?
                owner = classes[-1]
                if id(owner) not in attributes:
                    attributes[id(owner)] = _self_defaults(module, owner)
                for attr, known in attributes[id(owner)].items():
                    found.setdefault(id(node), {})[f"self.{attr}"] = known

    module.tree.visit(Visitor())
    return found


def _self_defaults(
    module: ModuleInfo, node: cst.ClassDef
) -> dict[str, tuple[str, cst.BaseExpression]]:
    """``self.attr`` assigned exactly once in the class, from a literal or from a parameter of
    ``__init__`` with a default (``def __init__(self, alpha=2.0): self.alpha = alpha``)."""
    init = next(
        (
            s
            for s in node.body.body
            if isinstance(s, cst.FunctionDef) and s.name.value == "__init__"
        ),
        None,
    )
    defaults = {}
    if init is not None:
        defaults = {p.name.value: p.default for p in init.params.params if p.default is not None}
    found: dict[str, tuple[str, cst.BaseExpression]] = {}
    for attr, values in module.self_assignments.get(id(node), {}).items():
        if len(values) != 1:
            continue
        value = _unwrapped(module, values[0])
        if isinstance(value, cst.Name) and value.value in defaults:
            found[attr] = (f"default of {node.name.value}.__init__", defaults[value.value])
        elif sym.literal_value(value) is not NotImplemented:
            found[attr] = (f"self.{attr} of {node.name.value}", value)
    return found


def _target_names(node: cst.BaseExpression) -> list[str]:
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, (cst.Tuple, cst.List)):
        return [n for e in node.elements for n in _target_names(e.value)]
    if isinstance(node, cst.StarredElement):
        return _target_names(node.value)
    return []


def call_nodes(module: ModuleInfo) -> dict[Location, cst.Call]:
    """Each call of the module by its location (as call sites report it)."""
    found: dict[Location, cst.Call] = {}
    for node, position in module.positions.items():
        start = getattr(position, "start", None)
        if isinstance(node, cst.Call) and start is not None:
            found.setdefault(module.position(start.line, start.column + 1), node)
    return found


def _bind(surrogate: Surrogate, call: cst.Call | None) -> list[tuple[cst.BaseExpression, str]]:
    """Argument expression per parameter and where it came from (call site or default)."""
    values: dict[str, tuple[cst.BaseExpression, str]] = {}
    names = [p.name for p in surrogate.params]
    for i, arg in enumerate(call.args if call is not None else ()):
        if arg.keyword is None and i < len(names) and not arg.star:
            values[names[i]] = (arg.value, "call site")
        elif arg.keyword is not None and arg.keyword.value in names:
            values[arg.keyword.value] = (arg.value, "call site")
    bound = []
    for p in surrogate.params:
        if p.name in values:
            bound.append(values[p.name])
        else:
            bound.append(
                (p.default, "default")
                if p.default is not None
                else (cst.Name("__fgi_unknown__"), "")
            )
    return bound


def _literal(index: ProjectIndex, module: ModuleInfo, node: cst.BaseExpression) -> object:
    value = sym.literal_value(node)
    if value is NotImplemented and isinstance(node, (cst.Name, cst.Attribute)):
        entity = index.resolve_expr(module, node)
        if isinstance(entity, ValueRef):
            value = sym.literal_value(entity.node)
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return NotImplemented


def integer_params(forward: cst.FunctionDef | None) -> set[str]:
    """Parameters of ``forward`` the code needs as ints: annotated ``int``, or used as a shift or
    bitwise operand, a subscript index, an argument of ``range`` or an integer keyword argument
    (``decimals=k``)."""
    if forward is None:
        return set()
    names = {p.name.value for p in forward.params.params}
    found = {
        p.name.value
        for p in forward.params.params
        if p.annotation is not None and dotted_name(p.annotation.annotation) == "int"
    }

    def mark(node: cst.BaseExpression | None) -> None:
        if isinstance(node, cst.Name) and node.value in names:
            found.add(node.value)

    class Visitor(cst.CSTVisitor):
        def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
            integer = (cst.LeftShift, cst.RightShift, cst.BitAnd, cst.BitOr, cst.BitXor)
            if isinstance(node.operator, integer):
                mark(node.left)
                mark(node.right)

        def visit_SubscriptElement(self, node: cst.SubscriptElement) -> None:
            if isinstance(node.slice, cst.Index):
                mark(node.slice.value)

        def visit_Call(self, node: cst.Call) -> None:
            for arg in node.args:
                if dotted_name(node.func) == "range" or (
                    arg.keyword is not None and arg.keyword.value in INT_KEYWORDS
                ):
                    mark(arg.value)

    forward.body.visit(Visitor())
    return found


def probability_params(surrogate: Surrogate) -> set[str]:
    """Differentiable inputs the forward passes as a probability (``torch.bernoulli(p)``,
    ``p.bernoulli()``): outside [0, 1] the original raises, so they are sampled in [0, 1]."""
    names = {surrogate.params[i].name for i in surrogate.differentiable()}
    found: set[str] = set()

    class Visitor(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            callee = dotted_name(node.func) or ""
            if callee.rsplit(".", 1)[-1] not in PROBABILITY_CALLS:
                return
            if isinstance(node.func, cst.Attribute) and isinstance(node.func.value, cst.Name):
                if node.func.value.value in names:  # p.bernoulli()
                    found.add(node.func.value.value)
            if node.args and isinstance(node.args[0].value, cst.Name):
                if node.args[0].value.value in names:  # torch.bernoulli(p)
                    found.add(node.args[0].value.value)

    surrogate.value.visit(Visitor())
    return found


def _distinct(
    configs: Sequence[HyperConfig], used: Sequence[dict[str, str]]
) -> tuple[list[HyperConfig], list[dict[str, str]]]:
    """Each combination once (the first: known values come before samples), so that
    ``MAX_CONFIGS`` is not spent on repeats (``alpha=2.0`` from a call site, a default and the
    samples is checked once, and the sample 5.0 is not dropped for it)."""
    kept: list[HyperConfig] = []
    sources: list[dict[str, str]] = []
    seen: set[tuple[object, ...]] = set()
    for config, source in zip(configs, used, strict=True):
        key = (
            tuple((name, type(value), value) for name, value in config.values.items()),
            config.tensors,
            config.parameters,
        )
        if key not in seen:
            seen.add(key)
            kept.append(config)
            sources.append(source)
    return kept, sources


def hyper_configs(
    index: ProjectIndex,
    surrogate: Surrogate,
    sites: Sequence[tuple[ModuleInfo, cst.Call | None]],
    integers: AbstractSet[str] = frozenset(),
    saved: AbstractSet[str] = frozenset(),
) -> tuple[list[HyperConfig], str]:
    """Hyperparameter combinations to check, and a summary of where their values came from;
    ``integers`` names the hyperparameters that get integer samples, ``saved`` those the forward
    saves with ``save_for_backward`` (so they are tensors; ``hyper_kinds``)."""
    hyper = [i for i, g in enumerate(surrogate.grads) if g is None]
    samples: dict[str, tuple[float, ...] | tuple[int, ...] | tuple[bool, ...]] = {
        surrogate.params[i].name: INT_SAMPLES if surrogate.params[i].name in integers else SAMPLES
        for i in hyper
    }
    if not hyper:
        return [HyperConfig({}, "")], ""
    seen: list[tuple[tuple[object, str], ...]] = []
    scopes: dict[Path, dict[int, dict[str, tuple[str, cst.BaseExpression]]]] = {}
    for module, call in sites or [(index.module(surrogate.location.path), None)]:
        bound = _bind(surrogate, call)
        found: list[tuple[object, str]] = []
        if module.path not in scopes:
            scopes[module.path] = _enclosing_defaults(module)
        enclosing = scopes[module.path].get(id(call), {})
        passed_on = False  # a parameter of the enclosing function, with a literal default
        for i in hyper:
            expr, source = bound[i]
            value = _literal(index, module, _unwrapped(module, expr)) if source else NotImplemented
            default = surrogate.params[i].default
            if value is NotImplemented and source == "call site" and default is not None:
                value, source = _literal(index, module, default), "default"
            key = sym.code(expr) if isinstance(expr, (cst.Name, cst.Attribute)) else ""
            if value is NotImplemented and key:
                if key in enclosing:
                    label, outer = enclosing[key]
                    value, source = _literal(index, module, outer), label
                    passed_on = passed_on or value is not NotImplemented
            found.append((value, source) if value is not NotImplemented else (None, "sample"))
        for combo in [tuple(found)] + ([_resampled(found)] if passed_on else []):
            if combo not in seen:  # a caller may pass another value: the samples too
                seen.append(combo)
    for position, i in enumerate(hyper):  # a flag is sampled as a flag (TorchScript types it)
        if any(isinstance(combo[position][0], bool) for combo in seen):
            samples[surrogate.params[i].name] = BOOL_SAMPLES
    # A hyperparameter whose default is a tensor, or whose methods the code calls
    # (``max_spikes.float()``), is passed as a 0-dim tensor of its value.
    tensors = tuple(
        sorted(
            surrogate.params[i].name
            for i in hyper
            if tensor_default(surrogate.params[i].default)
            or used_as_tensor(surrogate, surrogate.params[i].name)
        )
    )
    # Known values first: MAX_CONFIGS cuts the sampled combinations, not the call sites'.
    seen.sort(key=lambda combo: sum(source == "sample" for _, source in combo))
    configs: list[HyperConfig] = []
    used: list[dict[str, str]] = []  # per config: the source of each value
    for combo in seen:
        sampled = any(s == "sample" for _, s in combo)
        for k in range(len(SAMPLES) if sampled else 1):
            values = {
                surrogate.params[i].name: (
                    samples[surrogate.params[i].name][k] if source == "sample" else value
                )
                for i, (value, source) in zip(hyper, combo, strict=True)
            }
            label = ", ".join(f"{name}={value!r}" for name, value in values.items())
            configs.append(HyperConfig(values, label, sampled, tensors))
            used.append(
                {
                    surrogate.params[i].name: source
                    for i, (_, source) in zip(hyper, combo, strict=True)
                }
            )
    names = [surrogate.params[i].name for i in hyper]
    integral = _integral(names, set(integers) | _flags(samples), seen)
    sites = sites or [(index.module(surrogate.location.path), None)]
    kinds = _kinds(index, surrogate, sites, hyper, set(tensors) | set(saved), integral)
    configs, used = _distinct(*_with_kinds(configs, used, kinds))
    configs, used = _cut(configs, used, kinds)
    summary = []  # the values checked (after the cut), grouped by where they came from
    for i in hyper:
        name = surrogate.params[i].name
        by_source: dict[str, list[str]] = {}
        for config, sources in zip(configs, used, strict=True):
            shown = _shown(config, name)
            if shown not in by_source.setdefault(sources[name], []):
                by_source[sources[name]].append(shown)
        summary.append("; ".join(f"{name}={', '.join(v)} ({s})" for s, v in by_source.items()))
    return configs, ", ".join(summary)


# ---- how the call sites pass each hyperparameter (hyper_kinds.py) -----------------------------

Kinds = dict[str, tuple[tuple[str, ...], bool]]  # name -> (kinds to check, main first; guessed)


def _unwrapped(module: ModuleInfo, node: cst.BaseExpression) -> cst.BaseExpression:
    """The value a tensor-building expression holds (``nn.Parameter(torch.tensor(2.0))``: 2.0)."""
    value = tensor_payload(module, node)[0]
    return value if value is not None else node


def _integral(
    names: Sequence[str],
    integers: AbstractSet[str],
    seen: Sequence[tuple[tuple[object, str], ...]],
) -> set[str]:
    """The hyperparameters that hold anything but floats (ints, flags, strings: known values, or
    ``integer_params``): they are never passed as parameters (only floating tensors require
    grad)."""
    found = set(integers)
    for combo in seen:
        for name, (value, source) in zip(names, combo, strict=True):
            if source != "sample" and not isinstance(value, float):
                found.add(name)
    return found


def _kinds(
    index: ProjectIndex,
    surrogate: Surrogate,
    sites: Sequence[tuple[ModuleInfo, cst.Call | None]],
    hyper: Sequence[int],
    needs_tensor: AbstractSet[str],
    integral: AbstractSet[str],
) -> Kinds:
    """Per hyperparameter: the kinds to check (``kinds_to_check``) and whether the kinds beyond
    the main one are a guess (an argument of unknown kind) rather than seen at a call site."""
    passed: dict[str, list[str]] = {surrogate.params[i].name: [] for i in hyper}
    owners: dict[int, dict[int, cst.ClassDef]] = {}
    for module, call in sites:
        if id(module) not in owners:
            owners[id(module)] = call_owners(module)
        owner = owners[id(module)].get(id(call)) if call is not None else None
        bound = _bind(surrogate, call)
        for i in hyper:
            expr, source = bound[i]
            name = surrogate.params[i].name
            if not source:  # neither passed nor defaulted
                passed[name].append(UNKNOWN)
            elif source == "default" and tensor_default(expr):
                passed[name].append(TENSOR)
            else:
                number = isinstance(_literal(index, module, expr), (int, float))
                passed[name].append(argument_kind(module, owner, expr, number))
    kinds: Kinds = {}
    for i in hyper:
        name = surrogate.params[i].name
        tensor, integer = name in needs_tensor, name in integral
        checked = kinds_to_check(passed[name], tensor, integer)
        seen = [kind for kind in passed[name] if kind != UNKNOWN]
        visible = kinds_to_check(seen, tensor, integer) if seen else ()
        kinds[name] = (checked, not set(checked[1:]) <= set(visible))
    return kinds


def _flags(samples: dict[str, tuple[float, ...] | tuple[int, ...] | tuple[bool, ...]]) -> set[str]:
    return {name for name, values in samples.items() if values is BOOL_SAMPLES}


def _with_kinds(
    configs: Sequence[HyperConfig], used: Sequence[dict[str, str]], kinds: Kinds
) -> tuple[list[HyperConfig], list[dict[str, str]]]:
    """Every configuration with the main kind of each hyperparameter."""
    tensors = tuple(sorted(n for n, (k, _) in kinds.items() if k[0] in (TENSOR, PARAMETER)))
    parameters = tuple(sorted(n for n, (k, _) in kinds.items() if k[0] == PARAMETER))
    return [_as_kinds(c, tensors, parameters, c.sampled) for c in configs], list(used)


def _as_kinds(
    config: HyperConfig, tensors: tuple[str, ...], parameters: tuple[str, ...], sampled: bool
) -> HyperConfig:
    changed = HyperConfig(config.values, "", sampled, tensors, parameters)
    label = ", ".join(f"{name}={_shown(changed, name)}" for name in config.values)
    return HyperConfig(config.values, label, sampled, tensors, parameters)


def _shown(config: HyperConfig, name: str) -> str:
    value = config.values[name]
    return f"Parameter({value!r})" if name in config.parameters else repr(value)


def _cut(
    configs: Sequence[HyperConfig], used: Sequence[dict[str, str]], kinds: Kinds
) -> tuple[list[HyperConfig], list[dict[str, str]]]:
    """At most ``MAX_CONFIGS``, one of them kept for each further kind a hyperparameter is
    checked as (the first configuration's values, those hyperparameters switched to it)."""
    variants: list[tuple[HyperConfig, dict[str, str]]] = []
    first = configs[0]
    for kind in (TENSOR, PARAMETER):
        names = [n for n, (k, _) in kinds.items() if kind in k[1:]]
        if not names:
            continue
        tensors = tuple(sorted(set(first.tensors) | set(names)))
        parameters = set(first.parameters) - set(names)
        if kind == PARAMETER:
            parameters |= set(names)
        guessed = any(kinds[n][1] for n in names)
        variant = _as_kinds(first, tensors, tuple(sorted(parameters)), first.sampled or guessed)
        # A kind that no call site shows is a sample, as the values nothing gives are.
        sources = {n: "sample" if n in names and kinds[n][1] else s for n, s in used[0].items()}
        if variant not in configs:
            variants.append((variant, sources))
    keep = max(1, MAX_CONFIGS - len(variants))
    kept = list(configs[:keep]) + [variant for variant, _ in variants]
    kept_used = list(used[:keep]) + [sources for _, sources in variants]
    return kept[:MAX_CONFIGS], kept_used[:MAX_CONFIGS]


def with_state(
    configs: Sequence[HyperConfig], initial: Sequence[tuple[str, str]]
) -> tuple[list[HyperConfig], str]:
    """The configurations extended with values of the run-time state the rewrite reads
    (``initial``: key and its static initial value, '' when unknown): the initial values with
    every configuration, then the samples (of the initial value's type) with the first; at most
    ``MAX_CONFIGS``, and a summary of the state's values."""
    if not initial:
        return list(configs), ""
    known = {key: _parsed(value) for key, value in initial}
    first = [known[key] if known[key] is not None else SAMPLES[0] for key, _ in initial]
    states: list[tuple[list[object], bool]] = [(first, any(v is None for v in known.values()))]
    for k in range(len(SAMPLES)):
        values = [_samples(known[key])[k] for key, _ in initial]
        if all(v == f and type(v) is type(f) for v, f in zip(values, first, strict=True)):
            continue
        states.append((values, True))
    keys = [key for key, _ in initial]
    extended = []
    for config, (values, sampled) in (
        [(configs[0], states[0])]
        + [(configs[0], s) for s in states[1:]]
        + [(c, states[0]) for c in configs[1:]]
    ):
        state = dict(zip(keys, values, strict=True))
        label = ", ".join(x for x in (config.label, _label(state)) if x)
        extended.append(
            HyperConfig(
                {**config.values, **state},
                label,
                config.sampled or sampled,
                config.tensors,
                config.parameters,
            )
        )
    extended = extended[:MAX_CONFIGS]
    shown = "; ".join(
        f"{key}={', '.join(dict.fromkeys(repr(c.values[key]) for c in extended))} (run-time state"
        + (f", initially {known[key]!r})" if known[key] is not None else ")")
        for key in keys
    )
    return extended, shown


def _parsed(code: str) -> object:
    value = sym.literal_value(cst.parse_expression(code)) if code else NotImplemented
    return value if isinstance(value, (bool, int, float)) else None


def _samples(value: object) -> tuple[object, ...]:
    if isinstance(value, bool):
        return BOOL_SAMPLES
    if isinstance(value, int):
        return INT_SAMPLES
    return SAMPLES


def _label(state: dict[str, object]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in state.items())
