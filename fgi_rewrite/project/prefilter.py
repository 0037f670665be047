"""Cheap text and syntax filters that decide which files and calls deserve a full analysis.

Most of a big tree never mentions a surrogate; these filters let the run skip it with a substring
test or a stdlib-AST walk instead of a libcst parse, and let the rewriter skip calls that cannot
reach a Function's ``apply`` without resolving their names.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

# A dotted name as black may wrap it inside brackets (``mod\n    .Fn``), and the ``()`` of
# ``Fn().apply``. The texts are matched with their backslash continuations joined (``_joined``).
_DOTTED = r"\w+(?:\s*\.\s*\w+)*(?:\(\s*\))?"
# ``name = Fn.apply`` / ``self.name: T = (\n    mod.Fn.apply\n)`` / ``spike = Fn().apply``
_APPLY_ALIAS = re.compile(rf"(\w+)\s*(?::[^=\n]*)?=[\s(]*{_DOTTED}\s*\.\s*apply\b")
_DEF = re.compile(r"^([ \t]*)def (\w+)\(")
_RETURN = re.compile(r"^([ \t]*)return\b")
_RETURN_APPLY = re.compile(rf"^[ \t]*return[\s(]+{_DOTTED}\s*\.\s*apply\b")
# ``target = dotted.name`` or ``target = dotted.name(...`` (the call may go on over lines),
# also wrapped in parentheses over lines: ``target = (\n    dotted.name\n)``
_REBIND = re.compile(
    r"^[ \t]*(?:[\w.]+\.)?(\w+)[ \t]*(?::[^=\n]*)?=[ \t]*(?:\(\s*)?"
    r"(\w+(?:\s*\.\s*\w+)*)[ \t]*(\(.*)?[ \t]*(?:#.*)?$",
    re.MULTILINE,
)
_IMPORT_AS = re.compile(r"\b(\w+)\s+as\s+(\w+)")
_CONTINUATION = re.compile(r"\\\r?\n")


def _joined(text: str) -> str:
    """``text`` with its backslash continuations joined: ``a = \\\n    Fn.apply`` is one line."""
    return _CONTINUATION.sub(" ", text) if "\\" in text else text


def assigns_apply(text: str, attr: str) -> bool:
    """Whether ``text`` may set ``attr`` to some ``Fn.apply`` on ``self`` or in a class body
    (``self.spike_fct = SpikeFn.apply``, in any layout): where an alias attribute's owners are
    looked for, without parsing every file that mentions the name."""
    if attr not in text or "apply" not in text:
        return False
    target = rf"(?:\bself\s*\.\s*|^[ \t]+){re.escape(attr)}"
    pattern = rf"{target}\s*(?::[^=\n]*)?=[\s(]*{_DOTTED}\s*\.\s*apply\b"
    return re.search(pattern, _joined(text), re.MULTILINE) is not None


def _factories(text: str) -> set[str]:
    """Functions with a ``return Fn.apply`` directly in their body (found by indentation; the
    returned value may be wrapped over the next lines)."""
    found: set[str] = set()
    stack: list[tuple[int, str]] = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if "def " not in line and "return" not in line:
            continue
        match = _DEF.match(line) or _RETURN.match(line)
        if match is None:
            continue
        indent = len(match.group(1).expandtabs())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if match.re is _DEF:
            stack.append((indent, match.group(2)))
        elif stack and _RETURN_APPLY.match("\n".join(lines[number : number + 3])):
            found.add(stack[-1][1])
    return found


@dataclass(frozen=True)
class CalleeNames:
    classes: frozenset[str]  # names of Function classes (receivers of .apply, legacy calls)
    aliases: frozenset[str]  # names that may be bound to some Fn.apply
    factories: frozenset[str] = frozenset()  # functions returning some Fn.apply

    @classmethod
    def from_sources(cls, classes: set[str], sources: list[str]) -> CalleeNames:
        aliases: set[str] = set()
        factories: set[str] = set()
        for text in map(_joined, sources):
            aliases.update(_APPLY_ALIAS.findall(text))
            factories.update(_factories(text))
        return cls(frozenset(classes), frozenset(aliases), frozenset(factories))

    def mentioned_in(self, text: str) -> bool:
        return any(n in text for n in (*self.classes, *self.aliases, *self.factories)) or (
            # ``spike_fn.apply(...)`` on a parameter: reported as unresolved (FGI201)
            bool(self.classes)
            and ".apply(" in text
        )

    def for_module(self, text: str) -> CalleeNames:
        """Add this module's own rebinding chains (``spike = fn``, ``self.f = mod.fn``, imports
        ``as``) to a fixed point."""
        aliases = set(self.aliases)
        classes = set(self.classes)
        text = _joined(text)
        rebinds = _REBIND.findall(text)
        renames = _IMPORT_AS.findall(text)
        while True:
            before = len(aliases) + len(classes)
            for target, value, call in rebinds:
                parts = "".join(value.split()).split(".")
                if call:
                    if parts[-1] in self.factories or parts[-1] in classes:
                        aliases.add(target)  # ``spike = Fn()`` too: ``spike.apply`` is Fn's
                elif parts[-1] in aliases or (
                    parts[-1] == "apply" and len(parts) > 1 and parts[-2] in classes
                ):
                    aliases.add(target)
                elif parts[-1] in classes:  # ``self.spike = MultiSpike``: ``self.spike.apply``
                    classes.add(target)
            for original, alias in renames:
                name = original.split(".")[-1]
                if name in aliases:
                    aliases.add(alias)
                if name in classes:  # ``from defs import Spike as S``: ``S.apply``, ``S()(x)``
                    classes.add(alias)
            if len(aliases) + len(classes) == before:
                return CalleeNames(frozenset(classes), frozenset(aliases), self.factories)

    def candidate(
        self, key: str | None, receiver: str | None, legacy: bool, any_apply: bool = False
    ) -> bool:
        """``key``: last identifier of the callee; ``receiver``: last identifier of what
        ``.apply`` is taken from (or None when the callee is a bare name)."""
        if legacy:
            return key in self.classes
        if key == "apply" and (receiver is not None or any_apply):
            return any_apply or receiver in self.classes or receiver in self.aliases
        return key in self.aliases


def statements_with_candidates(
    tree: ast.Module, sizes: Sequence[int], names: CalleeNames
) -> list[bool] | None:
    """Per top-level statement of a module, whether it mentions ``.apply`` or a callee name,
    from its stdlib AST. ``sizes`` counts the stdlib statements of each libcst statement (a line
    ``a = 1; b = 2`` holds two); None when the counts do not add up."""
    wanted_names = names.classes | names.aliases | names.factories

    def mentions(node: ast.stmt) -> bool:
        return any(
            (isinstance(n, ast.Attribute) and (n.attr == "apply" or n.attr in wanted_names))
            or (isinstance(n, ast.Name) and n.id in wanted_names)
            for n in ast.walk(node)
        )

    if sum(sizes) != len(tree.body):
        return None
    statements = iter(tree.body)
    return [any([mentions(next(statements)) for _ in range(size)]) for size in sizes]
