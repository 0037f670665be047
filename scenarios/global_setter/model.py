import torch
import torch.nn as nn

from surrogate import spike_fn


class SpikingLayer(nn.Module):
    def __init__(self, n_in, n_out, beta=0.8):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.beta = beta

    def forward(self, x):
        mem = torch.zeros(x.shape[1], self.fc.out_features, dtype=x.dtype)
        out = []
        for t in range(x.shape[0]):
            mem = self.beta * mem + self.fc(x[t])
            spk = spike_fn(mem - 1.0)
            mem = mem * (1.0 - spk)
            out.append(spk)
        return torch.stack(out)
