from types import SimpleNamespace

import torch

hp = SimpleNamespace(alpha=4.0, width=1.0)


class TriangleSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).type_as(v)

    @staticmethod
    def backward(ctx, grad_output):
        (v,) = ctx.saved_tensors
        tri = torch.clamp(hp.width - v.abs(), min=0.0) * hp.alpha
        return grad_output * tri
