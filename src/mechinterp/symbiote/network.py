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

Two kinds of symbiote (``SymbioteConfig.kind``):

* ``fixed`` (:class:`Symbiote`): B reads only the class, so its edit is one table of gates per
  class, the same for every image;
* ``conditional`` (:class:`ConditionalSymbiote`): B also reads A's activations at an early
  layer (by default the first convolution, average-pooled to a ``read_pool`` x ``read_pool``
  grid and standardised per image) from a clean first pass, and returns
  gates for each image. The read adds a linear map from those activations to B's hidden
  layer, so B imports that many parameters more (:attr:`Symbiote.n_parameters`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformer_lens.hook_points import HookPoint

from mechinterp.errors import ConfigError, ShapeError
from mechinterp.models import HookedClassifier, image_rows

__all__ = ["SymbioteConfig", "Symbiote", "ConditionalSymbiote", "build_symbiote", "KINDS",
           "NONE"]

NONE = -1
"""Pass this as the target class to ask B for no inhibition."""
KINDS = ("fixed", "conditional")
"""What B reads: the class only, or the class and A's early activations."""


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
        preservation: weight of the preservation term (cross-entropy towards A's own
            prediction on the images that keep their class) against the inhibition hinge;
            chosen on a validation fifth of the training split by the rule in
            ``tools/choose_symbiote_preservation.py`` (quick profile: 1 and 3 let one digit's
            collateral drop reach 1.5 points, 10 keeps every digit within 0.55).
        change_threshold: a unit counts as changed when its gate moves from 1, or its shift from
            0, by more than this.
        kind: ``"fixed"`` (B reads the class) or ``"conditional"`` (B also reads A's
            activations at ``read_hook`` and gates each image differently).
        read_hook: the hidden hook a conditional B reads (default: A's first hidden hook).
        read_pool: a convolution map is average-pooled to this side before B reads it.
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
    kind: str = "fixed"
    read_hook: str | None = None
    read_pool: int = 7
    preservation: float = 10.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"SymbioteConfig.kind must be one of {KINDS}, got {self.kind!r}")
        if self.mode not in ("gate", "film"):
            raise ConfigError(f"SymbioteConfig.mode must be 'gate' or 'film', got {self.mode!r}")
        for name in ("hidden", "steps", "batch_size", "read_pool"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"SymbioteConfig.{name} must be a positive integer, got {value!r}")
        for name in ("lr", "margin", "change_threshold"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"SymbioteConfig.{name} must be positive, got {getattr(self, name)!r}")
        for name in ("sparsity", "preservation"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"SymbioteConfig.{name} must be >= 0, got "
                                  f"{getattr(self, name)!r}")
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

    @property
    def n_parameters(self) -> int:
        """B's trainable parameters (what it adds to A)."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, targets: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Modulations for each hidden hook: ``{hook: (gate, shift)}``, each ``(batch, n_units)``.

        Rows whose target is ``NONE`` are exactly the identity.
        """
        return self._split(self.net(self.one_hot(targets)), targets)

    def modulations(self, primary: HookedClassifier, targets: torch.Tensor,
                    images: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """B's modulations for one target per image. A fixed B ignores the images; see
        :class:`ConditionalSymbiote` for one that reads them."""
        return self(targets)

    def _split(self, raw: torch.Tensor, targets: torch.Tensor
               ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
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

    def hooks(self, targets: torch.Tensor, images: torch.Tensor | None = None,
              primary: HookedClassifier | None = None) -> list[tuple[str, object]]:
        """Forward hooks that apply B's modulations for ``targets`` (one per image) to A (a
        conditional B also needs the ``images`` and the ``primary`` it reads)."""
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


class ConditionalSymbiote(Symbiote):
    """A symbiote that reads A as well as the class, and gates each image differently.

    A clean first pass of A gives the activations at ``config.read_hook``; a convolution map
    is average-pooled to ``read_pool`` x ``read_pool``, the result is standardised per image
    (zero mean, unit variance over its entries), and a linear map adds it to B's hidden layer (next to the class's
    one-hot). The output layer is the fixed symbiote's, so a conditional B starts, like a
    fixed one, as the identity, and ``NONE`` rows stay exactly the identity.

    Args:
        primary: the frozen primary (B reads its hook names, sizes and the read layer's shape).
        n_classes, config, scales: as for :class:`Symbiote`.
    """

    def __init__(self, primary: HookedClassifier, n_classes: int, config: SymbioteConfig,
                 scales: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__(primary, n_classes, config, scales)
        self.read_hook = config.read_hook or primary.hidden_hooks[0]
        if self.read_hook not in self.layer_sizes:
            raise ConfigError(f"SymbioteConfig.read_hook {self.read_hook!r} is not a hidden hook "
                              f"of the primary; choose one of {list(self.layer_sizes)}")
        with torch.no_grad():
            probe = self._read_raw(primary, torch.zeros(1, 1, 28, 28,
                                                        device=self.scale(self.read_hook).device))
        self.reader = nn.Linear(probe.shape[1], config.hidden)

    def _read_raw(self, primary: HookedClassifier, images: torch.Tensor) -> torch.Tensor:
        _, cache = primary.run_with_cache(images, names_filter=self.read_hook)
        act = cache[self.read_hook]
        if act.dim() == 4:
            act = F.adaptive_avg_pool2d(act, self.config.read_pool)
        act = act.flatten(1)
        # standardised per image, so the read does not depend on the layer's scale or sign
        return F.layer_norm(act, act.shape[1:])

    def read(self, primary: HookedClassifier, images: torch.Tensor) -> torch.Tensor:
        """What B reads of A for each image: ``(batch, n_read)`` (no gradient flows into A)."""
        with torch.no_grad():
            return self._read_raw(primary, images)

    def forward(self, targets: torch.Tensor, features: torch.Tensor | None = None
                ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Modulations for each image from its class to inhibit and what B read of A
        (:meth:`read`)."""
        if features is None:
            raise ConfigError("a conditional symbiote gates each image from A's activations: "
                              "call modulations(primary, targets, images) or hooks(targets, "
                              "images, primary)")
        if features.shape[0] != targets.shape[0]:
            raise ShapeError(f"{targets.shape[0]} targets for {features.shape[0]} images; pass "
                             "one target per image")
        hidden = F.relu(self.net[0](self.one_hot(targets)) + self.reader(features))
        return self._split(self.net[2](hidden), targets)

    def modulations(self, primary: HookedClassifier, targets: torch.Tensor,
                    images: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return self(targets, self.read(primary, images))

    def hooks(self, targets: torch.Tensor, images: torch.Tensor | None = None,
              primary: HookedClassifier | None = None) -> list[tuple[str, object]]:
        if images is None or primary is None:
            raise ConfigError("a conditional symbiote needs the images and the primary it reads: "
                              "hooks(targets, images, primary)")
        return self.hooks_from(self.modulations(primary, targets, images))

    @torch.no_grad()
    def table(self, classes: list[int]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        raise ConfigError("a conditional symbiote has no per-class table: its gates depend on "
                          "the image (use modulations(primary, targets, images))")


def build_symbiote(primary: HookedClassifier, n_classes: int, config: SymbioteConfig,
                   scales: dict[str, torch.Tensor] | None = None) -> Symbiote:
    """The symbiote of ``config.kind`` for ``primary``."""
    cls = ConditionalSymbiote if config.kind == "conditional" else Symbiote
    return cls(primary, n_classes, config, scales)


def _gate_offset(max_gate: float) -> float:
    # sigmoid(offset) * max_gate == 1 so that a zero pre-activation means "unchanged"
    p = 1.0 / max_gate
    return float(torch.logit(torch.tensor(p)))


def _buffer_name(hook_name: str) -> str:
    return "scale_" + hook_name.replace(".", "_")


def _modulate(gate: torch.Tensor, shift: torch.Tensor):
    def hook(act: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        g, s = image_rows(gate, act), image_rows(shift, act)
        if act.shape[0] != g.shape[0]:
            raise ShapeError(
                f"{g.shape[0]} inhibition targets for a batch of {act.shape[0]} images at "
                f"{hook.name}; pass one target per image"
            )
        extra = [1] * (act.dim() - 2)
        return torch.addcmul(s.view(*s.shape, *extra), act, g.view(*g.shape, *extra))

    return hook
