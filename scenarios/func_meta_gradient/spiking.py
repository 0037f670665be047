import torch
from torch import nn


class SigmoidSpike(torch.autograd.Function):
    @staticmethod
    def forward(v, slope):
        return (v > 0).type_as(v)

    @staticmethod
    def setup_context(ctx, inputs, output):
        v, slope = inputs
        ctx.save_for_backward(v)
        ctx.slope = slope

    @staticmethod
    def backward(ctx, grad_output):
        (v,) = ctx.saved_tensors
        sg = torch.sigmoid(ctx.slope * v)
        return grad_output * ctx.slope * sg * (1.0 - sg), None


class SpikingMLP(nn.Module):
    def __init__(self, n_in=5, n_hidden=10, n_out=2, slope=4.0, steps=4):
        super().__init__()
        self.fc1 = nn.Linear(n_in, n_hidden)
        self.fc2 = nn.Linear(n_hidden, n_out)
        self.slope = slope
        self.steps = steps

    def forward(self, x):
        v = torch.zeros(x.shape[0], self.fc1.out_features, dtype=x.dtype)
        out = 0.0
        for _ in range(self.steps):
            v = 0.7 * v + self.fc1(x)
            s = SigmoidSpike.apply(v - 1.0, self.slope)
            v = v - s
            out = out + self.fc2(s)
        return out / self.steps
