"""A sweep over the surrogate sharpness: the config object is edited between runs."""

import torch
from scenario_record import Recorder

from config import cfg
from model import Net


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = Net(8)
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    x = torch.randn(5, 4, 8)
    for alpha in (4.0, 1.0, 10.0):
        cfg.alpha = alpha
        rec.training_step(f"cfg.alpha={alpha}", net, x)
    rec.training_step("cfg.alpha=10.0 float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
