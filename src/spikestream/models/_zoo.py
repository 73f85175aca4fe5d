"""The model zoo: one registry of named models (architecture, shipped weights, how to retrain them)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from spikestream.models._weights import WEIGHTS_DIR, WeightsError, load_weights


@dataclass(frozen=True)
class ZooModel:
    name: str
    description: str
    task: str  # "classification", "segmentation" or "detection"
    input_shape: tuple[int, ...]  # per sample, (C, H, W)
    architecture: Callable[[], nn.Module]  # a fresh, untrained module
    weights: str | None = None  # file name in models/weights/ (None: seeded initial weights, untrained)
    train: Callable[..., dict] | None = None  # train(out_path, seed=0, **options) -> metrics; reproduces weights
    seed: int = 0  # seed of the initial weights
    # frames -> model inputs, applied by ``jobs.run_video`` and the demo before the Stream (None: frames as
    # read). It receives the video's uint8 gray (H, W) frames at the model's input size, one by one, and may
    # keep state across them (e.g. a running background), so it maps an iterator to an iterator.
    preprocess: Callable[[Iterable[np.ndarray]], Iterator[np.ndarray]] | None = None

    @property
    def trained(self) -> bool:
        return self.weights is not None

    def build(self) -> nn.Module:
        """The module in eval mode with its shipped weights (or seeded initial weights if untrained)."""
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)
        try:
            module = self.architecture()
        finally:
            torch.random.set_rng_state(generator_state)
        if self.weights is not None:
            path = WEIGHTS_DIR / self.weights
            if not path.exists():
                raise WeightsError(f"weights of {self.name!r} are missing ({path}); "
                                   f"recreate them with: spikestream train {self.name}")
            load_weights(module, path)
        return module.eval()


MODELS: dict[str, ZooModel] = {}


def register_model(model: ZooModel) -> ZooModel:
    if model.name in MODELS:
        raise ValueError(f"model {model.name!r} is registered twice")
    MODELS[model.name] = model
    return model


def get_model(name: str) -> ZooModel:
    if name not in MODELS:
        raise WeightsError(f"unknown model {name!r}; the zoo has: {', '.join(sorted(MODELS))}")
    return MODELS[name]


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


register_model(ZooModel(
    name="tiny-seg",
    description="untrained 4-layer encoder–decoder (seeded weights) for plumbing tests",
    task="segmentation",
    input_shape=(1, 64, 64),
    architecture=TinySegmenter,
))
