"""Layers built with their default spike Function, with another surrogate of the module, and
with a Function of the driver's own (the rewrite must keep calling its apply)."""

import torch
from scenario_record import Recorder

from neurons import LIF, GatedLIF, MultiSpike, StepPWL


class ClippedStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 1.0).type_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.clamp(1.0 - (x - 1.0).abs(), min=0.0)


def main():
    torch.manual_seed(0)
    rec = Recorder()
    x = torch.randn(5, 4, 8)
    layers = {
        "default": LIF(8, 6),
        "multispike": LIF(8, 6, spike_fn=MultiSpike),
        "own": LIF(8, 6, spike_fn=ClippedStep),
        "gated default": GatedLIF(8, 6),
        "gated steppwl": GatedLIF(8, 6, spike=StepPWL),
        "gated own": GatedLIF(8, 6, spike=ClippedStep),
    }
    for name, layer in layers.items():
        with torch.no_grad():
            layer.fc.weight.mul_(3.0)
        rec.training_step(name, layer, x)
        rec.training_step(f"{name} float64", layer.double(), x.double())
    rec.dump()


if __name__ == "__main__":
    main()
