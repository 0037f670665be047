"""Input-gradient penalty (as in robustness training): the loss includes |d loss / d x|^2,
whose gradient needs the derivative of the surrogate gradient (create_graph=True)."""

import torch
from scenario_record import Recorder

from model import SNN


def step(rec, name, net, x, target, penalty):
    net.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    logits = net(x)
    loss = torch.nn.functional.cross_entropy(logits, target)
    (grad_x,) = torch.autograd.grad(loss, x, create_graph=True)
    total = loss + penalty * grad_x.pow(2).sum()
    total.backward()
    rec.record(
        name,
        {"logits": logits, "loss": loss},
        {"dloss/dx": grad_x, **{f"{n}.grad": p.grad for n, p in net.named_parameters()}},
    )


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = SNN(8, 16, 3)
    with torch.no_grad():
        net.fc1.weight.mul_(3.0)
    x = torch.randn(5, 4, 8)
    target = torch.tensor([0, 1, 2, 1])
    for penalty in (1.0, 10.0):
        step(rec, f"penalty={penalty}", net, x, target, penalty)
    step(rec, "penalty=10.0 float64", net.double(), x.double(), target, 10.0)
    rec.dump()


if __name__ == "__main__":
    main()
