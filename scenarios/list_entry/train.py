"""Anneal the slope of layer 0 by writing into the shared SLOPES list."""

import torch
from scenario_record import Recorder

from model import LIF
from surrogate import SLOPES


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = LIF(8, 6)
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    x = torch.randn(5, 4, 8)
    for slope in (2.0, 0.5, 8.0):
        SLOPES[0] = slope
        rec.training_step(f"SLOPES[0]={slope}", net, x)
    rec.training_step("SLOPES[0]=8.0 float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
