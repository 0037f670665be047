"""The documented value of the emitted code at non-finite inputs (README, "Semantics")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def same_but_nan_at_nonfinite(original: Any, rewrite: Any, inputs: Sequence[Any]) -> bool:
    """The rewrite's value equals the original's (NaN-aware), except that it may be NaN wherever
    one of ``inputs`` (broadcast to the value's shape) is ±inf or NaN: the emitted code's value
    there when a gradient can flow. ``inputs`` are the entry point's, not necessarily the
    surrogate's (an entry may sanitise them first), hence "may"."""
    import torch

    if original.dtype != rewrite.dtype or original.shape != rewrite.shape:
        return False
    poisoned = torch.zeros(original.shape, dtype=torch.bool)
    for tensor in inputs:
        poisoned |= ~torch.isfinite(tensor.detach()).broadcast_to(original.shape)
    same = (original == rewrite) | (original.isnan() & rewrite.isnan())
    return bool((same | (poisoned & rewrite.isnan())).all())
