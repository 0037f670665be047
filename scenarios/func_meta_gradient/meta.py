"""One MAML outer step per task: adapt the parameters with an inner gradient step on the support
set, then take the gradient of the query loss with respect to the initial parameters (through
the inner gradient: second derivatives). The inner learning rate and the spike slope change
between steps."""

import torch
from scenario_record import Recorder
from torch.func import functional_call, grad, grad_and_value

from spiking import SpikingMLP


def outer_step(rec, name, net, task, inner_lr):
    params = {k: p.detach() for k, p in net.named_parameters()}
    xs, ys, xq, yq = task

    def loss_fn(p, x, y):
        return torch.nn.functional.cross_entropy(functional_call(net, p, (x,)), y)

    def adapted_loss(p):
        inner = grad(loss_fn)(p, xs, ys)
        return loss_fn({k: p[k] - inner_lr * inner[k] for k in p}, xq, yq)

    meta_grads, meta_loss = grad_and_value(adapted_loss)(params)
    rec.record(name, {"meta loss": meta_loss}, {f"d/d {k}": g for k, g in meta_grads.items()})


def main():
    torch.manual_seed(0)
    rec = Recorder()
    net = SpikingMLP()
    with torch.no_grad():
        net.fc1.weight.mul_(3.0)
    task = (torch.randn(8, 5), torch.randint(0, 2, (8,)), torch.randn(8, 5), torch.randint(0, 2, (8,)))
    outer_step(rec, "inner_lr=0.5", net, task, 0.5)
    net.slope = 8.0
    outer_step(rec, "inner_lr=1.0 slope=8", net, task, 1.0)
    task64 = tuple(t.double() if t.is_floating_point() else t for t in task)
    outer_step(rec, "float64", net.double(), task64, 1.0)
    rec.dump()


if __name__ == "__main__":
    main()
