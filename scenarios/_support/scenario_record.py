"""What a scenario driver records, printed as one JSON line on stdout for tests/test_scenarios.py.

Not part of any scenario project: the harness puts this directory on PYTHONPATH beside the
project's copy, so fgi-rewrite never sees it. Tensors are recorded as their raw bytes (base64),
dtype and shape, so the harness can compare values bit for bit and gradients at a tolerance.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterable

import torch

MARKER = "FGI-SCENARIO-RESULT "


def encode(tensor: torch.Tensor | None) -> dict[str, object] | None:
    if tensor is None:
        return None
    data = tensor.detach().cpu().contiguous()
    return {
        "dtype": str(data.dtype).removeprefix("torch."),
        "shape": list(data.shape),
        "data": base64.b64encode(data.numpy().tobytes()).decode("ascii"),
    }


class Recorder:
    """Per step: forward values (compared bitwise), gradients (compared at a tolerance for their
    dtype) and whether each ``.grad`` is None (compared exactly)."""

    def __init__(self) -> None:
        self.steps: list[dict[str, object]] = []

    def record(
        self,
        step: str,
        values: dict[str, torch.Tensor],
        grads: dict[str, torch.Tensor | None],
    ) -> None:
        self.steps.append(
            {
                "step": step,
                "values": {name: encode(t) for name, t in values.items()},
                "grads": {name: encode(g) for name, g in grads.items()},
            }
        )

    def record_backward(
        self,
        step: str,
        values: dict[str, torch.Tensor],
        leaves: dict[str, torch.Tensor],
        parameters: Iterable[tuple[str, torch.Tensor]] = (),
    ) -> None:
        """Record ``values`` and the ``.grad`` of each leaf and parameter (after a backward)."""
        grads: dict[str, torch.Tensor | None] = {
            f"{name}.grad": leaf.grad for name, leaf in leaves.items()
        }
        grads.update({f"{name}.grad": p.grad for name, p in parameters})
        self.record(step, values, grads)

    def training_step(self, step: str, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """One step the way a training loop takes it: fresh gradients, forward, a loss that
        weighs every output differently, backward; records the output, the loss, ``x.grad`` and
        every parameter's ``.grad``. Parameters are not updated, so an ulp of gradient rounding
        (allowed) never turns into a difference of later forward values (compared bitwise)."""
        model.zero_grad(set_to_none=True)
        x = x.detach().clone().requires_grad_()
        out = model(x)
        weights = torch.linspace(-1.0, 1.0, out.shape[-1], dtype=out.dtype)
        loss = (out * weights).sum()
        loss.backward()
        self.record_backward(step, {"out": out, "loss": loss}, {"x": x}, model.named_parameters())
        return out

    def dump(self) -> None:
        sys.stdout.write(MARKER + json.dumps({"steps": self.steps}) + "\n")
        sys.stdout.flush()
