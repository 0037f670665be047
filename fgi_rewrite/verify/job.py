"""The job the verification child receives, typed: what the parent decides, the child executes.

The parent (``stage``, ``isolate``, ``hyper_samples``, ``module_check``) builds these frozen
values; ``Job.to_json`` is the only place that turns them into the JSON the child reads from its
stdin (``child/checks.py``), which runs in an interpreter that need not have fgi_rewrite
installed and therefore reads plain dictionaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fgi_rewrite.core.model import Style, VerifyLevel


@dataclass(frozen=True)
class Chunk:
    """One top-level statement group of the isolated verification module, executed on its own.

    ``kind``: ``header`` (torch and math), ``import``, ``constant``, ``helper``, ``class`` (the
    Function, or the call of the original), ``base`` (an in-module base class), ``link`` (names
    bound to a copied project module: ``source`` and ``names``, local name -> attribute, '' for
    the module itself) or ``fgi`` (the emitted code). ``namespace`` is the copied project module
    it belongs to ('' for the verification module itself); ``future`` whether that module has
    ``from __future__ import annotations`` (None: the case's); ``emitted`` marks the chunks kept
    when the original is imported from the user's module instead."""

    kind: str
    text: str
    what: str = ""
    namespace: str = ""
    source: str = ""
    names: Mapping[str, str] = field(default_factory=dict)
    future: bool | None = None
    emitted: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "what": self.what,
            "text": self.text,
            "namespace": self.namespace,
        }
        if self.kind == "link":
            data.update(source=self.source, names=dict(self.names))
        if self.future is not None:
            data["future"] = self.future
        if self.emitted:
            data["emitted"] = True
        return data


@dataclass(frozen=True)
class HyperConfig:
    """One combination of hyperparameter values (forward inputs without a gradient) to check.

    ``sampled``: some value (or the way it is passed) is a documented sample, not one the code
    gives; ``tensors``: the hyperparameters passed as 0-dim tensors of their value;
    ``parameters``: those of them passed as ``nn.Parameter`` (they require grad)."""

    values: Mapping[str, object]
    label: str
    sampled: bool = False
    tensors: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "values": dict(self.values),
            "label": self.label,
            "sampled": self.sampled,
            "tensors": list(self.tensors),
            "parameters": list(self.parameters),
        }


@dataclass(frozen=True)
class StateRead:
    """Run-time state the rewrite reads (a module global, a class attribute, an entry of a
    container, an attribute of a config object), which the child sets to each configuration's
    value (under ``key``) before both the original and the rewrite run: ``path`` from the
    namespace (the verification module, or a copied project module) to it, as ("name", n),
    ("attr", a) and ("item", k) steps."""

    key: str
    namespace: str
    path: tuple[tuple[str, object], ...]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "namespace": self.namespace, "path": [list(s) for s in self.path]}


@dataclass(frozen=True)
class UserImport:
    """Where the child imports the original Function from (``--verify-import-user-code``)."""

    root: str  # directory put on sys.path
    module: str
    attribute: str  # the class's attribute path in the module

    def to_json(self) -> dict[str, str]:
        return {"root": self.root, "module": self.module, "attribute": self.attribute}


@dataclass(frozen=True)
class Case:
    """The verification of one surrogate."""

    id: str  # the surrogate's qualname (with its specialization)
    class_name: str
    chunks: tuple[Chunk, ...]
    future_annotations: bool
    forms: Mapping[Style, str]  # emitted form -> the name the child calls
    wrappers: Mapping[Style, str]  # emitted form -> its nn.Module wrapper class
    original_wrapper: str  # the nn.Module that calls the original's apply
    configs: tuple[HyperConfig, ...]
    params: tuple[tuple[str, bool], ...]  # forward inputs: (name, has a gradient)
    hyper: str  # where the hyperparameter values came from, as shown in the verdict
    domain: str = "real"  # "unit": a probability input, sampled in [0, 1]
    plot: str | None = None  # absolute path of the PNG to draw (--plot)
    user_import: UserImport | None = None
    not_isolated: str = ""  # why the isolated module cannot be built (then user_import)
    second_order: bool = False  # the exact form: second derivatives are compared too
    reads: tuple[StateRead, ...] = ()  # run-time state set to each configuration's values
    eager_only: str = ""  # why the TorchScript/compile/export checks are not run ('' if run)
    callables: tuple[tuple[int, str], ...] = ()  # (position, name) passed to the original

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "class_name": self.class_name,
            "chunks": [c.to_json() for c in self.chunks],
            "future_annotations": self.future_annotations,
            "forms": {k.value: v for k, v in self.forms.items()},
            "wrappers": {k.value: v for k, v in self.wrappers.items()},
            "original_wrapper": self.original_wrapper,
            "configs": [c.to_json() for c in self.configs],
            "params": [{"name": name, "grad": grad} for name, grad in self.params],
            "plot": self.plot,
            "domain": self.domain,
            "user_import": self.user_import.to_json() if self.user_import else None,
            "not_isolated": self.not_isolated,
            "hyper": self.hyper,
            "second_order": self.second_order,
            "reads": [r.to_json() for r in self.reads],
            "eager_only": self.eager_only,
            "callables": [list(c) for c in self.callables],
        }


@dataclass(frozen=True)
class ModuleSource:
    """A rewritten file the child imports for ``--verify-modules``."""

    name: str  # its module name
    path: str
    text: str  # the rewritten text (the original is read from disk)
    package: bool
    root: str  # the directory put on sys.path

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "text": self.text,
            "package": self.package,
            "root": self.root,
        }


@dataclass(frozen=True)
class Job:
    """Everything one child process does: the cases at ``level``, or the module checks."""

    level: VerifyLevel | str  # "modules" for a --verify-modules job
    cases: tuple[Case, ...] = ()
    modules: tuple[ModuleSource, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "level": str(self.level),
            "cases": [c.to_json() for c in self.cases],
        }
        if self.modules:
            data["modules"] = [m.to_json() for m in self.modules]
        return data
