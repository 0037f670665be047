import torch
from torch import nn

from surrogate import ExpSpike


class TraceLIF(nn.Module):
    """LIF driven by a low-pass filtered input trace."""

    def __init__(self, n_in, n_out, trace_decay=0.5):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.trace_decay = trace_decay

    def forward(self, x):
        return stack_time(self.unroll(x))

    def unroll(self, x):
        # "torch" is the presynaptic trace, named as in the lab's paper; torch is not used here.
        torch = x.new_zeros(x.shape[1:])
        mem = x.new_zeros(x.shape[1], self.fc.out_features)
        spikes = []
        for t in range(x.shape[0]):
            torch = self.trace_decay * torch + x[t]
            mem = 0.9 * mem + self.fc(torch)
            spk = ExpSpike.apply(mem - 1.0)
            mem = mem - spk
            spikes.append(spk)
        return spikes


def stack_time(spikes):
    return torch.stack(spikes)
