"""Training loops, seeded and CPU-friendly: every loop shows progress through ``spikestream._progress``.

``fit`` is the one supervised loop; task modules supply the model, the tensors and the loss.
Surrogate-gradient BPTT and sigma-delta fine-tuning build on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from spikestream._progress import progress


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5
    batch_size: int = 64
    lr: float = 2e-3  # AdamW learning rate, cosine-annealed to zero over all steps
    weight_decay: float = 1e-4
    seed: int = 0


def batches(inputs: Tensor, targets, batch_size: int, generator: torch.Generator):
    """Shuffled mini-batches; ``targets`` may be a tensor or a tuple of tensors indexed together."""
    order = torch.randperm(inputs.shape[0], generator=generator)
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        yield inputs[index], (tuple(t[index] for t in targets) if isinstance(targets, tuple) else targets[index])


def fit(model: nn.Module, inputs: Tensor, targets, loss_fn: Callable[[nn.Module, Tensor, object], Tensor],
        config: TrainConfig = TrainConfig(), description: str = "train",
        on_epoch: Callable[[int, float], None] | None = None) -> list[float]:
    """Minimise ``loss_fn(model, x, y)`` over shuffled mini-batches; returns the mean loss per epoch."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = -(-inputs.shape[0] // config.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
    history = []
    model.train()
    for epoch in range(config.epochs):
        total, count = 0.0, 0
        for x, y in progress(batches(inputs, targets, config.batch_size, generator), total=steps_per_epoch,
                             description=f"{description} epoch {epoch + 1}/{config.epochs}"):
            loss = loss_fn(model, x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * x.shape[0]
            count += x.shape[0]
        history.append(total / count)
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    model.eval()
    return history
