import torch
from torch import nn

from surrogate import spike_fn


class SNN(nn.Module):
    def __init__(self, n_in, n_hidden, n_out):
        super().__init__()
        self.fc1 = nn.Linear(n_in, n_hidden)
        self.fc2 = nn.Linear(n_hidden, n_out)

    def forward(self, x):
        v1 = torch.zeros(x.shape[1], self.fc1.out_features, dtype=x.dtype)
        v2 = torch.zeros(x.shape[1], self.fc2.out_features, dtype=x.dtype)
        out = []
        for t in range(x.shape[0]):
            v1 = 0.9 * v1 + self.fc1(x[t])
            s1 = spike_fn(v1 - 1.0)
            v1 = v1 - s1
            v2 = 0.9 * v2 + self.fc2(s1)
            out.append(v2)
        return torch.stack(out).mean(0)
