"""Spike function with a fast-sigmoid surrogate whose slope is a module global."""

import torch

ALPHA = 2.0


def set_alpha(alpha):
    """Called by the training script when the slope is annealed."""
    global ALPHA
    ALPHA = alpha


class FastSigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, mem):
        ctx.save_for_backward(mem)
        return (mem > 0).type_as(mem)

    @staticmethod
    def backward(ctx, grad_output):
        (mem,) = ctx.saved_tensors
        return grad_output / (ALPHA * mem.abs() + 1.0) ** 2


spike_fn = FastSigmoid.apply
