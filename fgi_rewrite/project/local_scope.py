"""What the names bound in a function body denote: parameters (unknown, an instance of the
class for ``self``), local classes, single assignments and local imports, each resolved through
the project index on first lookup."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

import libcst as cst

from fgi_rewrite.project.entities import ClassRef, Entity, Unknown
from fgi_rewrite.project.source_module import (
    ClassInfo,
    ModuleInfo,
    assignments,
    bound_names,
    dotted_name,
    import_bindings,
)


class Resolver(Protocol):
    """What a local scope asks of the project index (``index.ProjectIndex``, which builds the
    scopes and resolves through them)."""

    def resolve_dotted(self, dotted: str, near: Path | None = None, depth: int = 0) -> Entity: ...

    def resolve_value(
        self,
        module: ModuleInfo,
        value: cst.BaseExpression,
        depth: int = 0,
        local: Mapping[str, Entity] | None = None,
    ) -> Entity: ...


@dataclass(frozen=True)
class _Imported:
    """A name a function body imports, resolved on first lookup."""

    dotted: str


class LocalScope(Mapping[str, Entity]):
    """Names bound in a function body, resolved on first lookup: parameters shadow, single
    assignments resolve, local classes are classes."""

    def __init__(
        self, index: Resolver, module: ModuleInfo, func: cst.FunctionDef, depth: int = 0
    ) -> None:
        self.index, self.module, self.func, self.depth = index, module, func, depth
        self._resolved: dict[str, Entity] = {}

    @cached_property
    def _bindings(self) -> dict[str, Entity | _Imported | list[cst.BaseExpression]]:
        bindings: dict[str, Entity | _Imported | list[cst.BaseExpression]] = {}
        params = self.func.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            bindings[param.name.value] = Unknown(
                f"'{param.name.value}' is a parameter", from_parameter=True
            )
        owner = self._method_of()
        if owner is not None:  # ``self``: an instance of the class (``layer = self.layer``)
            first = [*params.posonly_params, *params.params][0].name.value
            bindings[first] = Unknown(
                f"'{first}' is a parameter", from_parameter=True, instance_of=owner
            )
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                bindings[star.name.value] = Unknown("star parameter")
        body = self.func.body.body if isinstance(self.func.body, cst.IndentedBlock) else ()
        class_by_node = self.module.class_by_node
        for stmt in body:
            if isinstance(stmt, cst.ClassDef) and id(stmt) in class_by_node:
                bindings[stmt.name.value] = ClassRef(class_by_node[id(stmt)])
        imports = import_bindings(self.module, body)
        for name, values in assignments(body).items():
            if name not in bindings:
                bindings[name] = (
                    Unknown(f"'{name}' is imported and assigned") if name in imports else values
                )
        for name, full in imports.items():
            bindings.setdefault(name, _Imported(full))
        for name in bound_names(self.func.body) - set(bindings):
            bindings[name] = Unknown(f"'{name}' is bound in a nested block")
        return bindings

    def _method_of(self) -> ClassInfo | None:
        """The class ``func`` is a plain method of (taking ``self`` first), if any."""
        params = [*self.func.params.posonly_params, *self.func.params.params]
        decorators = {dotted_name(d.decorator) for d in self.func.decorators}
        if not params or decorators & {"staticmethod", "classmethod"}:
            return None
        for info in self.module.classes:
            if any(s is self.func for s in info.node.body.body):
                return info
        return None

    def __getitem__(self, name: str) -> Entity:
        if name not in self._resolved:
            binding = self._bindings[name]
            if isinstance(binding, _Imported):
                binding = self.index.resolve_dotted(
                    binding.dotted, self.module.path, self.depth + 1
                )
            elif isinstance(binding, list):
                if len(binding) == 1:
                    self._resolved[name] = Unknown(f"'{name}' refers to itself")  # cycle guard
                    binding = self.index.resolve_value(
                        self.module, binding[0], self.depth + 1, self
                    )
                else:
                    binding = Unknown(f"'{name}' is assigned more than once")
            self._resolved[name] = binding
        return self._resolved[name]

    def __contains__(self, name: object) -> bool:
        return name in self._bindings

    def __iter__(self) -> Iterator[str]:
        return iter(self._bindings)

    def __len__(self) -> int:
        return len(self._bindings)


def local_entities(
    index: Resolver, module: ModuleInfo, func: cst.FunctionDef, depth: int = 0
) -> LocalScope:
    return LocalScope(index, module, func, depth)
