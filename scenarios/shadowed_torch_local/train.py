import torch
from scenario_record import Recorder

from model import TraceLIF


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = TraceLIF(8, 6)
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    x = torch.randn(5, 4, 8)
    rec.training_step("decay=0.5", net, x)
    net.trace_decay = 0.9
    rec.training_step("decay=0.9", net, x)
    rec.training_step("decay=0.9 float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
