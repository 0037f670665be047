"""The parsed arguments are changed between steps (a schedule on the threshold and the width)."""

import torch
from scenario_record import Recorder

import surrogate
from model import SCNN


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = SCNN()
    with torch.no_grad():
        net.fc1.weight.mul_(2.0)
    x = torch.randn(5, 4, 8)
    for thresh, lens in ((0.5, 0.5), (0.3, 0.5), (0.3, 1.5)):
        surrogate.args.thresh = thresh
        surrogate.args.lens = lens
        rec.training_step(f"thresh={thresh} lens={lens}", net, x)
    rec.dump()


if __name__ == "__main__":
    main()
