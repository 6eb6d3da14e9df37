"""Baselines that any discovery method must beat, scored exactly like the methods.

* ``random``: a uniform random score per component and per edge (the trivial baseline; its
  ROC AUC is 0.5 in expectation).
* ``weight_norm``: no data at all. A head scores the Frobenius norm of its OV matrix
  ``W_V W_O``, an MLP the norm of ``W_out``, ``embed`` the norm of ``W_E`` and ``logits`` that
  of ``W_U``; an edge scores the product of its two ends. It asks which components *can* write
  much, not which ones this task uses.
* ``attention``: the attention-pattern rules that served as this project's ground truth before
  circuits were built by construction, kept as a baseline. A head scores the strongest of four
  textbook patterns on the clean prompts: previous-token, duplicate-token (to an earlier copy
  of the current token), induction (to the token after an earlier copy) and, for each named
  position, attention from the last position to it. MLPs score 0 (no pattern to read); an edge
  scores the product of its ends (``embed`` and ``logits`` count as 1).

Each returns component scores and component-edge scores (``writer -> reader``, the level at
which :mod:`mechinterp.circuits.scoring` compares edges with a ground truth). A baseline's
circuit is its top quarter of components, with the graph's edges between them (the rule is
fixed here, before any run, and does not look at the ground truth's size).
"""

from __future__ import annotations

import torch

from mechinterp.circuits.computation import ComputationGraph
from mechinterp.errors import ConfigError
from mechinterp.toyworld.tasks import PromptSet

__all__ = ["BASELINES", "baseline_scores", "BASELINE_KEEP"]

BASELINES = ("random", "weight_norm", "attention")
BASELINE_KEEP = 0.25
"""Share of components a baseline's circuit keeps (highest scores first)."""


def _components(graph: ComputationGraph) -> list[str]:
    return [w for w in graph.writers if w != "embed"]


def _component_edges(graph: ComputationGraph) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for e in graph.edges:
        seen[(e.writer, graph.node_of(e.reader))] = None
    return list(seen)


def _weight_norms(model) -> dict[str, float]:
    ov = torch.einsum("lhdk,lhke->lhde", model.W_V, model.W_O).detach()
    out = {"embed": float(model.W_E.detach().norm()), "logits": float(model.W_U.detach().norm())}
    out |= {f"L{layer}.H{h}": float(ov[layer, h].norm()) for layer in range(ov.shape[0])
            for h in range(ov.shape[1])}
    if not model.cfg.attn_only:
        out |= {f"L{layer}.mlp": float(model.W_out[layer].detach().norm())
                for layer in range(model.cfg.n_layers)}
    return out


@torch.no_grad()
def _attention_scores(model, prompts: PromptSet) -> dict[str, float]:
    tokens = prompts.clean
    _, cache = model.run_with_cache(tokens)
    batch, pos = tokens.shape
    same = tokens[:, :, None] == tokens[:, None, :]  # b q k: key holds the query's token
    earlier = torch.ones(pos, pos, dtype=torch.bool, device=tokens.device).tril(-1)
    duplicate = (same & earlier).float()
    # induction: the key follows an earlier copy of the query's token
    induction = torch.zeros_like(duplicate)
    induction[:, :, 1:] = duplicate[:, :, :-1]
    induction = induction * earlier
    previous = torch.zeros(pos, pos, device=tokens.device)
    previous[torch.arange(1, pos), torch.arange(pos - 1)] = 1
    out = {}
    for layer in range(model.cfg.n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]  # b h q k
        rules = [(pattern * previous).sum(-1)[:, :, 1:].mean((0, 2))]
        for target in (duplicate, induction):
            has = target.sum(-1) > 0  # b q: queries where the rule applies
            mass = (pattern * target[:, None]).sum(-1)  # b h q
            rules.append((mass * has[:, None]).sum((0, 2)) / has.sum().clamp(min=1))
        rules += [pattern[:, :, -1, p].mean(0) for p in sorted(set(prompts.positions.values()))
                  if p < pos - 1]
        best = torch.stack(rules).amax(0)
        out |= {f"L{layer}.H{h}": float(best[h]) for h in range(model.cfg.n_heads)}
        if not model.cfg.attn_only:
            out[f"L{layer}.mlp"] = 0.0
    return out


def baseline_scores(name: str, model, graph: ComputationGraph, prompts: PromptSet, *,
                    seed: int = 0) -> tuple[dict[str, float], dict[str, float]]:
    """``(component scores, component-edge scores)`` of one baseline.

    Args:
        name: one of :data:`BASELINES`.
        model: the ``TransformerBridge``.
        graph: its computation graph.
        prompts: the clean prompts (read only by ``attention``).
        seed: the draw of ``random``.

    Raises:
        ConfigError: unknown baseline.
    """
    components, edges = _components(graph), _component_edges(graph)
    if name == "random":
        g = torch.Generator().manual_seed(seed)
        nodes = dict(zip(components, torch.rand(len(components), generator=g).tolist(),
                         strict=True))
        scores = torch.rand(len(edges), generator=g).tolist()
        return nodes, {f"{w} -> {r}": s for (w, r), s in zip(edges, scores, strict=True)}
    if name == "weight_norm":
        norms = _weight_norms(model)
    elif name == "attention":
        norms = _attention_scores(model, prompts) | {"embed": 1.0, "logits": 1.0}
    else:
        raise ConfigError(f"unknown baseline {name!r}; baselines: {list(BASELINES)}")
    nodes = {c: norms[c] for c in components}
    return nodes, {f"{w} -> {r}": norms[w] * norms[r] for w, r in edges}


def baseline_circuit_nodes(node_scores: dict[str, float]) -> set[str]:
    """The components a baseline's circuit keeps: its top :data:`BASELINE_KEEP` share."""
    k = max(1, round(BASELINE_KEEP * len(node_scores)))
    return set(sorted(node_scores, key=lambda n: -abs(node_scores[n]))[:k])
