"""Boxcar surrogate whose width is a module constant."""

import torch

WIDTH = 0.5


class Boxcar(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).type_as(v)

    @staticmethod
    def backward(ctx, grad_output):
        (v,) = ctx.saved_tensors
        return grad_output * (v.abs() < WIDTH).type_as(v) / (2 * WIDTH)
