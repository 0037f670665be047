"""Fast-sigmoid surrogate whose slope follows a schedule kept in a list."""

import torch

SCHEDULE = [25.0]


class FastSigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).type_as(v)

    @staticmethod
    def backward(ctx, grad_output):
        (v,) = ctx.saved_tensors
        return grad_output / (SCHEDULE[-1] * v.abs() + 1.0) ** 2
