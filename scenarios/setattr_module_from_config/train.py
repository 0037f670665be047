"""Hyperparameters come from a config dict applied to the module."""

import torch
from scenario_record import Recorder

from config import load_config
from model import LIF


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = LIF(8, 6)
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    x = torch.randn(5, 4, 8)
    for value in (2.0, 0.5, 8.0):
        load_config({"alpha": value})
        rec.training_step(f"value={value}", net, x)
    rec.training_step("float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
