"""A Function the interpreter cannot read (FGI107) is looked at once more for indexing along an
axis, which no call site can make elementwise: the refusal then names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fgi_rewrite import Options, run
from fgi_rewrite.core import codes

TEMPLATE = """\
import torch


class Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        if x.is_cuda:
            x = x + 0
        {forward}
        ctx.save_for_backward(x)
        return (y > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        {backward}
        return grad


def fire(v):
    return Spike.apply(v)
"""
PLAIN_BACKWARD = "grad = grad_output / (1 + x.abs())"


@pytest.mark.parametrize(
    ("forward", "backward", "code", "words"),
    [
        # a time shift in the forward: its value is not elementwise
        (
            "y = torch.zeros_like(x); y[..., 1:] = x[..., :-1]",
            PLAIN_BACKWARD,
            "FGI112",
            "[..., 1:]",
        ),
        # slicing the gradient
        ("y = x", "grad = grad_output.clone(); grad[:, 0] = 0", "FGI101", "indexed assignment"),
        # a scan over time steps: a kernel, noted, not refused
        (
            "y = torch.zeros_like(x)\n        for t in range(x.shape[-1]):\n"
            "            y[..., t] = x[..., t]",
            PLAIN_BACKWARD,
            "FGI001",
            "multi-step kernel",
        ),
        # adding an axis or copying selects nothing along an axis: the generic reason stays
        ("y = x[..., None][:, None].squeeze()", PLAIN_BACKWARD, "FGI107", "not known statically"),
    ],
)
def test_the_refusal_names_the_axis(
    tmp_path: Path, forward: str, backward: str, code: str, words: str
) -> None:
    path = tmp_path / "spike.py"
    path.write_text(TEMPLATE.format(forward=forward, backward=backward))
    report = run([path], Options(check=True))
    [diagnostic] = [d for d in report.diagnostics if d.code.code.startswith(("FGI0", "FGI1"))]
    assert diagnostic.code is codes.ALL_CODES[code]
    assert words in diagnostic.message
    assert not report.changed
