"""Fresh names for generated code: never one the surrounding code already uses."""

from __future__ import annotations

from collections.abc import Iterable


class FreshNames:
    """Hands out ``base``, else ``base_1``, ``base_2``...: the first that is neither ``taken``
    nor handed out before. Call it with the base name wanted."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self.taken = set(taken)

    def __call__(self, base: str) -> str:
        candidate, n = base, 1
        while candidate in self.taken:
            candidate, n = f"{base}_{n}", n + 1
        self.taken.add(candidate)
        return candidate
