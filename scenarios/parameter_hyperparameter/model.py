import torch
from torch import nn

from surrogate import ATanSpike


class AdaptiveSurrogateLIF(nn.Module):
    """LIF layer whose surrogate width is an nn.Parameter (regularized by weight decay)."""

    def __init__(self, n_in, n_out, alpha=2.0):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.alpha = nn.Parameter(torch.tensor(alpha))

    def forward(self, x):
        v = torch.zeros(x.shape[1], self.fc.out_features, dtype=x.dtype)
        out = []
        for t in range(x.shape[0]):
            v = 0.8 * v + self.fc(x[t])
            s = ATanSpike.apply(v - 1.0, self.alpha)
            v = v * (1 - s)
            out.append(s)
        return torch.stack(out)
