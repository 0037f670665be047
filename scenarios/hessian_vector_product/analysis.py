"""Curvature of the loss along random directions: Hessian-vector products with respect to the
input and to the first layer's weight (loss-landscape analysis), between which the neuron's
surrogate width changes."""

import torch
from scenario_record import Recorder
from torch.autograd.functional import hvp
from torch.func import functional_call

from network import Net


def measure(rec, name, net, x, target, generator):
    def loss_of_input(inp):
        return torch.nn.functional.cross_entropy(net(inp), target)

    def loss_of_weight(weight):
        params = {**dict(net.named_parameters()), "fc1.weight": weight}
        return torch.nn.functional.cross_entropy(functional_call(net, params, (x,)), target)

    direction = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    loss, hv_input = hvp(loss_of_input, x, direction)
    weight = net.fc1.weight.detach()
    w_direction = torch.randn(weight.shape, generator=generator, dtype=weight.dtype)
    _, hv_weight = hvp(loss_of_weight, weight, w_direction)
    rec.record(name, {"loss": loss}, {"Hv (input)": hv_input, "Hv (fc1.weight)": hv_weight})


def main():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    rec = Recorder()
    net = Net()
    with torch.no_grad():
        net.fc1.weight.mul_(4.0)
    x = torch.randn(6, 5, 6)
    target = torch.tensor([0, 1, 2, 1, 0])
    measure(rec, "alpha=2.0", net, x, target, generator)
    net.lif1.alpha = 5.0
    measure(rec, "alpha=5.0", net, x, target, generator)
    measure(rec, "alpha=5.0 float64", net.double(), x.double(), target, generator)
    rec.dump()


if __name__ == "__main__":
    main()
