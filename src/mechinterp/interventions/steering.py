"""Activation steering: add a vector to the residual stream (or any hook) at inference time.

* :func:`steering_vector`: the difference of activations between paired prompts at one hook
  and position, averaged over the pairs: activation addition (Turner et al., 2023, "Steering
  Language Models With Activation Engineering", ActAdd).
* :func:`contrastive_vector`: the difference of the mean activations of two groups of prompts
  at their last tokens: contrastive activation addition (Rimsky et al., 2024, "Steering Llama
  2 via Contrastive Activation Addition", CAA).
* :class:`SteeringIntervention` adds ``strength * vector`` at a hook, at every position or only
  the last, optionally only where a linear probe fires (:class:`ProbeGate`): inference-time
  intervention shifts activations along probe-found directions (Li et al., 2023,
  "Inference-Time Intervention: Eliciting Truthful Answers from a Language Model", ITI), and
  conditional steering applies a behaviour vector only where a condition vector detects the
  context (Lee et al., 2024, "Programming Refusal with Conditional Activation Steering").
* :func:`strength_sweep` measures a metric across strengths.

Prompts are token-id tensors ``(batch, pos)`` or lists of token-id lists of any lengths (right
padded internally; a causal model's earlier positions never see the padding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from mechinterp.errors import ConfigError, ShapeError
from mechinterp.interventions.base import (
    HookIntervention,
    check_positions,
    check_vector,
    resolve_hook,
    select_positions,
)

__all__ = ["Prompts", "last_token_activations", "steering_vector", "contrastive_vector",
           "ProbeGate", "probe_gate", "SteeringIntervention", "strength_sweep"]

Prompts = torch.Tensor | Sequence[Sequence[int]]


def _pad(prompts: Prompts, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tokens (batch, pos), last index (batch,))`` with rows right-padded."""
    if isinstance(prompts, torch.Tensor):
        if prompts.dim() != 2 or prompts.shape[1] == 0:
            raise ShapeError(f"prompts must be (batch, pos) token ids, got "
                             f"{tuple(prompts.shape)}")
        return prompts, torch.full((len(prompts),), prompts.shape[1] - 1)
    rows = [list(r) for r in prompts]
    if not rows or any(len(r) == 0 for r in rows):
        raise ShapeError("prompts must be a non-empty list of non-empty token-id lists")
    width = max(map(len, rows))
    tokens = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, :len(row)] = torch.tensor(row)
    return tokens, torch.tensor([len(r) - 1 for r in rows])


@torch.no_grad()
def last_token_activations(model, prompts: Prompts, hook: str, *, position: int | None = None,
                           batch_size: int = 256) -> torch.Tensor:
    """Activations at ``hook`` at each prompt's last token (or at ``position`` in every row):
    ``(batch, *activation shape)``, e.g. ``(batch, d_model)``.

    Raises:
        ConfigError: unknown hook.
        ShapeError: malformed prompts.
    """
    resolve_hook(model, hook)
    tokens, last = _pad(prompts)
    if position is not None:
        last = torch.full_like(last, position)
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(tokens), batch_size):
        chunk = tokens[start:start + batch_size].to(device)
        _, cache = model.run_with_cache(chunk, names_filter=[hook])
        rows = torch.arange(len(chunk), device=device)
        out.append(cache[hook][rows, last[start:start + batch_size].to(device)].float())
    return torch.cat(out)


def steering_vector(model, positive: torch.Tensor, negative: torch.Tensor, hook: str, *,
                    position: int = -1) -> torch.Tensor:
    """Mean over prompt pairs of ``act(positive) - act(negative)`` at ``hook`` and ``position``
    (ActAdd, Turner et al., 2023).

    Args:
        model: a TransformerLens model.
        positive, negative: ``(batch, pos)`` token ids, row ``i`` of each forming a pair.
        hook: hook name, e.g. ``blocks.1.hook_resid_pre``.
        position: the position compared (default: the last).

    Raises:
        ShapeError: the two prompt tensors differ in shape.
        ConfigError: unknown hook.
    """
    if positive.shape != negative.shape:
        raise ShapeError(f"paired prompts must have the same shape, got "
                         f"{tuple(positive.shape)} and {tuple(negative.shape)}")
    pos = position % positive.shape[1]
    return (last_token_activations(model, positive, hook, position=pos)
            - last_token_activations(model, negative, hook, position=pos)).mean(0)


def contrastive_vector(model, group_a: Prompts, group_b: Prompts, hook: str) -> torch.Tensor:
    """``mean act(group_a) - mean act(group_b)`` at ``hook`` at each prompt's last token
    (CAA, Rimsky et al., 2024). Adding it moves a ``group_b`` context toward ``group_a``.

    Raises:
        ConfigError: unknown hook.
        ShapeError: malformed prompts.
    """
    return (last_token_activations(model, group_a, hook).mean(0)
            - last_token_activations(model, group_b, hook).mean(0))


