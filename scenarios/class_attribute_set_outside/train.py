"""The model sets GaussSpike.sigma = 0.3 when built; training widens it later."""

import torch
from scenario_record import Recorder

from model import Net
from surrogate import GaussSpike


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = Net(8, 6)
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    x = torch.randn(5, 4, 8)
    rec.training_step("sigma=0.3", net, x)
    GaussSpike.sigma = 1.0
    rec.training_step("sigma=1.0", net, x)
    rec.training_step("sigma=1.0 float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
