"""The triangle's width changes on the model between steps."""

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
    for value in (1.0, 0.3, 2.0):
        net.gama = value
        rec.training_step(f"value={value}", net, x)
    rec.training_step("float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
