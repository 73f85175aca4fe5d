"""The model zoo: one registry of named models (architecture + how to get its weights)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ZooModel:
    name: str
    description: str
    input_shape: tuple[int, ...]  # per sample, (C, H, W)
    build: Callable[[], nn.Module]  # returns the module in eval mode, weights loaded
    trained: bool  # False: deterministic (seeded) initial weights, for plumbing and demos only


MODELS: dict[str, ZooModel] = {}


def register_model(model: ZooModel) -> ZooModel:
    if model.name in MODELS:
        raise ValueError(f"model {model.name!r} is registered twice")
    MODELS[model.name] = model
    return model


class TinySegmenter(nn.Module):
    """A small encoder–decoder producing one foreground logit per pixel: conv 1→8, pool, conv 8→16,
    upsample, conv 16→8, conv 8→1."""

    def __init__(self):
        super().__init__()
        self.encode1 = nn.Conv2d(1, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.encode2 = nn.Conv2d(8, 16, 3, padding=1)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.decode = nn.Conv2d(16, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x):
        x = self.pool(torch.relu(self.encode1(x)))
        x = torch.relu(self.encode2(x))
        x = torch.relu(self.decode(self.upsample(x)))
        return self.head(x)


def _seeded(factory: Callable[[], nn.Module], seed: int = 0) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            return factory().eval()
        finally:
            torch.random.set_rng_state(generator_state)
    return build


register_model(ZooModel(
    name="tiny-seg",
    description="untrained 4-layer encoder–decoder (seeded weights) for demos and plumbing tests",
    input_shape=(1, 64, 64),
    build=_seeded(TinySegmenter),
    trained=False,
))
