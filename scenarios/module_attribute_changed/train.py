"""Anneal net.slope and net.threshold (plain float attributes of the module) between steps."""

import torch
from scenario_record import Recorder

from model import LIF


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = LIF(8, 6)
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    x = torch.randn(5, 4, 8)
    for slope, threshold in ((25.0, 1.0), (2.0, 1.0), (2.0, 0.5)):
        net.slope, net.threshold = slope, threshold
        rec.training_step(f"slope={slope} threshold={threshold}", net, x)
    rec.training_step("float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
