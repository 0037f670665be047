"""Rectangular (boxcar) surrogate; WIDTH is set by the training script."""

import torch

WIDTH = 0.5


class BoxcarSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return v.ge(0.0).type_as(v)

    @staticmethod
    def backward(ctx, grad_output):
        (v,) = ctx.saved_tensors
        box = (v.abs() < WIDTH).type_as(v) / (2 * WIDTH)
        return grad_output * box
