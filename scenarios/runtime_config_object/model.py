import torch
from torch import nn

from config import cfg
from surrogate import SigmoidSpike


class Net(nn.Module):
    def __init__(self, n_in):
        super().__init__()
        self.fc = nn.Linear(n_in, cfg.n_hidden)

    def forward(self, x):
        u = torch.zeros(x.shape[1], self.fc.out_features, dtype=x.dtype)
        out = []
        for t in range(x.shape[0]):
            u = cfg.decay * u + self.fc(x[t])
            z = SigmoidSpike.apply(u - 1.0)
            u = u - z
            out.append(z)
        return torch.stack(out)
