"""Causal checks of a SIIT model on held-out inputs, through hooks on its ``TransformerBridge``.

A model is a benchmark only if its circuit is real. Three checks, each on fresh draws that
training never used (their generator seed lies outside the training seeds' range), each
through TransformerLens hooks (``blocks.{l}.attn.hook_z`` for a head, ``blocks.{l}.hook_mlp_out``
for an MLP) rather than the code that trained the model:

* **interchange-intervention accuracy (IIA)** per circuit node: with that node's component
  given its activation on a paired source input, the model's answer equals the causal model's
  answer under the same interchange. Required: at least :data:`IIA_MIN` on every node.
* **non-circuit retained**: task accuracy with *every* non-circuit component resampled at once
  from unrelated inputs, as a share of clean accuracy. Required: at least
  :data:`RETAINED_MIN`.
* **node effect** per circuit node: the share of task accuracy lost when that component alone
  is resampled from unrelated inputs. Required: at least :data:`NODE_EFFECT_MIN` on every node
  (no circuit node is idle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mechinterp.errors import ConfigError
from mechinterp.siit.tasks import IGNORE, get_siit_task

__all__ = ["Verification", "verify", "patched_logits", "IIA_MIN", "RETAINED_MIN",
           "NODE_EFFECT_MIN"]

IIA_MIN = 0.95
RETAINED_MIN = 0.95
NODE_EFFECT_MIN = 0.2
HELD_OUT_SEED = 7_000_003


@dataclass
class Verification:
    """The three checks of one model.

    Attributes:
        accuracy: clean task accuracy.
        iia: per causal node.
        non_circuit_retained: accuracy with every non-circuit component resampled, over clean.
        node_effects: per causal node, the share of accuracy lost when it alone is resampled.
        n: held-out inputs per check.
    """

    accuracy: float
    iia: dict[str, float]
    non_circuit_retained: float
    node_effects: dict[str, float]
    n: int

    @property
    def min_iia(self) -> float:
        """The weakest node's IIA."""
        return min(self.iia.values())

    @property
    def min_node_effect(self) -> float:
        """The least important circuit node's effect."""
        return min(self.node_effects.values())

    @property
    def passed(self) -> bool:
        """All three checks hold."""
        return (self.min_iia >= IIA_MIN and self.non_circuit_retained >= RETAINED_MIN
                and self.min_node_effect >= NODE_EFFECT_MIN)

    def summary(self) -> dict[str, Any]:
        """``iia`` (the weakest node's), ``non_circuit_retained``, ``min_node_effect`` and the
        detail."""
        return {"iia": self.min_iia, "non_circuit_retained": self.non_circuit_retained,
                "min_node_effect": self.min_node_effect, "passed": self.passed,
                "accuracy": self.accuracy, "iia_per_node": dict(self.iia),
                "node_effects": dict(self.node_effects), "n": self.n}


def _hook(component: str) -> tuple[str, int | None]:
    layer, part = component.split(".")
    if part == "mlp":
        return f"blocks.{layer[1:]}.hook_mlp_out", None
    if not part.startswith("H"):
        raise ConfigError(f"not a component: {component!r}")
    return f"blocks.{layer[1:]}.attn.hook_z", int(part[1:])


@torch.no_grad()
def patched_logits(model, base: torch.Tensor, source: torch.Tensor,
                   rows: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(batch, pos, d_vocab)`` logits on ``base`` with, for each component in
    ``rows``, its activation taken from the run on ``source`` in the rows where the
    ``(batch,)`` bool mask is true."""
    hooks = {}
    for component, mask in rows.items():
        name, head = _hook(component)
        hooks.setdefault(name, []).append((head, mask))
    if not hooks:
        return model(base)
    _, cache = model.run_with_cache(source, names_filter=list(hooks))

    def make(name: str):
        def hook(act, hook):
            act = act.clone()
            src = cache[name]
            for head, mask in hooks[name]:
                if head is None:
                    act[mask] = src[mask]
                else:
                    act[mask, :, head] = src[mask, :, head]
            return act
        return hook

    return model.run_with_hooks(base, fwd_hooks=[(n, make(n)) for n in hooks])


@torch.no_grad()
def verify(siit_model, *, n: int = 512, seed: int = 0) -> Verification:
    """Run the three checks on ``n`` held-out inputs.

    Args:
        siit_model: a :class:`~mechinterp.siit.training.SIITModel`.
        n: inputs per check.
        seed: offset of the held-out draw.
    """
    if n < 16:
        raise ConfigError(f"verification needs at least 16 inputs, got {n}")
    task = get_siit_task(siit_model.task)
    model = siit_model.model
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(HELD_OUT_SEED + 1000 * seed + siit_model.seed)
    base = task.sample(n, g)
    paired = task.paired_source(base, g)
    unrelated = task.sample(n, g)
    labels = task.model.label(base).to(device)
    base, paired, unrelated = base.to(device), paired.to(device), unrelated.to(device)
    every = torch.ones(n, dtype=torch.bool, device=device)

    def accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
        """Share of answered positions (all of a per-position task, else the last) right."""
        if target.dim() == 1:
            return float((logits[:, -1].argmax(-1) == target).float().mean())
        answered = target != IGNORE
        return float((logits.argmax(-1) == target)[answered].float().mean())

    clean = accuracy(model(base), labels)
    iia, effects = {}, {}
    for node, component in siit_model.alignment.items():
        target = task.model.interchange(base.cpu(), paired.cpu(), node).to(device)
        iia[node] = accuracy(patched_logits(model, base, paired, {component: every}), target)
        lost = accuracy(patched_logits(model, base, unrelated, {component: every}), labels)
        effects[node] = 1 - lost / max(clean, 1e-9)
    names = [f"L{layer}.H{h}" for layer in range(model.cfg.n_layers)
             for h in range(model.cfg.n_heads)] + [f"L{layer}.mlp"
                                                   for layer in range(model.cfg.n_layers)]
    others = {c: every for c in names if c not in siit_model.circuit_nodes}
    retained = accuracy(patched_logits(model, base, unrelated, others), labels) / max(clean, 1e-9)
    return Verification(clean, iia, retained, effects, n)