@dataclass(frozen=True)
class ProbeGate:
    """A linear probe that decides where steering applies: positions whose activation ``x``
    has ``x @ direction > threshold``.

    Attributes:
        direction: ``(d,)`` unit direction at the steered hook.
        threshold: the projection above which the probe fires.
    """

    direction: torch.Tensor
    threshold: float

    def mask(self, act: torch.Tensor) -> torch.Tensor:
        """``(batch, pos, 1)`` 1.0 where the probe fires, else 0.0."""
        direction = self.direction.to(act.device, act.dtype)
        return (act @ direction > self.threshold).to(act.dtype).unsqueeze(-1)


def probe_gate(model, group_a: Prompts, group_b: Prompts, hook: str,
               reference: torch.Tensor, *, at: float = 0.8, ridge: float = 1e-2) -> ProbeGate:
    """A Fisher linear discriminant between two groups' last-token activations, whitened by the
    covariance of ``reference`` activations (every position of ordinary text), so the probe
    ignores directions that vary a lot anyway; its threshold sits ``at`` of the way from
    ``group_b``'s mean projection to ``group_a``'s.

    Args:
        model: a TransformerLens model.
        group_a: prompts where the probe should fire.
        group_b: contrasting prompts where it should not.
        hook: hook name (activations of shape ``(d,)`` per position).
        reference: ``(batch, pos)`` tokens of ordinary text for the covariance.
        at: threshold position between the two means (0: ``group_b``'s, 1: ``group_a``'s).
        ridge: added to the covariance, as a fraction of its mean variance.

    Raises:
        ConfigError: ``at`` outside ``[0, 1]`` or ``ridge`` negative; unknown hook.
    """
    if not 0.0 <= at <= 1.0 or ridge < 0:
        raise ConfigError(f"probe_gate needs 0 <= at <= 1 and ridge >= 0, got at={at}, "
                          f"ridge={ridge}")
    a = last_token_activations(model, group_a, hook)
    b = last_token_activations(model, group_b, hook)
    with torch.no_grad():
        _, cache = model.run_with_cache(reference.to(next(model.parameters()).device),
                                        names_filter=[hook])
    x = cache[hook].flatten(0, 1).float()
    cov = torch.cov(x.T)
    cov = cov + ridge * cov.diagonal().mean() * torch.eye(len(cov), device=cov.device)
    direction = torch.linalg.solve(cov, a.mean(0) - b.mean(0))
    direction = direction / direction.norm()
    low, high = float((b @ direction).mean()), float((a @ direction).mean())
    return ProbeGate(direction.detach(), low + at * (high - low))


class SteeringIntervention(HookIntervention):
    """Add ``strength * vector`` to the activation at ``hook``.

    Args:
        hook: hook name, e.g. ``blocks.1.hook_resid_post``.
        vector: one position's activation shape at that hook (``(d_model,)`` for the residual
            stream).
        strength: multiplier; negative steers away from what ``vector`` points to; 0 leaves
            every activation unchanged.
        positions: ``"all"`` (every position, as CAA does for generated tokens), ``"last"``
            (the final position of the input only) or one position index.
        gate: add the vector only where this probe fires (conditional steering).
        name, description: for listings.

    Raises:
        ConfigError: ``strength`` is not a finite number, bad ``positions``; unknown hook (on
            apply).
        ShapeError: ``vector`` or the gate's direction does not fit the hook (on apply).
    """

    kind = "steering"

    def __init__(self, hook: str, vector: torch.Tensor, strength: float = 1.0, *,
                 positions: str | int = "all", gate: ProbeGate | None = None,
                 name: str = "steer", description: str = "") -> None:
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) \
                or strength != strength or abs(strength) == float("inf"):
            raise ConfigError(f"steering strength must be a finite number, got {strength!r}")
        self.hook, self.vector, self.strength = hook, torch.as_tensor(vector), float(strength)
        self.positions, self.gate = check_positions(positions), gate
        self.name = name
        self.description = description or (f"add {self.strength:g} x a vector at {hook} "
                                           f"({positions} positions)")

    def hook_fns(self, model):
        delta = self.strength * check_vector(model, self.hook, self.vector, "steering vector")
        if self.gate is not None:
            check_vector(model, self.hook, self.gate.direction, "gate direction")
        gate, positions = self.gate, self.positions

        def steer(act: torch.Tensor, hook) -> torch.Tensor:
            add = delta.to(act.dtype)
            index = select_positions(act, positions)
            if gate is None and positions == "all":
                return act + add
            act = act.clone()
            part = act[index]
            act[index] = part + (add if gate is None else gate.mask(part) * add)
            return act
        return [(self.hook, steer)]


def strength_sweep(model, hook: str, vector: torch.Tensor, strengths: Sequence[float],
                   metric: Callable[[torch.nn.Module], float], *, positions: str | int = "all",
                   gate: ProbeGate | None = None) -> list[tuple[float, float]]:
    """``(strength, metric(model))`` with a :class:`SteeringIntervention` applied at each
    strength in turn (always removed afterwards).

    Args:
        model: a TransformerLens model.
        hook, vector, positions, gate: as for :class:`SteeringIntervention`.
        strengths: the strengths to try.
        metric: a function of the (steered) model, e.g. a toxicity rate.
    """
    out = []
    for strength in strengths:
        steer = SteeringIntervention(hook, vector, strength, positions=positions, gate=gate)
        with steer.applied(model):
            out.append((float(strength), float(metric(model))))
    return out
