"""Exact decay first, then Euler decay."""

import torch
from scenario_record import Recorder

from model import Net


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = Net(8, 6)
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    x = torch.randn(5, 4, 8)
    rec.training_step("exact", net, x)
    net.integration = "euler"
    rec.training_step("euler", net, x)
    rec.training_step("euler float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
