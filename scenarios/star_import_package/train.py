import torch
from scenario_record import Recorder

from model import Neuron


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = Neuron(8, 6)
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    x = torch.randn(4, 8)
    rec.training_step("float32", net, x)
    rec.training_step("float32 again", net, x * 0.5)
    rec.training_step("float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
