"""Training loops, seeded and CPU-friendly: every loop shows progress through ``spikestream._progress``.

``fit`` is the one supervised loop; task modules supply the model, the tensors and the loss.
Surrogate-gradient BPTT and sigma-delta fine-tuning build on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from spikestream import neurons
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


# --- sigma-delta fine-tuning ---------------------------------------------------------------------


@dataclass(frozen=True)
class SigmaDeltaConfig:
    """The sigma-delta operating point a network is fine-tuned for, and its sparsity penalty."""

    threshold: float = 0.05  # θ of the encoders on the inputs of the hidden synaptic layers
    input_threshold: float | None = None  # θ of the encoder on the network input (None: threshold)
    sparsity_weight: float = 1.0  # λ: the penalty is λ·max(0, event rate − target_rate)
    target_rate: float = 0.05  # cost-weighted mean event magnitude, in units of θ, that goes unpenalised
    ann_weight: float = 0.5  # weight of the plain ANN's loss on each run's last frame (keeps the pair close)


def synaptic_fan_out(module: nn.Module) -> float:
    """Synapses driven by one input element (away from borders), as counted in docs/semantics.md."""
    if isinstance(module, nn.Conv2d):
        kernel, stride = module.kernel_size, module.stride
        return module.out_channels / module.groups * kernel[0] * kernel[1] / (stride[0] * stride[1])
    if isinstance(module, nn.ConvTranspose2d):
        kernel = module.kernel_size  # each input element scatters onto k_h × k_w outputs per channel
        return module.out_channels / module.groups * kernel[0] * kernel[1]
    return float(module.out_features)


class SigmaDeltaSimulation:
    """Runs an ``nn.Module`` as its sigma-delta network, differentiably, one frame per ``step``.

    Each synaptic layer (Conv2d, ConvTranspose2d, Linear) receives, instead of its input a[t], the
    receiver's reconstruction â[t] of what ``passes.to_sigma_delta`` would send it:
    Δ = a[t] − â[t−1]; y = Δ·[|Δ| ≥ θ]; â[t] = â[t−1] + y. The forward pass uses â exactly; the
    backward pass treats â as a (straight-through estimator), so the ANN's weights learn to tolerate
    the reconstruction error. ``step`` also returns the *event rate*: Σ_layers fan-out · Σ|y|/θ over
    Σ_layers fan-out · (input elements), a differentiable stand-in for synops / dense MACs (each
    event has |y| ≥ θ, so it bounds the cost-weighted event count from above).
    """

    def __init__(self, model: nn.Module, threshold: float, input_threshold: float | None = None):
        self.model = model
        self.threshold = float(threshold)
        self.input_threshold = float(threshold if input_threshold is None else input_threshold)
        self.layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
        self._reconstructions: dict[nn.Module, Tensor] = {}
        self._costs: list[Tensor] = []
        self._dense: list[float] = []
        self._input: Tensor | None = None
        self._handles = []
        self._bypass = False

    def __enter__(self) -> SigmaDeltaSimulation:
        self._handles = [layer.register_forward_pre_hook(self._encode) for layer in self.layers]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.reset()

    def reset(self) -> None:
        """Forget every reconstruction: the next frame is sent whole."""
        self._reconstructions.clear()

    def _encode(self, layer: nn.Module, args: tuple) -> tuple | None:
        if self._bypass:
            return None
        a = args[0]
        theta = self.input_threshold if a is self._input else self.threshold
        previous = self._reconstructions.get(layer)
        previous = torch.zeros_like(a) if previous is None else previous
        delta = a - previous  # what the sender would have to send to be exact
        sent = delta * (delta.detach().abs() >= theta)  # y: graded events, gradient flows where sent
        reconstruction = (previous + sent).detach()
        self._reconstructions[layer] = reconstruction
        fan_out = synaptic_fan_out(layer)
        self._costs.append(fan_out * sent.abs().sum() / theta / a.shape[0])  # per sample
        self._dense.append(fan_out * a[0].numel())
        return (a + (reconstruction - a).detach(),)  # value â, gradient as if a

    def step(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """One frame (B, *input_shape) -> (output, event rate of this frame)."""
        self._input, self._costs, self._dense = x, [], []
        output = self.model(x)
        rate = torch.stack(self._costs).sum() / sum(self._dense)
        self._input = None
        return output, rate

    def ann(self, x: Tensor) -> Tensor:
        """The plain ANN on x: no sigma-delta encoding, no state touched."""
        self._bypass = True
        try:
            return self.model(x)
        finally:
            self._bypass = False


def fit_sigma_delta(model: nn.Module, sequences: Tensor, targets,
                    frame_loss: Callable[[Tensor, object], Tensor], sigma_delta: SigmaDeltaConfig = SigmaDeltaConfig(),
                    config: TrainConfig = TrainConfig(epochs=2, lr=5e-4), description: str = "sigma-delta fine-tune"
                    ) -> list[dict[str, float]]:
    """Fine-tune an ANN so that its sigma-delta version keeps its accuracy at few events.

    ``sequences`` (N, T, *input_shape) are runs of consecutive frames, ``targets`` a tensor or a tuple
    of tensors (N, T, ...). Each sequence is streamed frame by frame through ``SigmaDeltaSimulation``
    (state reset at its start); the loss is the mean over frames of ``frame_loss(output_t, target_t)``
    plus λ·max(0, r − target_rate), r being the mean event rate of frames 1..T−1 (frame 0 is sent
    whole whatever the weights), plus ``ann_weight`` times the plain ANN's loss on frame T−1, so that
    the ANN and its sigma-delta version stay close. Batch-norm statistics stay frozen. Returns per
    epoch the mean task loss (sigma-delta), event rate and ANN loss.
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = -(-sequences.shape[0] // config.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
    frames = sequences.shape[1]
    if frames < 2:
        raise ValueError(f"sigma-delta fine-tuning needs sequences of at least 2 frames, got {frames}")
    history = []
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()  # frozen statistics: the converted graph folds them as they are
    with SigmaDeltaSimulation(model, sigma_delta.threshold, sigma_delta.input_threshold) as simulation:
        for epoch in range(config.epochs):
            task_total, rate_total, ann_total, count = 0.0, 0.0, 0.0, 0
            for x, y in progress(batches(sequences, targets, config.batch_size, generator), total=steps_per_epoch,
                                 description=f"{description} epoch {epoch + 1}/{config.epochs}"):
                simulation.reset()
                task, rates = 0.0, []
                for t in range(frames):
                    target_t = tuple(part[:, t] for part in y) if isinstance(y, tuple) else y[:, t]
                    output, rate = simulation.step(x[:, t])
                    task = task + frame_loss(output, target_t) / frames
                    if t > 0:
                        rates.append(rate)
                rate = torch.stack(rates).mean()
                ann = frame_loss(simulation.ann(x[:, -1]), target_t) if sigma_delta.ann_weight else torch.zeros(())
                loss = (task + sigma_delta.sparsity_weight * torch.relu(rate - sigma_delta.target_rate)
                        + sigma_delta.ann_weight * ann)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                task_total += task.item() * x.shape[0]
                rate_total += rate.item() * x.shape[0]
                ann_total += ann.item() * x.shape[0]
                count += x.shape[0]
            history.append({"task_loss": task_total / count, "event_rate": rate_total / count,
                            "ann_loss": ann_total / count})
    model.eval()
    return history


# --- surrogate-gradient BPTT for IF networks ----------------------------------------------------------


def arctan_surrogate(overshoot: Tensor, alpha: float) -> Tensor:
    """∂s/∂v of a spike s = [v ≥ θ] under the arctan surrogate (Fang et al. 2021): the derivative of
    arctan(π/2·α·(v − θ))/π + ½, i.e. α / (2·(1 + (π/2·α·(v − θ))²)); ``overshoot`` = v − θ."""
    return (alpha / 2) / (1 + (torch.pi / 2 * alpha * overshoot) ** 2)


class _IFScan(torch.autograd.Function):
    """Forward: the engine's own ``neurons.if_step`` over time, so a trained network runs bit for bit
    the same on IF nodes. Backward: BPTT with the arctan surrogate and a detached reset, for which
    v_t = Σ_{k≤t} I_k − θ·Σ_{k<t} s_k gives ∂L/∂I_k = Σ_{t≥k} ∂L/∂s_t · σ'(v_t − θ): a reversed cumsum."""

    @staticmethod
    def forward(ctx, currents: Tensor, threshold: float, alpha: float) -> Tensor:
        like = currents[0]
        params = neurons.IFParams(torch.tensor(threshold, dtype=like.dtype), torch.tensor(1.0, dtype=like.dtype),
                                  torch.tensor(0.0, dtype=like.dtype), subtract=True)
        slopes = []

        def step(x: Tensor, state: neurons.MembraneState):
            s, state = neurons.if_step(x, state, params)
            slopes.append(arctan_surrogate(state.v + (s - 1) * threshold, alpha))  # v before reset − θ
            return s, state

        spikes, _ = neurons.scan(step, currents, neurons.MembraneState(torch.zeros_like(like)))
        ctx.save_for_backward(torch.stack(slopes))
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: Tensor):
        (slopes,) = ctx.saved_tensors
        return (grad_spikes * slopes).flip(0).cumsum(0).flip(0), None, None


def if_scan(currents: Tensor, threshold: float = 1.0, alpha: float = 2.0) -> Tensor:
    """IF neurons with reset by subtraction (θ, r = 1, v = 0 at the start) over the leading time axis:
    (T, B, ...) input currents → (T, B, ...) spikes, differentiable by surrogate-gradient BPTT."""
    return _IFScan.apply(currents, float(threshold), float(alpha))
