"""A leaky integrate-and-fire layer unrolled over time."""

import torch
from torch import nn

from surrogate import FastSigmoidSpike


class LIF(nn.Module):
    def __init__(self, n_in, n_out, beta=0.9, threshold=1.0):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.beta = beta
        self.threshold = threshold

    def forward(self, x):
        mem = torch.zeros(x.shape[1], self.fc.out_features, dtype=x.dtype)
        spikes = []
        for t in range(x.shape[0]):
            mem = self.beta * mem + self.fc(x[t])
            spk = FastSigmoidSpike.apply(mem - self.threshold)
            mem = mem - spk * self.threshold
            spikes.append(spk)
        return torch.stack(spikes)
