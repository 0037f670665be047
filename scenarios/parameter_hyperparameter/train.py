"""alpha is an nn.Parameter in an SGD group with momentum and weight decay: while its .grad is
None the optimizer leaves it alone; a zero .grad would let weight decay shrink it."""

import torch
from scenario_record import Recorder

from model import AdaptiveSurrogateLIF


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = AdaptiveSurrogateLIF(8, 6)
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    # Only alpha is stepped: the layer's weights stay fixed so that every step's forward values
    # can be compared bit for bit.
    optimizer = torch.optim.SGD([net.alpha], lr=0.5, momentum=0.9, weight_decay=0.1)
    x = torch.randn(5, 4, 8)
    for step in range(3):
        rec.training_step(f"{step}", net, x)
        optimizer.step()
        rec.record(f"{step} after optimizer.step", {"alpha": net.alpha}, {})
    net = net.double()
    rec.training_step("float64", net, x.double())
    rec.dump()


if __name__ == "__main__":
    main()
