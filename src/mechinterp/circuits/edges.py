"""Edge-level circuit discovery: edge attribution patching and ACDC-style pruning.

Both work on :class:`~mechinterp.circuits.computation.ComputationGraph`, where each edge
``writer -> reader`` can carry the writer's clean output or its corrupted one.

* :func:`edge_attribution_patching` (Syed et al., 2023): one corrupted forward pass that keeps
  every reader's input and its gradient, one clean pass for the writers' outputs; an edge's
  score is ``(clean output - corrupted output) . d metric / d reader input``, summed over
  positions and averaged over prompts.
* :func:`eap_ig` (Hanna et al., 2024): the same product, with the gradient averaged along a
  straight path from the corrupted to the clean input embeddings (integrated gradients), which
  corrects EAP where the metric is far from linear between the two runs.
* :func:`acdc` (Conmy et al., 2023): start from the clean model, visit readers from the
  logits backwards, and cut each incoming edge (give it the corrupted output) whenever that
  moves the metric by less than ``threshold`` times the clean-corrupted gap. Edges into
  components that no longer reach the logits are cut without testing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from mechinterp.circuits.computation import ComputationGraph, Edge
from mechinterp.circuits.metrics import Metric, get_metric
from mechinterp.errors import ConfigError
from mechinterp.toyworld.tasks import PromptSet

__all__ = ["EdgeScores", "edge_attribution_patching", "eap_ig", "acdc", "circuit_metric"]


@dataclass
class EdgeScores:
    """Scores for every edge of a graph, normalised by the clean-corrupted metric gap.

    Attributes:
        method: ``eap`` or ``acdc``.
        edges: the graph's edges, in order.
        scores: ``(n_edges,)``; for ACDC, the metric change measured when the edge was tested
            (0 for edges cut without a test).
        kept: ``(n_edges,)`` bool, the circuit (ACDC) or ``None``.
        clean_metric, corrupted_metric: the metric on the two runs.
        seconds: wall time.
        forward_passes: graph forward passes used.
    """

    method: str
    edges: list[Edge]
    scores: torch.Tensor
    kept: torch.Tensor | None
    clean_metric: float
    corrupted_metric: float
    seconds: float
    forward_passes: int

    def node_scores(self) -> dict[str, float]:
        """A component's score: the sum of the absolute scores of its incoming edges (its
        readers) and outgoing edges."""
        out: dict[str, float] = {}
        for edge, score in zip(self.edges, self.scores.abs().tolist(), strict=True):
            for node in (edge.writer, ComputationGraph.node_of(edge.reader)):
                out[node] = out.get(node, 0.0) + score
        return out


def _runs(graph: ComputationGraph, prompts: PromptSet, metric: str | Metric):
    with torch.no_grad():
        clean_logits, clean_out, _ = graph.forward(prompts.clean)
        corr_logits, corr_out, _ = graph.forward(prompts.corrupted)
    fn = get_metric(metric, clean_logits) if isinstance(metric, str) else metric
    clean_m, corr_m = float(fn(clean_logits, prompts)), float(fn(corr_logits, prompts))
    if abs(clean_m - corr_m) < 1e-6:
        raise ConfigError("the metric is the same on clean and corrupted prompts")
    return fn, clean_out, corr_out, clean_m, corr_m


def edge_attribution_patching(graph: ComputationGraph, prompts: PromptSet, *,
                              metric: str | Metric = "logit_diff") -> EdgeScores:
    """Score every edge at once from gradients at the corrupted run (denoising direction)."""
    started = time.perf_counter()
    with torch.no_grad():
        clean_logits, clean_out, _ = graph.forward(prompts.clean)
    fn = get_metric(metric, clean_logits) if isinstance(metric, str) else metric
    with torch.enable_grad():
        logits, corr_out, inputs = graph.forward(prompts.corrupted, keep_inputs=True)
        value = fn(logits, prompts)
        value.backward()
    clean_m, corr_m = float(fn(clean_logits, prompts)), value.item()
    if abs(clean_m - corr_m) < 1e-6:
        raise ConfigError("the metric is the same on clean and corrupted prompts")
    grads = graph.reader_gradients(inputs)  # (n_readers, batch, pos, d_model)
    delta = (clean_out - corr_out.detach())  # (n_writers, batch, pos, d_model)
    full = torch.einsum("wbpd,rbpd->wr", delta, grads)  # metric is a batch mean already
    scores = full[graph.edge_writers, graph.edge_readers].detach().cpu() / (clean_m - corr_m)
    return EdgeScores("eap", graph.edges, scores, None, clean_m, corr_m,
                      time.perf_counter() - started, 2)


def eap_ig(graph: ComputationGraph, prompts: PromptSet, *, steps: int = 5,
           metric: str | Metric = "logit_diff") -> EdgeScores:
    """EAP with integrated gradients: gradients at ``steps`` points between the corrupted
    (``alpha=0``) and clean (``alpha=1``) embeddings, midpoint rule, averaged.

    The interpolation runs through the graph: the edges out of ``embed`` carry ``alpha`` of
    the clean embeddings and ``1 - alpha`` of the corrupted ones, every other edge its own run.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got {steps!r}")
    started = time.perf_counter()
    fn, clean_out, corr_out, clean_m, corr_m = _runs(graph, prompts, metric)
    from_embed = torch.tensor([e.writer == "embed" for e in graph.edges])
    total = None
    for k in range(steps):
        alpha = (k + 0.5) / steps
        mask = torch.where(from_embed, alpha, 1.0)
        with torch.enable_grad():
            logits, _, inputs = graph.forward(prompts.clean, mask, corr_out, keep_inputs=True)
            fn(logits, prompts).backward()
        grads = graph.reader_gradients(inputs)
        total = grads if total is None else total + grads
    full = torch.einsum("wbpd,rbpd->wr", clean_out - corr_out, total / steps)
    scores = full[graph.edge_writers, graph.edge_readers].detach().cpu() / (clean_m - corr_m)
    return EdgeScores("eap-ig", graph.edges, scores, None, clean_m, corr_m,
                      time.perf_counter() - started, 2 + steps)


