"""``--verify-modules`` in the verification child: import rewritten files and script their modules.

Loaded by ``child/checks`` (by path) for a job with ``modules``: each entry is a changed file's
rewritten source with its module name and import root. Pass one imports every rewritten module
through ``RewrittenFinder`` (first on ``sys.meta_path``: it serves the rewritten text in place of
the file, and registers it with ``linecache`` so that TorchScript reads the rewritten source); the
project's other modules come from disk. Pass two forgets the project's modules and imports the
original files. In both passes every ``nn.Module`` subclass defined in the module that can be
built without arguments is scripted, saved and loaded, and its graph must not call Python
(``prim::PythonOp``). One ``module`` message per class (or per module that cannot be imported).
This executes the user's code, which is why the flag is opt-in.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import linecache
import os
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

torch: Any = None  # bound by check()


class RewrittenLoader(importlib.abc.Loader):
    def __init__(self, source: dict[str, Any]) -> None:
        self.source = source

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        path, text = self.source["path"], self.source["text"]
        # mtime None: linecache never reloads this entry from the (original) file on disk.
        linecache.cache[path] = (len(text), None, text.splitlines(True), path)
        module.__file__ = path
        exec(compile(text, path, "exec", dont_inherit=True), module.__dict__)  # noqa: S102

    def get_source(self, fullname: str) -> str:
        return str(self.source["text"])


class RewrittenFinder(importlib.abc.MetaPathFinder):
    def __init__(self, sources: dict[str, dict[str, Any]]) -> None:
        self.sources = sources

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(fullname)
        if source is None:
            return None
        spec = importlib.util.spec_from_loader(
            fullname, RewrittenLoader(source), origin=source["path"], is_package=source["package"]
        )
        if spec is not None and source["package"]:
            spec.submodule_search_locations = [os.path.dirname(source["path"])]
        return spec


def check_class(cls: type, first_line: Callable[[BaseException], str]) -> tuple[str, str]:
    """(state, detail) of one nn.Module class: ok, fail or skipped."""
    try:
        instance = cls()
    except Exception as exc:
        return "skipped", f"not built without arguments: {type(exc).__name__}: {first_line(exc)}"
    step = "torch.jit.script"
    try:
        scripted = torch.jit.script(instance)
        if "prim::PythonOp" in str(scripted.inlined_graph):
            return "fail", "the scripted graph calls Python (prim::PythonOp)"
        step = "torch.jit.save"
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        buffer.seek(0)
        step = "torch.jit.load"
        torch.jit.load(buffer)
    except Exception as exc:
        return "fail", f"{step} fails: {type(exc).__name__}: {first_line(exc)}"
    return "ok", "scripts, saves and loads"


def one_pass(
    sources: Sequence[dict[str, Any]], first_line: Callable[[BaseException], str]
) -> dict[str, dict[str, tuple[str, str]]]:
    """Per module name: per class qualname (or '' for the import itself) its (state, detail)."""
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for source in sources:
        name = source["name"]
        try:
            module = importlib.import_module(name)
        except BaseException as exc:  # the user's module may do anything, SystemExit included
            if isinstance(exc, KeyboardInterrupt):
                raise
            found[name] = {"": ("fail", f"import fails: {type(exc).__name__}: {first_line(exc)}")}
            continue
        classes = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, torch.nn.Module)
            and value.__module__ == module.__name__
        ]
        found[name] = {
            f"{name}.{cls.__qualname__}": check_class(cls, first_line) for cls in classes
        }
    return found


def forget(roots: set[str], names: set[str], before: set[str]) -> None:
    """Drop the project's modules imported since ``before``, so that the next pass imports them
    again (third-party modules stay: some cannot be imported twice)."""
    for key in set(sys.modules) - before:
        module = sys.modules.get(key)
        where = os.path.abspath(getattr(module, "__file__", None) or "")
        if key in names or any(where.startswith(root + os.sep) for root in roots):
            del sys.modules[key]


def check(
    job: dict[str, Any],
    send: Callable[[dict[str, Any]], None],
    torch_module: Any,
    first_line: Callable[[BaseException], str],
) -> None:
    global torch
    torch = torch_module
    sources = list(job["modules"])
    roots = {os.path.abspath(s["root"]) for s in sources}
    for root in sorted(roots):
        if root not in sys.path:
            sys.path.insert(0, root)
    names = {s["name"] for s in sources}
    importlib.invalidate_caches()
    before = set(sys.modules)
    finder = RewrittenFinder({s["name"]: s for s in sources})
    sys.meta_path.insert(0, finder)
    try:
        rewritten = one_pass(sources, first_line)
    finally:
        sys.meta_path.remove(finder)
    forget(roots, names, before)
    for source in sources:
        linecache.cache.pop(source["path"], None)  # the original's source from now on
    original = one_pass(sources, first_line)
    for source in sources:
        after, was = rewritten[source["name"]], original.get(source["name"], {})
        for qualname, (state, detail) in after.items():
            before_state, before_detail = was.get(qualname, was.get("", ("", "")))
            send(
                {
                    "kind": "module",
                    "path": source["path"],
                    "class": qualname,
                    "state": state,
                    "detail": detail,
                    "original": before_state,
                    "original_detail": before_detail,
                }
            )
