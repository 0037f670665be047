"""Small self-contained sources for the CLI and robustness tests (fixtures cover the analysis)."""

from __future__ import annotations

import json

# A surrogate Function and a call site in one module.
SURROGATE = '''\
"""Spiking step with a fast-sigmoid surrogate."""
import torch


class SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (1.0 + 10.0 * x.abs()) ** 2


def fire(v):
    return SpikeFn.apply(v - 1.0)
'''

# The surrogate alone, and a module that imports it and calls it (cross-file).
DEFINITION = SURROGATE[: SURROGATE.index("\n\ndef fire")] + "\n"
USER = """\
from surrogates import SpikeFn


def step(v):
    return SpikeFn.apply(v)
"""

# A surrogate-like Function fgi-rewrite refuses (FGI101: the backward reduces).
REFUSED = """\
import torch


class NormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * x / x.abs().sum()


def fire(v):
    return NormFn.apply(v)
"""

# Ordinary code: nothing to do.
PLAIN = """\
def add(a, b):
    return a + b
"""


def notebook(cells: list[str], indent: int = 1, newline: bool = True) -> bytes:
    """A Jupyter notebook of these code cells, each with an output: as Jupyter (nbformat) writes
    it, or with ``indent=2`` as another writer might (keys unsorted, ASCII escapes)."""
    body = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": i + 1,
                "id": f"cell-{i}",
                "metadata": {},
                "outputs": [{"name": "stdout", "output_type": "stream", "text": [f"{i}\n"]}],
                "source": source.splitlines(True),
            }
            for i, source in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    text = json.dumps(body, indent=indent, sort_keys=indent == 1, ensure_ascii=indent != 1)
    return (text + ("\n" if newline else "")).encode()
