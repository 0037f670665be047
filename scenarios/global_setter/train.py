"""Anneal the surrogate slope between steps with surrogate.set_alpha (a `global` setter)."""

import torch
from scenario_record import Recorder

import surrogate
from model import SpikingLayer


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = SpikingLayer(8, 6)
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    x = torch.randn(5, 4, 8)
    for alpha in (2.0, 5.0, 0.5):
        surrogate.set_alpha(alpha)
        rec.training_step(f"alpha={alpha}", net, x)
    rec.training_step("alpha=0.5 float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
