import torch
from torch import nn

from surrogate import spike


class LIF(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)

    def forward(self, x):
        u = torch.zeros(x.shape[1], self.fc.out_features, dtype=x.dtype)
        spikes = []
        for t in range(x.shape[0]):
            u = 0.9 * u + self.fc(x[t])
            z = spike(u - 1.0)
            u = u - z
            spikes.append(z)
        return torch.stack(spikes)
