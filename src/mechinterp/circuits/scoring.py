"""Scoring discovery methods against a ground-truth circuit.

The ground truth of the benchmark is built, not read off: :class:`CircuitTruth` holds the
circuit a SIIT model was trained to implement (:mod:`mechinterp.siit`), checked causally on
held-out inputs. Node scores are compared at the level of components (heads and MLPs), edge
scores at the level of component pairs ``writer -> reader``: an edge method's scores for a
head's ``q``, ``k`` and ``v`` inputs are summed in absolute value
(:func:`component_edge_scores`), because training fixes which components talk to each other,
not through which input.

:func:`ground_truth` is the older rule set that read a "planted" circuit from attention
patterns after training (no method looks at patterns, but nothing checks the circuit
causally, MLPs can never be in it, and a weight-norm baseline scored ROC AUC 1.0 against it).
It survives for the toy-world tutorials and as the ``attention`` baseline
(:mod:`mechinterp.circuits.baselines`), not as a benchmark:

* ``induction``: previous-token heads (layer 0, mean attention to the previous position at
  least 0.5 on repeated random tokens) and induction heads (later layers, mean attention to
  the token after the current token's previous occurrence at least 0.5), after Olsson et al.
  (2022). The corrupted prompts swap two tokens of the first copy, which changes *where* the
  current token occurred before and nothing that could be copied, so the difference travels:
  embeddings into the previous-token heads' values, previous-token heads into the induction
  heads' keys (K-composition), induction heads into the logits.
* ``ioi``: the corrupted prompt changes one token, the second mention of the subject (S2),
  and the answer is read at the final position, so the difference must be carried by heads
  that attend from the final position to S2 (mean attention at least 0.3, any layer); edges:
  the embeddings into their values and those heads into the logits.

A ground truth is about the difference between clean and corrupted prompts: a component the
task needs but whose activation is the same on both (the induction heads' query, say) is not
in it, because no patching method can or should find it.

:func:`roc_auc` is the Mann-Whitney statistic (the probability that a true component outranks
a false one, ties counted half).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mechinterp.circuits.computation import ComputationGraph
from mechinterp.circuits.edges import circuit_metric
from mechinterp.circuits.metrics import Metric, get_metric
from mechinterp.errors import ConfigError
from mechinterp.toyworld.tasks import INDUCTION_PROMPT_PERIOD, PromptSet

__all__ = ["GroundTruth", "ground_truth", "roc_auc", "faithfulness_curve", "head_diagnostics",
           "CircuitTruth", "component_edge_scores", "precision_recall"]


@dataclass(frozen=True)
class CircuitTruth:
    """A ground-truth circuit at component level.

    Attributes:
        nodes: components (``L1.H2``, ``L3.mlp``) in the circuit.
        edges: ``writer -> reader`` component pairs in it (``embed`` and ``logits`` included).
        source: how it is known (``siit``: built by training and verified).
    """

    nodes: frozenset[str]
    edges: frozenset[str]
    source: str


def component_edge_scores(edge_scores: dict[str, float]) -> dict[str, float]:
    """Sum ``|score|`` over a reader's inputs: ``{"L0.H1 -> L2.H0.k": s, ...}`` becomes
    ``{"L0.H1 -> L2.H0": ...}``."""
    out: dict[str, float] = {}
    for name, score in edge_scores.items():
        writer, reader = name.split(" -> ")
        if reader.endswith((".q", ".k", ".v")):
            reader = reader.rsplit(".", 1)[0]
        key = f"{writer} -> {reader}"
        out[key] = out.get(key, 0.0) + abs(score)
    return out


def precision_recall(found: set[str], truth: set[str] | frozenset[str]) -> tuple[float, float]:
    """``(precision, recall)`` of a found set against the truth (precision 0 for an empty
    find)."""
    hits = len(set(found) & set(truth))
    return (hits / len(found) if found else 0.0), (hits / len(truth) if truth else 0.0)


@dataclass
class GroundTruth:
    """The planted circuit: component names and edges (``writer -> reader`` names)."""

    nodes: set[str]
    edges: set[str]
    diagnostics: dict[str, torch.Tensor]


@torch.no_grad()
def head_diagnostics(model, prompts: PromptSet) -> dict[str, torch.Tensor]:
    """Per-head attention scores ``(n_layers, n_heads)`` on the clean prompts:
    ``previous_token``, ``induction`` (for induction prompts) and ``end_to_names`` (for
    prompts with name positions)."""
    _, cache = model.run_with_cache(prompts.clean)
    n_layers = model.cfg.n_layers
    patterns = [cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(n_layers)]  # b h q k
    out = {"previous_token": torch.stack([p.diagonal(offset=-1, dim1=-2, dim2=-1).mean((0, 2))
                                          for p in patterns])}
    if prompts.task == "induction":
        period = INDUCTION_PROMPT_PERIOD
        queries = range(period + 1, prompts.clean.shape[1])
        out["induction"] = torch.stack([
            torch.stack([p[:, :, q, q - period + 1] for q in queries], -1).mean((0, 2))
            for p in patterns])
    if "s2" in prompts.positions:
        end, s2 = prompts.positions["end"], prompts.positions["s2"]
        out["end_to_s2"] = torch.stack([p[:, :, end, s2].mean(0) for p in patterns])
    return {k: v.cpu() for k, v in out.items()}


def ground_truth(model, prompts: PromptSet) -> GroundTruth:
    """The task's planted circuit in ``model``, read from attention patterns.

    Raises:
        ConfigError: the task has no ground-truth rule, or no head passes it.
    """
    diag = head_diagnostics(model, prompts)
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads

    def heads(grid: torch.Tensor, layers, cut: float) -> set[str]:
        return {f"L{layer}.H{h}" for layer in layers for h in range(n_heads)
                if grid[layer, h] >= cut}

    if prompts.task == "induction":
        prev = heads(diag["previous_token"], [0], 0.5)
        ind = heads(diag["induction"], range(1, n_layers), 0.5)
        edges = {f"embed -> {h}.v" for h in prev}
        edges |= {f"{p} -> {i}.k" for p in prev for i in ind}
        edges |= {f"{i} -> logits" for i in ind}
        nodes = prev | ind
    elif prompts.task == "ioi":
        movers = heads(diag["end_to_s2"], range(n_layers), 0.3)
        nodes = movers
        edges = {f"{m} -> logits" for m in movers} | {f"embed -> {m}.v" for m in movers}
    else:
        raise ConfigError(f"no ground-truth circuit is defined for task {prompts.task!r}; "
                          "tasks with one: ['induction', 'ioi']")
    if not nodes:
        raise ConfigError(f"no head passes the {prompts.task} ground-truth rule; is the model "
                          "trained? (diagnostics: " + ", ".join(diag) + ")")
    return GroundTruth(nodes, edges, diag)


def roc_auc(scores: dict[str, float], positives: set[str]) -> float:
    """Area under the ROC curve of ``|score|`` for telling ``positives`` from the rest.

    Raises:
        ConfigError: no positive or no negative among the scored names.
    """
    pos = [abs(v) for k, v in scores.items() if k in positives]
    neg = [abs(v) for k, v in scores.items() if k not in positives]
    if not pos or not neg:
        raise ConfigError(f"ROC AUC needs positives and negatives; got {len(pos)} and {len(neg)}")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@torch.no_grad()
def faithfulness_curve(graph: ComputationGraph, prompts: PromptSet, edge_scores: torch.Tensor,
                       sizes: list[int] | None = None, metric: str | Metric = "logit_diff"
                       ) -> list[tuple[int, float]]:
    """Share of the clean-corrupted metric gap recovered by the top-``k`` edges alone.

    Every other edge carries its corrupted output; 1.0 is the clean model, 0.0 the corrupted.
    Returns ``[(k, share), ...]``.
    """
    clean_logits, _, _ = graph.forward(prompts.clean)
    _, corr_out, _ = graph.forward(prompts.corrupted)
    fn = get_metric(metric, clean_logits) if isinstance(metric, str) else metric
    clean_m = float(fn(clean_logits, prompts))
    corr_m = circuit_metric(graph, prompts, torch.zeros(len(graph.edges)), corr_out, fn)
    order = edge_scores.abs().argsort(descending=True)
    n = len(graph.edges)
    sizes = sizes or sorted({1, 2, 4, 8, 16, 32, 64, n} & set(range(1, n + 1)))
    curve = []
    for k in sizes:
        mask = torch.zeros(n)
        mask[order[:k]] = 1
        value = circuit_metric(graph, prompts, mask, corr_out, fn)
        curve.append((k, (value - corr_m) / (clean_m - corr_m)))
    return curve
