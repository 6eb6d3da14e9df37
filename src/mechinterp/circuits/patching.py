"""Activation patching and attribution patching over residual positions, heads and MLPs.

Both answer one question per component: how much of the clean behaviour comes back when this
component's activation is taken from the clean run while everything else sees the corrupted
prompt (*denoising*)? Or, with ``direction="noise"``, how much is lost when it alone is
corrupted? Scores are normalised so that 0 is the corrupted run and 1 the clean one
(Zhang & Nanda, 2024, discuss both directions and the metrics).

* :func:`activation_patching` runs the model once per component (exact).
* :func:`attribution_patching` approximates every score at once from two forward passes and
  one backward pass: ``(a_clean - a_corrupted) . d metric / d a`` (Nanda, 2023).

Components, named as in :class:`mechinterp.circuits.computation.ComputationGraph`:
``resid`` (the residual stream entering each layer, and leaving the last, at each position),
``heads`` (``blocks.{l}.attn.hook_z``, one head's slice at every position) and ``mlp``
(``blocks.{l}.hook_mlp_out``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from mechinterp.circuits.metrics import Metric, get_metric
from mechinterp.errors import ConfigError
from mechinterp.toyworld.tasks import PromptSet

__all__ = ["PatchingResult", "activation_patching", "attribution_patching", "COMPONENTS"]

COMPONENTS = ("resid", "heads", "mlp")
"""What :func:`activation_patching` patches by default."""
EXTRA_COMPONENTS = ("head_positions",)
"""Finer grids it patches on request: every head at every position, one run each."""


@dataclass
class PatchingResult:
    """Normalised patching scores.

    Attributes:
        method: ``activation`` or ``attribution``.
        direction: ``denoise`` or ``noise``.
        scores: ``resid`` ``(n_layers + 1, pos)``, ``heads`` ``(n_layers, n_heads)``,
            ``mlp`` ``(n_layers,)`` (absent for attention-only models), and
            ``head_positions`` ``(n_layers, n_heads, pos)`` (always from attribution
            patching, from activation patching when asked for).
        clean_metric: the metric on clean prompts; corrupted_metric: on corrupted ones.
        seconds: wall time of the scoring.
        forward_passes: model runs used.
    """

    method: str
    direction: str
    scores: dict[str, torch.Tensor]
    clean_metric: float
    corrupted_metric: float
    seconds: float
    forward_passes: int
    extra: dict = field(default_factory=dict)

    def node_scores(self) -> dict[str, float]:
        """Scores of heads and MLPs keyed by component name (``L0.H3``, ``L1.mlp``)."""
        out = {}
        heads = self.scores["heads"]
        for layer in range(heads.shape[0]):
            for head in range(heads.shape[1]):
                out[f"L{layer}.H{head}"] = float(heads[layer, head])
            if "mlp" in self.scores:
                out[f"L{layer}.mlp"] = float(self.scores["mlp"][layer])
        return out


def _hooks(model) -> dict[str, list[str]]:
    n_layers = model.cfg.n_layers
    names = {"resid": [f"blocks.{layer}.hook_resid_pre" for layer in range(n_layers)]
             + [f"blocks.{n_layers - 1}.hook_resid_post"],
             "heads": [f"blocks.{layer}.attn.hook_z" for layer in range(n_layers)]}
    if not getattr(model.cfg, "attn_only", False):
        names["mlp"] = [f"blocks.{layer}.hook_mlp_out" for layer in range(n_layers)]
    return names


def _check(model, prompts: PromptSet, direction: str) -> None:
    if direction not in ("denoise", "noise"):
        raise ConfigError(f"direction must be 'denoise' or 'noise', got {direction!r}")
    if prompts.clean.shape != prompts.corrupted.shape:
        raise ConfigError(f"clean and corrupted prompts differ in shape: "
                          f"{tuple(prompts.clean.shape)} vs {tuple(prompts.corrupted.shape)}")
    if model.training:
        raise ConfigError("patching needs the model in eval mode: call model.eval() first")


def _setup(model, prompts: PromptSet, metric: str | Metric):
    with torch.no_grad():
        clean_logits, clean_cache = model.run_with_cache(prompts.clean)
        corr_logits, corr_cache = model.run_with_cache(prompts.corrupted)
    fn = get_metric(metric, clean_logits) if isinstance(metric, str) else metric
    clean_m, corr_m = float(fn(clean_logits, prompts)), float(fn(corr_logits, prompts))
    if abs(clean_m - corr_m) < 1e-6:
        raise ConfigError("the metric is the same on clean and corrupted prompts: there is "
                          "nothing to patch back (check the prompts and the answer tokens)")
    return fn, clean_cache, corr_cache, clean_m, corr_m


@torch.no_grad()
def activation_patching(model, prompts: PromptSet, *, metric: str | Metric = "logit_diff",
                        direction: str = "denoise",
                        components: tuple[str, ...] = COMPONENTS) -> PatchingResult:
    """Patch one component at a time and measure the normalised metric.

    Args:
        model: a ``TransformerBridge`` in eval mode.
        prompts: clean/corrupted pairs of equal shape.
        metric: ``logit_diff``, ``kl`` or a function ``(logits, prompts) -> scalar``.
        direction: ``denoise`` (clean activation into the corrupted run) or ``noise``.
        components: any of ``resid``, ``heads``, ``mlp``, and ``head_positions`` (every
            head at every position: ``n_layers * n_heads * pos`` runs).
    """
    _check(model, prompts, direction)
    started = time.perf_counter()
    fn, clean_cache, corr_cache, clean_m, corr_m = _setup(model, prompts, metric)
    base, source = (prompts.corrupted, clean_cache) if direction == "denoise" else \
        (prompts.clean, corr_cache)
    hooks = _hooks(model)
    unknown = sorted(set(components) - set(COMPONENTS + EXTRA_COMPONENTS))
    if unknown:
        raise ConfigError(f"unknown components {unknown}; choose from "
                          f"{list(COMPONENTS + EXTRA_COMPONENTS)}")
    runs = 0

    def run(name: str, patch) -> float:
        nonlocal runs
        runs += 1

        def hook(act, hook):
            return patch(act, source[name])
        return float(fn(model.run_with_hooks(base, fwd_hooks=[(name, hook)]), prompts))

    scores: dict[str, torch.Tensor] = {}
    pos = prompts.clean.shape[1]
    if "resid" in components:
        grid = torch.zeros(len(hooks["resid"]), pos)
        for i, name in enumerate(hooks["resid"]):
            for p in range(pos):
                def patch(act, src, p=p):
                    act = act.clone()
                    act[:, p] = src[:, p]
                    return act
                grid[i, p] = run(name, patch)
        scores["resid"] = grid
    if "heads" in components:
        grid = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
        for layer, name in enumerate(hooks["heads"]):
            for h in range(model.cfg.n_heads):
                def patch(act, src, h=h):
                    act = act.clone()
                    act[:, :, h] = src[:, :, h]
                    return act
                grid[layer, h] = run(name, patch)
        scores["heads"] = grid
    if "head_positions" in components:
        grid = torch.zeros(model.cfg.n_layers, model.cfg.n_heads, pos)
        for layer, name in enumerate(hooks["heads"]):
            for h in range(model.cfg.n_heads):
                for p in range(pos):
                    def patch(act, src, h=h, p=p):
                        act = act.clone()
                        act[:, p, h] = src[:, p, h]
                        return act
                    grid[layer, h, p] = run(name, patch)
        scores["head_positions"] = grid
    if "mlp" in components and "mlp" in hooks:
        scores["mlp"] = torch.tensor([run(name, lambda act, src: src) for name in hooks["mlp"]])
    normalised = {k: (v - corr_m) / (clean_m - corr_m) for k, v in scores.items()}
    if direction == "noise":  # share of the clean behaviour lost when the component is corrupted
        normalised = {k: 1 - v for k, v in normalised.items()}
    return PatchingResult("activation", direction, normalised, clean_m, corr_m,
                          time.perf_counter() - started, runs + 2)


def attribution_patching(model, prompts: PromptSet, *, metric: str | Metric = "logit_diff",
                         direction: str = "denoise") -> PatchingResult:
    """First-order estimate of :func:`activation_patching` for every component at once.

    Two forward passes and one backward pass: the source run (clean, for ``denoise``) is
    cached; the run being patched (corrupted) keeps its activations and their gradients, and
    ``score ~ (a_source - a_base) . d metric / d a_base`` estimates the patched metric's change.
    """
    _check(model, prompts, direction)
    started = time.perf_counter()
    base_tokens, source_tokens = (prompts.corrupted, prompts.clean) if direction == "denoise" \
        else (prompts.clean, prompts.corrupted)
    hooks = _hooks(model)
    names = [n for group in hooks.values() for n in group]
    with torch.no_grad():
        source_logits, source = model.run_with_cache(source_tokens, names_filter=names)
    kept: dict[str, torch.Tensor] = {}

    def keep(act, hook, store_as: str):
        act.retain_grad()
        kept[store_as] = act
        return act

    fwd = [(n, lambda act, hook, n=n: keep(act, hook, n)) for n in names]
    with torch.enable_grad():
        base_logits = model.run_with_hooks(base_tokens, fwd_hooks=fwd)
        clean_logits = source_logits if direction == "denoise" else base_logits.detach()
        fn = get_metric(metric, clean_logits) if isinstance(metric, str) else metric
        value = fn(base_logits, prompts)
        value.backward()
    source_m = float(fn(source_logits, prompts))
    clean_m, corr_m = (source_m, value.item()) if direction == "denoise" else \
        (value.item(), source_m)
    if abs(clean_m - corr_m) < 1e-6:
        raise ConfigError("the metric is the same on clean and corrupted prompts: there is "
                          "nothing to patch back (check the prompts and the answer tokens)")

    def attribution(name: str) -> torch.Tensor:
        act = kept[name]
        return (source[name].to(act) - act.detach()) * act.grad

    scores = {"resid": torch.stack([attribution(n).sum((0, 2)) for n in hooks["resid"]]),
              "heads": torch.stack([attribution(n).sum((0, 1, 3)) for n in hooks["heads"]]),
              "head_positions": torch.stack([attribution(n).sum((0, 3)).T
                                             for n in hooks["heads"]])}
    if "mlp" in hooks:
        scores["mlp"] = torch.stack([attribution(n).sum() for n in hooks["mlp"]])
    sign = 1.0 if direction == "denoise" else -1.0
    normalised = {k: sign * v.detach().cpu() / (clean_m - corr_m) for k, v in scores.items()}
    model.zero_grad(set_to_none=True)
    return PatchingResult("attribution", direction, normalised, clean_m, corr_m,
                          time.perf_counter() - started, 2)
