import torch
from torch import nn

from surrogate import CustomSpike


def fast_sigmoid_grad(x, slope=10.0):
    return 1.0 / (slope * x.abs() + 1.0) ** 2


class LIF(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.fc2 = nn.Linear(n_out, n_out)

    def forward(self, x):
        mem = torch.zeros(x.shape[1], self.fc.out_features, dtype=x.dtype)
        mem2 = torch.zeros_like(mem)
        spikes = []
        for t in range(x.shape[0]):
            mem = 0.9 * mem + self.fc(x[t])
            spk = CustomSpike.apply(mem - 1.0, lambda v: torch.exp(-v.abs() * 2.0))
            mem = mem - spk
            mem2 = 0.9 * mem2 + self.fc2(spk)
            spk2 = CustomSpike.apply(mem2 - 1.0, fast_sigmoid_grad)
            mem2 = mem2 - spk2
            spikes.append(spk2)
        return torch.stack(spikes)
