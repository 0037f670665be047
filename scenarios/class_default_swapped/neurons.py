import torch
import torch.nn as nn


class StepPWL(torch.autograd.Function):
    """Heaviside step with a piecewise-linear surrogate gradient."""

    @staticmethod
    def forward(ctx, x, threshold=1.0, window=0.5):
        ctx.save_for_backward(x)
        ctx.threshold = threshold
        ctx.window = window
        return (x > threshold).type_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        inside = ((x - ctx.threshold).abs() < ctx.window).type_as(x)
        return grad_output * inside / (2 * ctx.window), None, None


class MultiSpike(torch.autograd.Function):
    """Several spikes per step: floor of the membrane, clipped at 4."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.clamp(torch.floor(x), 0.0, 4.0)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * ((x > 0.0) & (x < 5.0)).type_as(x)


class LIF(nn.Module):
    def __init__(self, n_in, n_out, tau=0.8, spike_fn=StepPWL):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.tau = tau
        self.spike_fn = spike_fn.apply

    def forward(self, x):
        v = torch.zeros(x.shape[1], self.fc.out_features, dtype=x.dtype)
        out = []
        for t in range(x.shape[0]):
            v = self.tau * v + self.fc(x[t])
            s = self.spike_fn(v)
            v = v - s
            out.append(s)
        return torch.stack(out)


class GatedLIF(nn.Module):
    def __init__(self, n_in, n_out, spike=MultiSpike):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.spike = spike

    def forward(self, x):
        return self.spike.apply(self.fc(x) * 2.0)
