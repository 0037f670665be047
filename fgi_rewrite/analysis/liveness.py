"""Dead temporaries: statements of a forward (or backward, or helper) whose results nothing reads.

A forward may compute a temporary it never uses (lava-dl's Spike builds a time-shifted copy of
its input by slice assignment in one mode and drops it). Such statements do not contribute to
the value or the gradient, so the interpreter skips them instead of refusing what it cannot read
there. Only assignments to local names (never parameters, attributes or ``ctx``), and ``if``
blocks made only of those, are ever dropped; an error the dropped code would have raised is not
reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from fgi_rewrite.core import symbolic as sym


def dead_statements(body: Sequence[cst.CSTNode], params: frozenset[str]) -> set[int]:
    """Ids of the statements of ``body`` (a function body, nested blocks included) whose writes
    nothing later reads."""
    dead: set[int] = set()
    _block(body, set(), params, dead)
    return dead


def _block(
    body: Sequence[cst.CSTNode], live_after: set[str], params: frozenset[str], dead: set[int]
) -> set[str]:
    """Names live before ``body``; its dead statements are added to ``dead``."""
    live = set(live_after)
    for stmt in reversed(body):
        writes = _writes(stmt)
        if writes and not (writes & live) and not (writes & params):
            dead.add(id(stmt))
        elif isinstance(stmt, cst.If):
            live = _if(stmt, live, params, dead)
        else:
            live |= _reads(stmt)
    return live


def _if(stmt: cst.If, live_after: set[str], params: frozenset[str], dead: set[int]) -> set[str]:
    live: set[str] = set()
    node: cst.If | cst.Else | None = stmt
    while node is not None:
        if isinstance(node, cst.If):
            live |= _reads(node.test)
        if isinstance(node.body, cst.IndentedBlock):
            live |= _block(node.body.body, live_after, params, dead)
        else:
            live |= _reads(node.body)
        if isinstance(node, cst.If):
            node = node.orelse
            if node is None:
                live |= live_after  # no else: the state before may flow through
        else:
            node = None
    return live


def _writes(stmt: cst.CSTNode) -> set[str] | None:
    """Local names the statement writes, or None when it does anything else (a call statement,
    a return, an attribute or ctx store...)."""
    if isinstance(stmt, cst.SimpleStatementLine):
        names: set[str] = set()
        for small in stmt.body:
            targets: list[cst.BaseExpression]
            if isinstance(small, cst.Assign):
                targets = [t.target for t in small.targets]
            elif isinstance(small, (cst.AugAssign, cst.AnnAssign)):
                targets = [small.target]
            else:
                return None
            for target in targets:
                if isinstance(target, cst.Subscript):
                    target = target.value  # an update of a local temporary
                if not isinstance(target, cst.Name):
                    return None
                names.add(target.value)
        return names
    if isinstance(stmt, cst.If):
        names = set()
        blocks: list[cst.BaseSuite] = [stmt.body]
        orelse = stmt.orelse
        while orelse is not None:
            blocks.append(orelse.body)
            orelse = orelse.orelse if isinstance(orelse, cst.If) else None
        for block in blocks:
            if not isinstance(block, cst.IndentedBlock):
                return None
            for inner in block.body:
                written = _writes(inner)
                if written is None:
                    return None
                names |= written
        return names
    return None


def _reads(stmt: cst.CSTNode) -> set[str]:
    return sym.names_in(stmt)
