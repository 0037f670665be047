"""Each network gets its own surrogate slope from the factory."""

import torch
from scenario_record import Recorder

from model import LIF


def main():
    torch.manual_seed(0)
    rec = Recorder()
    x = torch.randn(5, 4, 8)
    for value in (100.0, 10.0, 1.0):
        torch.manual_seed(1)
        net = LIF(8, 6, value)
        with torch.no_grad():
            net.fc.weight.mul_(3.0)
        rec.training_step(f"scale={value}", net, x)
    rec.training_step("float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
