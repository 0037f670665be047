import torch
import torch.nn as nn


class SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return u.gt(0).type_as(u)

    @staticmethod
    def backward(ctx, grad_output):
        (u,) = ctx.saved_tensors
        return grad_output * torch.exp(-3.0 * u.abs())


class SmoothStep(torch.autograd.Function):
    @staticmethod
    def forward(aux, x):
        aux.save_for_backward(x)
        return (x >= 0).type_as(x)

    @staticmethod
    def backward(aux, grad_output):
        (x,) = aux.saved_tensors
        return grad_output / (1.0 + x.abs()) ** 2


class SpikingLayer(nn.Module):
    def __init__(self, n_in, n_out, decay=0.7):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.decay = decay
        self.spike_fct = SpikeFn.apply
        self.readout_spike = SmoothStep().apply

    def forward(self, x):
        u = self.decay * self.fc(x)
        return self.spike_fct(u - 0.5)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = SpikingLayer(8, 6)
        self.out = SpikingLayer(6, 3)

    def forward(self, x):
        return self.out(self.hidden(x))
