import torch
from torch import nn

from surrogate import make_spike


class LIF(nn.Module):
    def __init__(self, n_in, n_out, scale):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.spike_fn = make_spike(scale)

    def forward(self, x):
        mem = torch.zeros(x.shape[1], self.fc.out_features, dtype=x.dtype)
        spikes = []
        for t in range(x.shape[0]):
            mem = 0.9 * mem + self.fc(x[t])
            spk = self.spike_fn(mem - 1.0)
            mem = mem - spk
            spikes.append(spk)
        return torch.stack(spikes)