@torch.no_grad()
def circuit_metric(graph: ComputationGraph, prompts: PromptSet, mask: torch.Tensor,
                   corrupted_outputs: torch.Tensor, metric: Metric) -> float:
    """The metric on clean prompts when edges with ``mask == 0`` carry corrupted outputs."""
    logits, _, _ = graph.forward(prompts.clean, mask, corrupted_outputs)
    return float(metric(logits, prompts))


@torch.no_grad()
def acdc(graph: ComputationGraph, prompts: PromptSet, *, threshold: float = 0.02,
         metric: str | Metric = "logit_diff") -> EdgeScores:
    """Prune edges whose removal changes the metric by less than ``threshold`` x the gap.

    Args:
        graph: the model's computation graph.
        prompts: clean/corrupted pairs.
        threshold: share of the clean-corrupted metric gap an edge may move and still be cut.
        metric: ``logit_diff``, ``kl`` or a function.
    """
    if threshold < 0:
        raise ConfigError(f"threshold must be >= 0, got {threshold}")
    started = time.perf_counter()
    fn, _, corr_out, clean_m, corr_m = _runs(graph, prompts, metric)
    gap = clean_m - corr_m
    mask = graph.full_mask()
    scores = torch.zeros(len(graph.edges))
    current = clean_m
    passes = 2
    by_reader: dict[str, list[int]] = {}
    by_writer: dict[str, list[int]] = {}
    for i, e in enumerate(graph.edges):  # edges are in writer order within each reader
        by_reader.setdefault(e.reader, []).append(i)
        by_writer.setdefault(e.writer, []).append(i)
    for reader in reversed(graph.readers):
        node = graph.node_of(reader)
        incoming = list(reversed(by_reader.get(reader, [])))  # latest writer first
        alive = node == "logits" or bool((mask[by_writer.get(node, [])] > 0).any())
        if not alive:  # nothing downstream listens: its inputs do not matter
            mask[incoming] = 0
            continue
        for i in incoming:
            mask[i] = 0
            value = circuit_metric(graph, prompts, mask, corr_out, fn)
            passes += 1
            change = abs(value - current) / abs(gap)
            scores[i] = change
            if change < threshold:
                current = value
            else:
                mask[i] = 1
    return EdgeScores("acdc", graph.edges, scores, mask > 0, clean_m, corr_m,
                      time.perf_counter() - started, passes)
