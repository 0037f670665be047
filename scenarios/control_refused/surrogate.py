import torch


class NoisySpike(torch.autograd.Function):
    """Surrogate gradient with multiplicative noise: not a fixed g(x), so it cannot be injected."""

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).type_as(v)

    @staticmethod
    def backward(ctx, grad_output):
        (v,) = ctx.saved_tensors
        noise = torch.rand_like(v)
        return grad_output * torch.exp(-v.abs()) * (0.5 + noise)
