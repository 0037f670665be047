"""Sigmoid surrogate; configure() sets module-level hyperparameters by name."""

import torch

SLOPE = 4.0


def configure(**hyperparameters):
    for name, value in hyperparameters.items():
        globals()[name.upper()] = value


class SigmoidSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).type_as(v)

    @staticmethod
    def backward(ctx, grad_output):
        (v,) = ctx.saved_tensors
        s = torch.sigmoid(SLOPE * v)
        return grad_output * SLOPE * s * (1 - s)
