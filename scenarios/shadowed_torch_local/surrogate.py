import torch


class ExpSpike(torch.autograd.Function):
    """Exponential surrogate: g(v) = exp(-|v| / 0.3) / 0.6."""

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return torch.heaviside(v, torch.zeros_like(v))

    @staticmethod
    def backward(ctx, grad_output):
        (v,) = ctx.saved_tensors
        return grad_output * torch.exp(-v.abs() / 0.3) / 0.6
