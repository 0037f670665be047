"""Sweep the SuperSpike scale through the config helper (setattr over **kwargs)."""

import torch
from scenario_record import Recorder

from config import configure_surrogate
from model import RecurrentLIF


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = RecurrentLIF(8, 6)
    with torch.no_grad():
        net.w_in.weight.mul_(3.0)
    x = torch.randn(5, 4, 8)
    for scale in (100.0, 10.0, 1.0):
        configure_surrogate(scale=scale)
        rec.training_step(f"scale={scale}", net, x)
    rec.training_step("scale=1.0 float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
