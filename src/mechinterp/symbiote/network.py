"""The symbiote B: a small MLP that modulates the hidden units of a frozen primary A.

B receives which class to inhibit as a one-hot vector of length ``n_classes + 1``; the last
position means "inhibit nothing". It returns, for every hidden unit of A (each convolution
channel and each hidden neuron), a multiplicative gate and, in ``film`` mode, an additive
shift, in the spirit of FiLM conditioning (Perez et al., 2018). The modulations are applied
through A's hook points after each ReLU:

    act'[u] = gate[u] * act[u] + shift[u] * scale[u]

where ``scale[u]`` is the unit's mean activation on the training images, so shifts are in
units of a typical activation. B never sees or touches A's logits or final layer.

The "none" input is the identity by construction: its gates are exactly 1 and its shifts 0,
whatever B's weights are. Gates lie in ``(0, max_gate)`` and start at 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformer_lens.hook_points import HookPoint

from mechinterp.errors import ConfigError, ShapeError
from mechinterp.models import HookedClassifier

__all__ = ["SymbioteConfig", "Symbiote", "NONE"]

NONE = -1
"""Pass this as the target class to ask B for no inhibition."""


@dataclass(frozen=True)
class SymbioteConfig:
    """Settings of the symbiote and its training. Validated at construction.

    Attributes:
        mode: ``"gate"`` (multiplicative only; folds exactly into A's weights) or ``"film"``
            (gates and shifts).
        hidden: width of B's hidden layer.
        max_gate: upper bound of a gate (gates lie in ``(0, max_gate)``, 1 is "unchanged").
        steps: optimiser steps.
        batch_size: images per step (each paired with a random class to inhibit).
        lr: Adam learning rate.
        sparsity: weight of the L1 penalty on how far modulations move from the identity.
        margin: logit margin by which the inhibited class must lose.
        change_threshold: a unit counts as changed when its gate moves from 1, or its shift from
            0, by more than this.
    """

    mode: str = "gate"
    hidden: int = 64
    max_gate: float = 2.0
    steps: int = 1500
    batch_size: int = 128
    lr: float = 3e-3
    sparsity: float = 1e-2
    margin: float = 2.0
    change_threshold: float = 0.1

    def __post_init__(self) -> None:
        if self.mode not in ("gate", "film"):
            raise ConfigError(f"SymbioteConfig.mode must be 'gate' or 'film', got {self.mode!r}")
        for name in ("hidden", "steps", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"SymbioteConfig.{name} must be a positive integer, got {value!r}")
        for name in ("lr", "margin", "change_threshold"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"SymbioteConfig.{name} must be positive, got {getattr(self, name)!r}")
        if self.sparsity < 0:
            raise ConfigError(f"SymbioteConfig.sparsity must be >= 0, got {self.sparsity!r}")
        if not self.max_gate > 1:
            raise ConfigError(f"SymbioteConfig.max_gate must exceed 1, got {self.max_gate!r}")

    def as_dict(self) -> dict:
        """Plain dict, for cache keys and records."""
        return asdict(self)


class Symbiote(nn.Module):
    """Maps a class to inhibit onto gates (and shifts) for every hidden unit of a primary.

    Args:
        primary: the frozen primary network; B reads its hidden hook names and sizes.
        n_classes: number of classes A can output (B's one-hot has one more entry, "none").
        config: the symbiote settings.
        scales: ``{hook_name: (n_units,)}`` typical activation of each unit (for shifts).
    """

    def __init__(
        self,
        primary: HookedClassifier,
        n_classes: int,
        config: SymbioteConfig,
        scales: dict[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.n_classes = n_classes
        self.layer_sizes = dict(primary.unit_counts())
        self.n_units = sum(self.layer_sizes.values())
        n_out = self.n_units * (2 if config.mode == "film" else 1)
        self.net = nn.Sequential(nn.Linear(n_classes + 1, config.hidden), nn.ReLU(),
                                 nn.Linear(config.hidden, n_out))
        nn.init.zeros_(self.net[2].weight)  # start as the identity: gates 1, shifts 0
        nn.init.zeros_(self.net[2].bias)
        for name, size in self.layer_sizes.items():
            scale = torch.ones(size) if scales is None else scales[name].detach().float()
            if scale.shape != (size,):
                raise ShapeError(f"scale for {name} must have shape ({size},), got {tuple(scale.shape)}")
            self.register_buffer(_buffer_name(name), scale.clamp_min(1e-6))

    def one_hot(self, targets: torch.Tensor) -> torch.Tensor:
        """``(batch,)`` class indices (``NONE`` for no inhibition) -> ``(batch, n_classes+1)``."""
        targets = targets.long()
        bad = (targets >= self.n_classes) | (targets < NONE)
        if bad.any():
            raise ConfigError(
                f"class to inhibit must be in 0..{self.n_classes - 1} or NONE (-1), got "
                f"{targets[bad][:5].tolist()}"
            )
        index = torch.where(targets == NONE, torch.full_like(targets, self.n_classes), targets)
        return F.one_hot(index, self.n_classes + 1).float()

    def forward(self, targets: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Modulations for each hidden hook: ``{hook: (gate, shift)}``, each ``(batch, n_units)``.

        Rows whose target is ``NONE`` are exactly the identity.
        """
        raw = self.net(self.one_hot(targets))
        active = (targets != NONE).float().unsqueeze(1)
        n = self.n_units
        gates = 1.0 + active * (self.config.max_gate * torch.sigmoid(raw[:, :n] + _gate_offset(
            self.config.max_gate)) - 1.0)
        if self.config.mode == "film":
            shifts = active * raw[:, n:]
        else:
            shifts = torch.zeros_like(gates)
        out, start = {}, 0
        for name, size in self.layer_sizes.items():
            out[name] = (gates[:, start : start + size], shifts[:, start : start + size])
            start += size
        return out

    def scale(self, hook_name: str) -> torch.Tensor:
        """Typical activation of each unit at ``hook_name``: ``(n_units,)``."""
        return getattr(self, _buffer_name(hook_name))

    def hooks(self, targets: torch.Tensor) -> list[tuple[str, object]]:
        """Forward hooks that apply B's modulations for ``targets`` (one per image) to A."""
        return self.hooks_from(self(targets))

    def hooks_from(
        self, modulations: dict[str, tuple[torch.Tensor, torch.Tensor]]
    ) -> list[tuple[str, object]]:
        """Forward hooks applying already computed modulations (see :meth:`forward`)."""
        return [(name, _modulate(gate, shift * self.scale(name)))
                for name, (gate, shift) in modulations.items()]

    @torch.no_grad()
    def table(self, classes: list[int]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Gates and shifts for each class in ``classes``: ``{hook: ((n, units), (n, units))}``."""
        return self(torch.tensor(classes, device=self.scale(next(iter(self.layer_sizes))).device))


def _gate_offset(max_gate: float) -> float:
    # sigmoid(offset) * max_gate == 1 so that a zero pre-activation means "unchanged"
    p = 1.0 / max_gate
    return float(torch.logit(torch.tensor(p)))


def _buffer_name(hook_name: str) -> str:
    return "scale_" + hook_name.replace(".", "_")


def _modulate(gate: torch.Tensor, shift: torch.Tensor):
    def hook(act: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        if act.shape[0] != gate.shape[0]:
            raise ShapeError(
                f"{gate.shape[0]} inhibition targets for a batch of {act.shape[0]} images at "
                f"{hook.name}; pass one target per image"
            )
        extra = [1] * (act.dim() - 2)
        return act * gate.view(*gate.shape, *extra) + shift.view(*shift.shape, *extra)

    return hook
