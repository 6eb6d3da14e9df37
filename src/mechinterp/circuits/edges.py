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
def _variant_metrics(graph: ComputationGraph, prompts: PromptSet, masks: torch.Tensor,
                     corrupted_outputs: torch.Tensor, metric: Metric, layer: int,
                     clean_outputs: torch.Tensor) -> list[float]:
    """The metric of each row of ``masks`` ``(n_variants, n_edges)``, from one batched pass
    that resumes at ``layer`` from the clean run's outputs before it (the rows differ only
    in edges into readers of ``layer`` and later, and no edge into an earlier reader is cut
    yet)."""
    logits, _, _ = graph.forward(prompts.clean, masks, corrupted_outputs, start_layer=layer,
                                 prefix=clean_outputs[:graph.writers_before(layer)])
    return [float(metric(chunk, prompts)) for chunk in logits.chunk(len(masks))]


def _reader_layer(graph: ComputationGraph, reader: str) -> int:
    return graph.n_layers if reader == "logits" else int(reader.split(".")[0][1:])


class _CircuitState:
    """The current circuit of an ACDC walk on the clean prompts: every writer's output, every
    reader's input and every head's queries, keys and values under the cuts made so far.

    Cutting an edge ``w -> r`` changes only ``r``'s input (``w``'s corrupted output replaces
    its current one). :meth:`try_cut` recomputes what changes, layer by layer: a head's query,
    key or value whose input moved, the head itself, an MLP whose input moved; each new output
    flows on through the edges the circuit still keeps, so a cut whose effect dies out never
    reaches the logits (the metric stays where it is). As circuits are sparse by the time the
    walk reaches the early layers, a test costs a few heads rather than a pass from the
    reader's layer on. :meth:`commit` makes a tested cut part of the state."""

    def __init__(self, graph: ComputationGraph, clean_out: torch.Tensor,
                 corr_out: torch.Tensor, mask: torch.Tensor) -> None:
        self.graph, self.corr, self.mask = graph, corr_out, mask
        self.outputs = list(clean_out.unbind(0))
        allowed = graph.allowed.to(clean_out)
        self.inputs = list(torch.einsum("wbpd,wr->rbpd", clean_out, allowed).unbind(0))
        self.out_edges = [(graph.edge_writers == w).nonzero()[:, 0]
                          for w in range(len(graph.writers))]  # each writer's edges
        index = {name: i for i, name in enumerate(graph.readers)}
        self.logits = index["logits"]
        self.layers = []  # per layer: head reader ids (q, k, v) and writer ids, the MLP's
        self.qkv: dict[int, list[torch.Tensor]] = {}  # a head writer's queries, keys, values
        for layer in range(graph.n_layers):
            heads = [[index[f"L{layer}.H{h}.{c}"] for c in "qkv"] for h in range(graph.n_heads)]
            writers = [graph.writers.index(f"L{layer}.H{h}") for h in range(graph.n_heads)]
            mlp = (None if graph.attn_only else
                   (index[f"L{layer}.mlp"], graph.writers.index(f"L{layer}.mlp")))
            self.layers.append((heads, writers, mlp))
            for c in range(3):
                x = torch.stack([self.inputs[ids[c]] for ids in heads])
                for w, t in zip(writers, graph.project(layer, c, x).unbind(0), strict=True):
                    self.qkv.setdefault(w, []).append(t)

    def _changed(self, writer: int, output: torch.Tensor, inputs: dict[int, torch.Tensor],
                 outputs: dict[int, torch.Tensor]) -> None:
        """Record a writer's new output and pass its change to the readers it still feeds."""
        outputs[writer] = output
        delta = output - self.outputs[writer]
        edges = self.out_edges[writer]
        for reader in self.graph.edge_readers[edges[self.mask[edges] > 0]].tolist():
            inputs[reader] = inputs.get(reader, self.inputs[reader]) + delta

    def try_cut(self, edge: int, start_layer: int, metric: Metric, prompts: PromptSet
                ) -> tuple[float | None, tuple[dict, dict, dict]]:
        """The metric with ``edge`` cut on top of the state (``None``: the logits do not
        change) and the change that :meth:`commit` takes: new reader inputs, writer outputs
        and head queries/keys/values."""
        g = self.graph
        writer, reader = int(g.edge_writers[edge]), int(g.edge_readers[edge])
        inputs = {reader: self.inputs[reader] + (self.corr[writer] - self.outputs[writer])}
        outputs: dict[int, torch.Tensor] = {}
        qkv: dict[int, list[torch.Tensor]] = {}
        for layer in range(start_layer, g.n_layers):
            heads, writers, mlp = self.layers[layer]
            moved = [h for h, ids in enumerate(heads) if any(i in inputs for i in ids)]
            for h in moved:
                qkv[writers[h]] = list(self.qkv[writers[h]])
            for c in range(3):
                changed = [h for h in moved if heads[h][c] in inputs]
                if changed:
                    x = torch.stack([inputs[heads[h][c]] for h in changed])
                    new = g.project(layer, c, x, torch.tensor(changed))
                    for h, t in zip(changed, new.unbind(0), strict=True):
                        qkv[writers[h]][c] = t
            if moved:
                q, k, v = (torch.stack([qkv[writers[h]][c] for h in moved]) for c in range(3))
                new = g.attend(layer, q, k, v, torch.tensor(moved))
                for h, output in zip(moved, new.unbind(0), strict=True):
                    self._changed(writers[h], output, inputs, outputs)
            if mlp is not None and mlp[0] in inputs:
                self._changed(mlp[1], g.mlp(layer, inputs[mlp[0]]), inputs, outputs)
        change = (inputs, outputs, qkv)
        if self.logits not in inputs:
            return None, change
        return float(metric(g.unembed(inputs[self.logits]), prompts)), change

    def commit(self, change: tuple[dict, dict, dict]) -> None:
        """Make a tested cut part of the state (the caller zeroes its mask entry)."""
        inputs, outputs, qkv = change
        for i, x in inputs.items():
            self.inputs[i] = x
        for i, x in outputs.items():
            self.outputs[i] = x
        self.qkv.update(qkv)


