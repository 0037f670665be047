"""A spike whose surrogate derivative is chosen by the caller."""

import torch


class CustomSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input_, surrogate_fn):
        ctx.save_for_backward(input_)
        ctx.surrogate_fn = surrogate_fn
        return (input_ > 0).type_as(input_)

    @staticmethod
    def backward(ctx, grad_output):
        (input_,) = ctx.saved_tensors
        return grad_output * ctx.surrogate_fn(input_), None
