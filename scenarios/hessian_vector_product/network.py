import torch
from torch import nn

from surrogates import ATan


class Leaky(nn.Module):
    def __init__(self, beta=0.8, threshold=1.0, alpha=2.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold
        self.alpha = alpha

    def forward(self, cur, mem):
        mem = self.beta * mem + cur
        spk = ATan.apply(mem - self.threshold, self.alpha)
        return spk, mem - spk * self.threshold


class Net(nn.Module):
    def __init__(self, n_in=6, n_hidden=12, n_out=3):
        super().__init__()
        self.fc1 = nn.Linear(n_in, n_hidden)
        self.lif1 = Leaky()
        self.fc2 = nn.Linear(n_hidden, n_out)

    def forward(self, x):
        mem = torch.zeros(x.shape[1], self.fc1.out_features, dtype=x.dtype)
        counts = 0
        for t in range(x.shape[0]):
            spk, mem = self.lif1(self.fc1(x[t]), mem)
            counts = counts + self.fc2(spk)
        return counts / x.shape[0]
