import torch

# Per-layer surrogate slopes; layer 0 is the only spiking layer here.
SLOPES = [2.0, 4.0]


class SigmoidSurrogate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).type_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        k = SLOPES[0]
        sig = torch.sigmoid(k * x)
        return grad_output * k * sig * (1 - sig)


spike = SigmoidSurrogate.apply
