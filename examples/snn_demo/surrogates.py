"""Surrogate-gradient spike functions written as classic ``torch.autograd.Function`` subclasses.

The forward pass is a Heaviside step; the backward pass substitutes a smooth
pseudo-derivative so that gradients can flow through the spike nonlinearity.
"""

from __future__ import annotations

import math
from typing import Any

import torch


class FastSigmoidSpike(torch.autograd.Function):
    """Heaviside spike with a fast-sigmoid surrogate derivative (old-style ``forward(ctx)``)."""

    @staticmethod
    def forward(ctx: Any, v: torch.Tensor, slope: float = 25.0) -> torch.Tensor:
        ctx.save_for_backward(v)
        ctx.slope = slope
        return (v > 0).float()

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (v,) = ctx.saved_tensors
        return grad_output / (1.0 + ctx.slope * v.abs()) ** 2, None


class ATanSpike(torch.autograd.Function):
    """Heaviside spike with an arctan surrogate derivative (new-style ``setup_context``)."""

    @staticmethod
    def forward(v: torch.Tensor, alpha: float) -> torch.Tensor:
        return (v > 0).float()

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        v, alpha = inputs
        ctx.save_for_backward(v)
        ctx.alpha = alpha

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (v,) = ctx.saved_tensors
        alpha = ctx.alpha
        return grad_output * alpha / 2 / (1 + (math.pi / 2 * alpha * v) ** 2), None


fast_sigmoid = FastSigmoidSpike.apply
atan_spike = ATanSpike.apply
