"""The surrogate's width is a command-line style setting assigned into the surrogate module."""

import torch
from scenario_record import Recorder

import surrogate
from model import Layer


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = Layer(8, 6)
    with torch.no_grad():
        net.fc.weight.mul_(2.0)
    x = torch.randn(5, 4, 8)
    for width in (0.5, 2.0, 0.25):
        surrogate.WIDTH = width
        rec.training_step(f"width={width}", net, x)
    rec.training_step("width=0.25 float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
