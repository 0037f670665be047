import torch
from scenario_record import Recorder

from model import Net
from surrogate import hp


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = Net(8, 6)
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    x = torch.randn(5, 4, 8)
    for alpha, width in ((4.0, 1.0), (1.0, 1.0), (1.0, 0.25)):
        hp.alpha, hp.width = alpha, width
        rec.training_step(f"alpha={alpha} width={width}", net, x)
    rec.training_step("float64", net.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
