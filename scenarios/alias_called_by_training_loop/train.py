"""A training loop that calls the layers' spike functions itself (a readout, a probe)."""

import torch
from scenario_record import Recorder

from layers import Net, SmoothStep, SpikingLayer

probe = SmoothStep().apply


class Probe(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = SpikingLayer(8, 6)
        self.net = Net()

    def forward(self, x):
        layer, net = self.layer, self.net
        u = layer.fc(x)
        hidden = net.hidden.spike_fct(net.hidden.fc(x) - 0.25)
        return torch.cat([layer.spike_fct(u), layer.readout_spike(u), hidden, probe(u - 1.0)], -1)


def spikes_of(layer, u):
    return layer.spike_fct(u)


class Wrapped(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = SpikingLayer(8, 6)

    def forward(self, x):
        return spikes_of(self.layer, self.layer.fc(x))


def main():
    torch.manual_seed(0)
    rec = Recorder()
    x = torch.randn(4, 8)
    for name, model in {"probe": Probe(), "wrapped": Wrapped()}.items():
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(3.0)
        rec.training_step(name, model, x)
        rec.training_step(f"{name} float64", model.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
