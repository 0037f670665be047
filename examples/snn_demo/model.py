"""Adaptive LIF recurrent spiking network with a leaky-integrator readout."""

from __future__ import annotations

import math

import torch
from torch import nn

from .surrogates import atan_spike, fast_sigmoid

State = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class ALIFCell(nn.Module):
    """Recurrent adaptive leaky integrate-and-fire layer.

    Hidden state is ``(v, a, z)``: membrane potential, threshold adaptation and the
    spikes emitted on the previous step. The input is concatenated with ``z`` and fed
    through a single bias-free linear map.
    """

    def __init__(
        self,
        n_in: int,
        n_hidden: int,
        tau_mem: float = 20.0,
        tau_adapt: float = 100.0,
        threshold: float = 1.0,
        beta: float = 0.2,
        slope: float = 25.0,
    ) -> None:
        super().__init__()
        self.n_hidden = n_hidden
        self.fc = nn.Linear(n_in + n_hidden, n_hidden, bias=False)
        self.alpha = math.exp(-1.0 / tau_mem)
        self.rho = math.exp(-1.0 / tau_adapt)
        self.threshold = threshold
        self.beta = beta
        self.slope = slope
        with torch.no_grad():
            # Larger-than-default init so the layer fires from the first step.
            nn.init.normal_(self.fc.weight, std=1.0 / math.sqrt(n_in))

    def init_state(self, batch: int, device: torch.device | None = None) -> State:
        zeros = torch.zeros(batch, self.n_hidden, device=device)
        return zeros, zeros.clone(), zeros.clone()

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        v, a, z = state
        current = self.fc(torch.cat([x, z], dim=-1))
        # Soft reset: subtract the threshold in proportion to last step's spikes.
        v = self.alpha * v + current - self.threshold * z
        a = self.rho * a + (1.0 - self.rho) * z
        z = fast_sigmoid(v - self.threshold - self.beta * a, self.slope)
        return z, (v, a, z)


class LeakyReadout(nn.Module):
    """Non-spiking leaky integrator; also reports a surrogate-spiking activity count."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        tau: float = 10.0,
        spike_threshold: float = 0.5,
        atan_alpha: float = 2.0,
    ) -> None:
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.kappa = math.exp(-1.0 / tau)
        self.spike_threshold = spike_threshold
        self.atan_alpha = atan_alpha
        self.spike = atan_spike

    def forward(self, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.kappa * u + (1.0 - self.kappa) * self.fc(x)
        spikes = self.spike(u - self.spike_threshold, self.atan_alpha)
        return u, spikes


class RSNN(nn.Module):
    """ALIF recurrent layer followed by a leaky readout.

    ``forward`` takes ``x`` of shape ``(T, B, n_in)`` and returns logits ``(B, n_out)``
    computed from the time-mean of the readout potentials. The mean readout spike count
    and hidden firing rate of the last call are kept for inspection/regularisation.
    """

    def __init__(self, n_in: int, n_hidden: int, n_out: int) -> None:
        super().__init__()
        self.cell = ALIFCell(n_in, n_hidden)
        self.readout = LeakyReadout(n_hidden, n_out)
        self.n_out = n_out
        self.last_rate: torch.Tensor = torch.zeros(())
        self.last_readout_spikes: torch.Tensor = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, batch, _ = x.shape
        state = self.cell.init_state(batch, x.device)
        u = torch.zeros(batch, self.n_out, device=x.device)
        potentials: list[torch.Tensor] = []
        hidden_spikes: list[torch.Tensor] = []
        readout_spikes: list[torch.Tensor] = []
        for t in range(steps):
            z, state = self.cell(x[t], state)
            u, s = self.readout(z, u)
            potentials.append(u)
            hidden_spikes.append(z)
            readout_spikes.append(s)
        self.last_rate = torch.stack(hidden_spikes).mean()
        self.last_readout_spikes = torch.stack(readout_spikes).sum(0).mean()
        return torch.stack(potentials).mean(0)
