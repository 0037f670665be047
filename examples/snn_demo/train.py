"""Train the demo RSNN on a synthetic rate-coded classification task.

Run from the repository root with ``python -m examples.snn_demo.train``.
"""

from __future__ import annotations

import torch
from torch import nn

from .model import RSNN

SEED = 0
T, B, N_IN, N_HIDDEN, N_OUT = 20, 32, 10, 64, 2
STEPS = 15
LR = 1e-2
# Small penalty on readout spike counts, so the ATan surrogate's backward is exercised too.
SPIKE_REG = 1e-3


def make_data(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Poisson-like spike trains; class 1 fires the first half of the inputs more often."""
    labels = torch.randint(0, N_OUT, (B,), generator=generator)
    rates = torch.full((B, N_IN), 0.2)
    half = N_IN // 2
    rates[labels == 0, :half] = 0.5
    rates[labels == 1, half:] = 0.5
    x = (torch.rand(T, B, N_IN, generator=generator) < rates).float()
    return x, labels


def main() -> None:
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    x, y = make_data(generator)

    model = RSNN(N_IN, N_HIDDEN, N_OUT)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()

    losses: list[float] = []
    for step in range(STEPS):
        optimizer.zero_grad()
        logits = model(x)
        loss = loss_fn(logits, y) + SPIKE_REG * model.last_readout_spikes
        loss.backward()
        optimizer.step()
        acc = (logits.argmax(-1) == y).float().mean().item()
        losses.append(loss.item())
        print(
            f"step {step:2d}  loss {loss.item():.4f}  acc {acc:.2f}  "
            f"rate {model.last_rate.item():.3f}  readout_spikes "
            f"{model.last_readout_spikes.item():.2f}"
        )

    assert losses[-1] < losses[0], f"loss did not decrease: {losses[0]:.4f} -> {losses[-1]:.4f}"
    print(f"loss decreased: {losses[0]:.4f} -> {losses[-1]:.4f}")


if __name__ == "__main__":
    main()
