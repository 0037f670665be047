import torch

from config import cfg


class SigmoidSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return (u >= 0).type_as(u)

    @staticmethod
    def backward(ctx, grad_output):
        (u,) = ctx.saved_tensors
        s = torch.sigmoid(cfg.alpha * u)
        return grad_output * cfg.alpha * s * (1.0 - s)
