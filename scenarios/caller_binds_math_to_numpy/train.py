"""Build the layer (decay_factors uses numpy through the name `math`) before and after training
steps, as an evaluation script that rebuilds the model would."""

import torch
from scenario_record import Recorder

from model import HeteroLIF, decay_factors


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = HeteroLIF(8, 6)
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    x = torch.randn(5, 4, 8)
    rec.training_step("0", net, x)
    rec.record("decay factors", {"decay": decay_factors([1.0, 10.0, 100.0])}, {})
    rec.training_step("1 float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
