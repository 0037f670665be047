"""Run-time state in the verification child: set what the rewrite reads at run time (a module
global, a class attribute, a container entry, a config object's attribute) to a configuration's
value, for the original and the rewrite alike.

Loaded by ``child/checks`` (by path). Each read is a path of ("name", n), ("attr", a) and
("item", k) steps from a namespace (the verification module, a copied project module, the user's
module when the original is imported from it). What the path needs and the isolated module does
not have (a config object built by code that was not copied) is stood in for by a plain
namespace or dict holding just the value: the Function only reads it.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any


def set_state(case: dict[str, Any], config: dict[str, Any], targets: Sequence[Any]) -> None:
    """Assign each read of ``case`` its value in ``config``, in every namespace of
    ``targets`` (namespace name -> module objects) that holds it."""
    for read in case.get("reads", ()):
        if read["key"] not in config["values"]:
            continue
        value = config["values"][read["key"]]
        for namespaces in targets:
            namespace = namespaces.get(read["namespace"])
            if namespace is not None:
                assign(namespace, [tuple(step) for step in read["path"]], value)


def assign(namespace: Any, path: Sequence[tuple[str, Any]], value: Any) -> None:
    holder: Any = namespace
    for i, (kind, key) in enumerate(path):
        last = i == len(path) - 1
        following = path[i + 1][0] if not last else ""
        current = _get(holder, kind, key)
        if last:
            _put(holder, kind, key, value)
            return
        if current is None or not _settable(current, following):
            current = _stand_in(current, following)
            _put(holder, kind, key, current)
        holder = current


def _get(holder: Any, kind: str, key: Any) -> Any:
    try:
        return holder[key] if kind == "item" else getattr(holder, key, None)
    except (KeyError, IndexError, TypeError):
        return None


def _put(holder: Any, kind: str, key: Any, value: Any) -> None:
    if kind == "item":
        holder[key] = value
    elif isinstance(holder, types.ModuleType) or kind == "name":
        holder.__dict__[key] = value
    else:
        setattr(holder, key, value)


def _settable(current: Any, following: str) -> bool:
    """Whether the next step can be assigned in ``current`` as it is."""
    if following == "item":
        return isinstance(current, (dict, list))
    if isinstance(current, (int, float, bool, str, tuple, type(None))):
        return False
    try:
        probe = "__fgi_probe__"
        setattr(current, probe, None)
        delattr(current, probe)
    except Exception:
        return False
    return True


def _stand_in(current: Any, following: str) -> Any:
    """A container for the next step: a copy of a tuple as a list, else an empty namespace or
    dict."""
    if following == "item":
        return list(current) if isinstance(current, tuple) else {}
    return types.SimpleNamespace()


def with_callables(apply: Any, module: Any, passed: Sequence[Sequence[Any]]) -> Any:
    """``apply`` called with the callables a call site passes (inlined by the rewrite, so the
    emitted code does not take them) inserted at their positions, from ``module``."""
    positions = sorted((int(position), name) for position, name in passed)

    def call(*args: Any) -> Any:
        full = list(args)
        for position, name in positions:
            full.insert(position, getattr(module, name))
        return apply(*full)

    return call
