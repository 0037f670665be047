"""Control: the surrogate is refused; the program must stay as it is."""

import torch
from scenario_record import Recorder

from model import Net


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = Net(8, 6)
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    for step in range(2):
        rec.training_step(f"{step} float32", net, torch.randn(5, 4, 8))
    net = net.double()
    rec.training_step("2 float64", net, torch.randn(5, 4, 8, dtype=torch.float64))
    rec.dump()


if __name__ == "__main__":
    main()
