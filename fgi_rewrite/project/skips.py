"""``# fgi: skip``: the lines that carry the marker, and the Functions marked on their header.

A call site, an alias or a higher-order use on a marked line is left alone; a Function marked on
its header (a decorator, the ``class`` line, a line of its bases) is left alone everywhere, with
its call sites, and reported only as a note (FGI007).
"""

from __future__ import annotations

import re

import libcst as cst

from fgi_rewrite.core import codes
from fgi_rewrite.core.model import Diagnostic
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.source_module import ClassInfo

SKIP_MARKER = "fgi: skip"
_NEWLINE = re.compile(r"\r\n?|\n")  # line ends as Python counts them (not form feeds)


def skip_lines(source: str) -> set[int]:
    """The lines that carry ``# fgi: skip``."""
    if SKIP_MARKER not in source:
        return set()
    return {i + 1 for i, line in enumerate(_NEWLINE.split(source)) if SKIP_MARKER in line}


def skipped_function(index: ProjectIndex, info: ClassInfo) -> Diagnostic | None:
    """FGI007 for a Function marked ``# fgi: skip`` on its header (a decorator, the ``class``
    line or a line of its bases down to the colon): the run takes it for its analysis, so that
    it is left alone everywhere and nothing else is reported about it."""
    marked = skip_lines(index.text(info.path))
    if not marked:
        return None
    module = info.defined_in
    start = getattr(module.positions.get(info.node), "start", None)
    if start is None:
        return None
    first = start.line  # the ``class`` keyword's line in the module's text
    node = info.node
    header = node.with_changes(
        body=cst.SimpleStatementSuite(body=[cst.Pass()]),
        decorators=(),
        leading_lines=(),
        lines_after_decorators=(),
    )
    last = first + module.tree.code_for_node(header).count("\n") - 1
    above = sum(module.tree.code_for_node(d).count("\n") for d in node.decorators)
    above += len(node.lines_after_decorators)
    if not marked & set(range(first - above, last + 1)):
        return None
    return Diagnostic(
        codes.SkippedFunction,
        info.location,
        f"{info.name}: marked '# {SKIP_MARKER}': left alone, its call sites too",
        subject=info.qualname,
    )
