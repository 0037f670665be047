import torch
from torch import nn

from surrogate import SuperSpike


class RecurrentLIF(nn.Module):
    def __init__(self, n_in, n_hidden, decay=0.9):
        super().__init__()
        self.w_in = nn.Linear(n_in, n_hidden, bias=False)
        self.w_rec = nn.Linear(n_hidden, n_hidden, bias=False)
        self.decay = decay

    def forward(self, x):
        batch = x.shape[1]
        mem = torch.zeros(batch, self.w_in.out_features, dtype=x.dtype)
        spk = torch.zeros_like(mem)
        record = []
        for t in range(x.shape[0]):
            mem = self.decay * mem * (1.0 - spk) + self.w_in(x[t]) + self.w_rec(spk)
            spk = SuperSpike.apply(mem - 1.0)
            record.append(spk)
        return torch.stack(record)