@torch.no_grad()
def acdc(graph: ComputationGraph, prompts: PromptSet, *, threshold: float = 0.02,
         metric: str | Metric = "logit_diff", variants: int | None = None,
         resume: bool = True, incremental: bool | None = None) -> EdgeScores:
    """Prune edges whose removal changes the metric by less than ``threshold`` x the gap.

    Readers are visited from the logits back, each reader's incoming edges from the latest
    writer to the earliest, and an edge is cut for good when cutting it (on top of every cut
    so far) moves the metric by less than the threshold (Conmy et al., 2023).

    The visit is sequential, but most edges are cut, so it can be run speculatively: one
    batched pass evaluates the next ``variants`` edges of a reader as ``variants`` circuits,
    the ``j``-th with edges 1..j of the block cut on top of the current circuit. The walk then
    reads the values in order, exactly as the one-edge-at-a-time visit would, until it keeps
    an edge; the variants after that assumed a cut that did not happen, and the next block
    starts there. As readers are visited from the last layer back, no edge into an earlier
    layer is cut yet, so a pass can start at the reader's layer from the clean run's
    outputs before it (``resume``). ``incremental`` goes further: it keeps the current
    circuit's every output and input and recomputes, for each tested edge, only the
    components whose inputs the cut changes through edges still kept (:class:`_CircuitState`).
    ``variants=1, resume=False, incremental=False`` is the plain visit, one full forward pass
    per edge; every setting returns the same circuit (up to float rounding).

    On a CPU a batch of variants costs as much per variant as separate passes (the work is
    arithmetic, not launch overhead), so there the default is the incremental visit, one edge
    at a time; on a GPU, where a small pass is launch-bound, 16 variants per full pass.

    Args:
        graph: the model's computation graph.
        prompts: clean/corrupted pairs.
        threshold: share of the clean-corrupted metric gap an edge may move and still be cut.
        metric: ``logit_diff``, ``kl`` or a function.
        variants: how many candidate edges one forward pass evaluates (>= 1; default 16 on
            a GPU, 1 on a CPU).
        resume: start each pass at the reader's layer from the clean run's outputs, instead
            of at the embeddings.
        incremental: recompute only what each cut changes (needs ``variants=1`` and
            ``resume``; default on a CPU). Holds one input per reader and one output per
            writer for the prompts, about ``n_readers + n_writers`` times a layer's
            residual stream.

    Raises:
        ConfigError: a negative threshold, a bad ``variants``, or ``incremental`` with
            ``variants > 1`` or without ``resume``.
    """
    if threshold < 0:
        raise ConfigError(f"threshold must be >= 0, got {threshold}")
    on_gpu = graph.params["W_E"].device.type == "cuda"
    if variants is None:
        variants = 16 if on_gpu and not incremental else 1
    if not isinstance(variants, int) or variants < 1:
        raise ConfigError(f"variants must be a positive integer, got {variants!r}")
    if incremental is None:
        incremental = variants == 1 and resume and not on_gpu
    if incremental and (variants != 1 or not resume):
        raise ConfigError(f"incremental ACDC tests one edge at a time from its reader's layer: "
                          f"it needs variants=1 and resume=True, got variants={variants}, "
                          f"resume={resume}")
    started = time.perf_counter()
    fn, clean_out, corr_out, clean_m, corr_m = _runs(graph, prompts, metric)
    gap = clean_m - corr_m
    mask = graph.full_mask()
    scores = torch.zeros(len(graph.edges))
    current = clean_m
    passes = 2
    state = _CircuitState(graph, clean_out, corr_out, mask) if incremental else None
    by_reader: dict[str, list[int]] = {}
    by_writer: dict[str, list[int]] = {}
    for i, e in enumerate(graph.edges):  # edges are in writer order within each reader
        by_reader.setdefault(e.reader, []).append(i)
        by_writer.setdefault(e.writer, []).append(i)
    for reader in reversed(graph.readers):
        node = graph.node_of(reader)
        queue = list(reversed(by_reader.get(reader, [])))  # latest writer first
        alive = node == "logits" or bool((mask[by_writer.get(node, [])] > 0).any())
        if not alive:  # nothing downstream listens: its inputs do not matter
            mask[queue] = 0
            continue
        layer = _reader_layer(graph, reader) if resume else 0
        while queue and state is not None:
            i = queue.pop(0)
            value, change = state.try_cut(i, layer, fn, prompts)
            passes += 1
            value = current if value is None else value
            scores[i] = abs(value - current) / abs(gap)
            if scores[i] < threshold:
                current = value
                mask[i] = 0
                state.commit(change)
        while queue:
            block = queue[:variants]
            masks = mask.repeat(len(block), 1)
            for j in range(len(block)):
                masks[j:, block[j]] = 0  # variant j cuts block[0..j]
            values = _variant_metrics(graph, prompts, masks, corr_out, fn, layer, clean_out)
            passes += 1
            visited = 0
            for i, value in zip(block, values, strict=True):
                visited += 1
                change = abs(value - current) / abs(gap)
                scores[i] = change
                if change < threshold:
                    current = value
                    mask[i] = 0
                else:  # kept: the later variants assumed it cut
                    break
            queue = queue[visited:]
    return EdgeScores("acdc", graph.edges, scores, mask > 0, clean_m, corr_m,
                      time.perf_counter() - started, passes)
