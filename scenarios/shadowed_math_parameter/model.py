import torch
from torch import nn

from surrogate import ATan


def run_lif(fc, x, tau=5.0, math="exact"):
    """Unroll a LIF neuron; `math` picks the decay: "exact" exp(-1/tau) or "euler" 1 - 1/tau."""
    if math == "exact":
        decay = float(torch.exp(torch.tensor(-1.0 / tau)))
    else:
        decay = 1.0 - 1.0 / tau
    mem = torch.zeros(x.shape[1], fc.out_features, dtype=x.dtype)
    spikes = []
    for t in range(x.shape[0]):
        mem = decay * mem + fc(x[t])
        spk = ATan.apply(mem - 1.0, 2.0)
        mem = mem - spk
        spikes.append(spk)
    return torch.stack(spikes)


class Net(nn.Module):
    def __init__(self, n_in, n_out, integration="exact"):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.integration = integration

    def forward(self, x):
        return run_lif(self.fc, x, math=self.integration)
