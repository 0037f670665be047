"""Small self-contained sources for the CLI and robustness tests (fixtures cover the analysis)."""

from __future__ import annotations

# A surrogate Function and a call site in one module.
SURROGATE = '''\
"""Spiking step with a fast-sigmoid surrogate."""
import torch


class SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (1.0 + 10.0 * x.abs()) ** 2


def fire(v):
    return SpikeFn.apply(v - 1.0)
'''

# The surrogate alone, and a module that imports it and calls it (cross-file).
DEFINITION = SURROGATE[: SURROGATE.index("\n\ndef fire")] + "\n"
USER = """\
from surrogates import SpikeFn


def step(v):
    return SpikeFn.apply(v)
"""

# A surrogate-like Function fgi-rewrite refuses (FGI101: the backward reduces).
REFUSED = """\
import torch


class NormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * x / x.abs().sum()


def fire(v):
    return NormFn.apply(v)
"""

# Ordinary code: nothing to do.
PLAIN = """\
def add(a, b):
    return a + b
"""
