import torch
import torch.nn as nn

from surrogate import mem_update


class SCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 6)

    def forward(self, x):
        mem = spike = torch.zeros(x.shape[1], 6)
        out = []
        for t in range(x.shape[0]):
            mem, spike = mem_update(self.fc1, x[t], mem, spike)
            out.append(spike)
        return torch.stack(out)
