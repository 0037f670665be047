# The rewritten rsnn_model.py as fgi-rewrite emitted it before commit 0e25700 (outer nan_to_num:
# values exact at ±inf/NaN inputs too), kept to time that form: rsnn.py --variant strict-nonfinite=THIS
"""Baseline ALIF recurrent SNN for the benchmarks (the FGI paper's setup, Otte 2024).

This file is the *original*: its spike nonlinearity is a classic custom-backward
``torch.autograd.Function`` (Heaviside forward, SuperSpike / fast-sigmoid surrogate backward) used
through an alias.  ``benchmarks/rsnn.py`` copies it to a temporary directory and runs
``fgi-rewrite`` on the copy to get the FGI variant; nothing here is hand-written FGI.

The call carries ``# fgi: skip`` so that running the tool over this repository leaves the baseline
alone; ``rsnn.py`` removes the marker from its temporary copy before rewriting it.

Keep it TorchScript-friendly (annotated, float attributes) so that the *rewritten* model can be
scripted; whether the original can be is part of what the benchmark reports.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class SuperSpike(torch.autograd.Function):
    """Heaviside step with the SuperSpike (fast-sigmoid) surrogate derivative."""

    @staticmethod
    def forward(ctx: Any, v: torch.Tensor, slope: float = 10.0) -> torch.Tensor:
        ctx.save_for_backward(v)
        ctx.slope = slope
        return (v > 0).float()

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (v,) = ctx.saved_tensors
        return grad_output / (ctx.slope * v.abs() + 1.0) ** 2, None


spike_fn = SuperSpike.apply


class RSNN(nn.Module):
    """ALIF recurrent layer (input and previous spikes -> one bias-free linear map) and a
    leaky-integrator readout; ``forward(x)`` with ``x`` of shape ``(T, B, n_in)`` returns the
    time-mean of the readout potentials, shape ``(B, n_out)``."""

    def __init__(
        self,
        n_in: int,
        n_hidden: int = 128,
        n_out: int = 10,
        tau_mem: float = 20.0,
        tau_adapt: float = 200.0,
        tau_out: float = 20.0,
        threshold: float = 1.0,
        beta: float = 1.8,
        slope: float = 10.0,
    ) -> None:
        super().__init__()
        self.n_hidden = n_hidden
        self.n_out = n_out
        self.fc = nn.Linear(n_in + n_hidden, n_hidden, bias=False)
        self.readout = nn.Linear(n_hidden, n_out, bias=False)
        self.alpha = math.exp(-1.0 / tau_mem)
        self.rho = math.exp(-1.0 / tau_adapt)
        self.kappa = math.exp(-1.0 / tau_out)
        self.threshold = threshold
        self.beta = beta
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[0]
        batch = x.shape[1]
        v = torch.zeros(batch, self.n_hidden, dtype=x.dtype, device=x.device)
        a = torch.zeros_like(v)
        z = torch.zeros_like(v)
        u = torch.zeros(batch, self.n_out, dtype=x.dtype, device=x.device)
        acc = torch.zeros_like(u)
        for t in range(steps):
            current = self.fc(torch.cat([x[t], z], dim=-1))
            # Membrane with soft reset by last step's spikes; adaptive threshold.
            v = self.alpha * v + (1.0 - self.alpha) * current - self.threshold * z
            a = self.rho * a + (1.0 - self.rho) * z
            _fgi_v = v - self.threshold - self.beta * a
            _fgi_slope = self.slope
            z = (_fgi_v > 0).float()
            if torch.is_grad_enabled() and _fgi_v.requires_grad:
                _fgi_v_d = _fgi_v.detach()
                z = z.detach() + torch.nan_to_num((_fgi_v - _fgi_v_d) * torch.nan_to_num(1.0 / (_fgi_slope * _fgi_v_d.abs() + 1.0) ** 2, 0.0, 0.0, 0.0)).to(z.dtype)
            u = self.kappa * u + (1.0 - self.kappa) * self.readout(z)
            acc = acc + u
        return acc / steps
