"""Two layers, two surrogate shapes passed at the call sites."""

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
    for value in (0, 1):
        x = x * (1 + value)
        rec.training_step(f"value={value}", net, x)
    rec.training_step("float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
