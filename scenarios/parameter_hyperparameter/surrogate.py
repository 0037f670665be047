import math

import torch


class ATanSpike(torch.autograd.Function):
    """Arctan surrogate whose width ``alpha`` is a tensor (possibly learnable)."""

    @staticmethod
    def forward(ctx, v, alpha):
        ctx.save_for_backward(v, alpha)
        return (v > 0).type_as(v)

    @staticmethod
    def backward(ctx, grad_output):
        v, alpha = ctx.saved_tensors
        grad_v = grad_output * alpha / 2 / (1 + (math.pi / 2 * alpha * v) ** 2)
        # alpha is a hyperparameter: no gradient for it, even though it is an nn.Parameter
        return grad_v, None
