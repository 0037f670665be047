"""Anneal the slope by writing into the shared HYPER dict."""

import torch
from scenario_record import Recorder

from model import LIF
from surrogate import HYPER


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = LIF(8, 6)
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    x = torch.randn(5, 4, 8)
    for slope in (2.0, 0.5, 8.0):
        HYPER["k"] = slope
        rec.training_step(f"HYPER['k']={slope}", net, x)
    rec.training_step("HYPER['k']=8.0 float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
