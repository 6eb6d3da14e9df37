"""Circuit discovery end to end: run one method on a task, cut a circuit, score it.

:func:`discover_circuit` turns any of the four methods into a :class:`CircuitGraph`:

* ``activation`` / ``attribution`` score components (heads and MLPs). The circuit keeps the
  components whose normalised score reaches ``threshold`` (default 0.1: alone, the component
  restores a tenth of the clean-corrupted gap), with every edge between them, from the
  embeddings and into the logits.
* ``eap`` scores edges; the circuit keeps edges whose normalised score reaches ``threshold``
  (default 0.02).
* ``acdc`` prunes edges itself (``threshold`` is its pruning threshold, default 0.02).

Every circuit is then scored the same way: *faithfulness* is the share of the metric gap the
circuit alone recovers when every edge outside it carries its corrupted output (1 = the clean
model, 0 = the corrupted one), and, where the task has a planted ground truth (``induction``,
``ioi``), *ROC AUC* of the method's component scores (and edge scores, for edge methods)
against it.

:func:`discover_task` does the same from names: the task, the method and a toy-world model
(by default the one trained for the task), or a pretrained model (``gpt2``, or a folder saved
with ``save_pretrained``) run on the same task written in English
(:func:`mechinterp.pretrained.natural_prompts`). Ground truth is known only for the toy-world
models, so a pretrained model's ``roc_auc`` is ``None``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mechinterp.circuits.computation import ComputationGraph
from mechinterp.circuits.edges import EdgeScores, acdc, circuit_metric, edge_attribution_patching
from mechinterp.circuits.graph import CircuitGraph
from mechinterp.circuits.metrics import get_metric
from mechinterp.circuits.patching import activation_patching, attribution_patching
from mechinterp.circuits.scoring import ground_truth, roc_auc
from mechinterp.errors import ConfigError
from mechinterp.toyworld.tasks import TASKS, PromptSet, get_task

__all__ = ["Discovery", "discover_circuit", "discover_task", "DISCOVERY_METHODS",
           "DEFAULT_THRESHOLDS", "TASK_MODELS", "GROUND_TRUTH_TASKS", "PRETRAINED_MODELS"]

DISCOVERY_METHODS = ("activation", "attribution", "eap", "acdc")
DEFAULT_THRESHOLDS = {"activation": 0.1, "attribution": 0.1, "eap": 0.02, "acdc": 0.02}
TASK_MODELS = {"induction": "attn-only-2l", "ioi": "toyworld-2l", "facts": "toyworld-2l",
               "bias": "toyworld-2l", "toxicity": "toyworld-2l"}
"""The toy-world model trained for each task (the default of :func:`discover_task`)."""
GROUND_TRUTH_TASKS = ("induction", "ioi")
PRETRAINED_MODELS = ("gpt2", "gpt2-medium", "distilgpt2")
"""Hub names :func:`discover_task` accepts besides the toy models (they need the network once)."""


@dataclass
class Discovery:
    """One method's circuit for one task and how good it is.

    Attributes:
        circuit: the circuit (its ``meta`` holds what produced it).
        node_scores: every head's and MLP's score.
        edge_scores: every edge's score (edge methods only).
        roc_auc: AUC of ``node_scores`` against the planted components (``None`` without a
            ground truth); edge_roc_auc: the same for edges (edge methods only).
        faithfulness: share of the metric gap the circuit recovers on its own.
        seconds: wall time of the method (not of the scoring).
    """

    circuit: CircuitGraph
    node_scores: dict[str, float]
    edge_scores: dict[str, float] | None
    roc_auc: float | None
    edge_roc_auc: float | None
    faithfulness: float
    seconds: float

    def summary(self) -> dict[str, Any]:
        """The numbers, as the command line prints them."""
        meta = self.circuit.meta
        return {"task": meta.get("task"), "method": meta.get("method"), "model": meta.get("model"),
                "roc_auc": self.roc_auc, "edge_roc_auc": self.edge_roc_auc,
                "faithfulness": self.faithfulness, "n_nodes": self.circuit.n_nodes,
                "n_edges": self.circuit.n_edges, "seconds": self.seconds,
                "threshold": meta.get("threshold"), "n_prompts": meta.get("n_prompts"),
                "clean_metric": meta.get("clean_metric"),
                "corrupted_metric": meta.get("corrupted_metric")}


def _check_method(method: str) -> None:
    if method not in DISCOVERY_METHODS:
        raise ConfigError(f"unknown discovery method {method!r}; methods: "
                          f"{list(DISCOVERY_METHODS)}")


def _node_circuit(graph: ComputationGraph, kept: set[str]) -> list[str]:
    """Every graph edge from a kept component (or the embeddings) into a kept component (or
    the logits)."""
    writers, readers = kept | {"embed"}, kept | {"logits"}
    return [e.name for e in graph.edges
            if e.writer in writers and graph.node_of(e.reader) in readers]


def discover_circuit(model, prompts: PromptSet, method: str, *, threshold: float | None = None,
                     metric: str = "logit_diff", model_name: str | None = None,
                     graph: ComputationGraph | None = None, score_truth: bool = True
                     ) -> Discovery:
    """Run ``method`` on ``prompts`` and return its circuit, scored.

    Args:
        model: a ``TransformerBridge`` in eval mode.
        prompts: clean/corrupted pairs of one task.
        method: one of :data:`DISCOVERY_METHODS`.
        threshold: where the circuit is cut (see the module docstring for defaults).
        metric: ``logit_diff`` or ``kl``.
        model_name: recorded in the circuit's ``meta``.
        graph: a ``ComputationGraph`` of ``model`` to reuse (built when omitted).
        score_truth: compare with the planted circuit where the task has one (toy models).

    Raises:
        ConfigError: unknown method or metric, a negative threshold, or prompts on which the
            metric does not tell clean from corrupted.
    """
    _check_method(method)
    threshold = DEFAULT_THRESHOLDS[method] if threshold is None else float(threshold)
    if threshold < 0:
        raise ConfigError(f"threshold must be >= 0, got {threshold}")
    graph = graph or ComputationGraph(model)
    started = time.perf_counter()
    edge_scores: dict[str, float] | None = None
    if method in ("activation", "attribution"):
        components = ("heads",) if graph.attn_only else ("heads", "mlp")
        run = (activation_patching(model, prompts, components=components, metric=metric)
               if method == "activation" else attribution_patching(model, prompts, metric=metric))
        seconds = time.perf_counter() - started
        node_scores = run.node_scores()
        kept_nodes = {n for n, s in node_scores.items() if abs(s) >= threshold}
        edge_names = _node_circuit(graph, kept_nodes)
        clean_m, corr_m = run.clean_metric, run.corrupted_metric
    else:
        scored: EdgeScores = (edge_attribution_patching(graph, prompts, metric=metric)
                              if method == "eap" else
                              acdc(graph, prompts, threshold=threshold, metric=metric))
        seconds = time.perf_counter() - started
        node_scores = {k: v for k, v in scored.node_scores().items()
                       if k not in ("embed", "logits")}
        edge_scores = {e.name: float(s) for e, s in zip(scored.edges, scored.scores, strict=True)}
        keep = scored.kept if scored.kept is not None else scored.scores.abs() >= threshold
        edge_names = [e.name for e, k in zip(scored.edges, keep.tolist(), strict=True) if k]
        clean_m, corr_m = scored.clean_metric, scored.corrupted_metric
    meta = {"task": prompts.task, "method": method, "model": model_name, "threshold": threshold,
            "metric": metric, "n_prompts": len(prompts), "clean_metric": clean_m,
            "corrupted_metric": corr_m}
    circuit = CircuitGraph.from_edges(edge_names, graph.n_layers, edge_scores=edge_scores,
                                      node_scores=node_scores, meta=meta)
    faithfulness = _faithfulness(graph, prompts, circuit, metric)
    circuit.meta["faithfulness"] = faithfulness
    node_auc = edge_auc = None
    if score_truth and prompts.task in GROUND_TRUTH_TASKS:
        truth = ground_truth(model, prompts)
        node_auc = roc_auc(node_scores, truth.nodes)
        if edge_scores is not None:
            edge_auc = roc_auc(edge_scores, truth.edges)
    return Discovery(circuit, node_scores, edge_scores, node_auc, edge_auc, faithfulness,
                     seconds)


@torch.no_grad()
def _faithfulness(graph: ComputationGraph, prompts: PromptSet, circuit: CircuitGraph,
                  metric: str) -> float:
    clean_logits, _, _ = graph.forward(prompts.clean)
    corr_logits, corr_out, _ = graph.forward(prompts.corrupted)
    fn = get_metric(metric, clean_logits)
    clean_m, corr_m = float(fn(clean_logits, prompts)), float(fn(corr_logits, prompts))
    kept = circuit_metric(graph, prompts, circuit.edge_mask(graph), corr_out, fn)
    return (kept - corr_m) / (clean_m - corr_m)


def discover_task(task: str, method: str, *, model: str | None = None, n_prompts: int = 64,
                  prompt_seed: int = 1, model_seed: int = 0, threshold: float | None = None,
                  metric: str = "logit_diff") -> Discovery:
    """:func:`discover_circuit` on a task by name, with a model by name.

    Args:
        task: a toy-world task (see :data:`mechinterp.toyworld.TASKS`).
        method: one of :data:`DISCOVERY_METHODS`.
        model: a toy-world model name (default :data:`TASK_MODELS` ``[task]``), a name in
            :data:`PRETRAINED_MODELS` or a folder holding a saved pretrained model.
        n_prompts: clean/corrupted pairs; prompt_seed: their seed.
        model_seed: a toy model's training seed (trained once, then cached).

    Raises:
        ConfigError: unknown task, method or model, or a toy model not trained on the task.
        DataError: a pretrained model that is neither cached nor downloadable.
    """
    from mechinterp.toyworld.models import TOY_MODELS, load_toy_model

    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; tasks: {sorted(TASKS)}")
    _check_method(method)
    if n_prompts < 2:
        raise ConfigError(f"n_prompts must be at least 2, got {n_prompts}")
    name = model or TASK_MODELS[task]
    if name in TOY_MODELS:
        if task not in TOY_MODELS[name].mixture:
            raise ConfigError(f"model {name!r} was not trained on task {task!r} (its tasks: "
                              f"{sorted(TOY_MODELS[name].mixture)}); try --model "
                              f"{TASK_MODELS[task]}")
        net = load_toy_model(name, seed=model_seed).model
        prompts = get_task(task).prompts(n_prompts, seed=prompt_seed)
    elif name in PRETRAINED_MODELS or Path(name).is_dir():
        from mechinterp.pretrained import load_pretrained, natural_prompts, pretrained_tokenizer

        net = load_pretrained(name)
        prompts = natural_prompts(task, pretrained_tokenizer(net), n_prompts, seed=prompt_seed)
    else:
        raise ConfigError(f"unknown model {name!r}; toy models: {sorted(TOY_MODELS)}; "
                          f"pretrained: {list(PRETRAINED_MODELS)} or a folder holding a saved "
                          "model")
    prompts = prompts.to(next(net.parameters()).device)
    return discover_circuit(net, prompts, method, threshold=threshold, metric=metric,
                            model_name=name, score_truth=name in TOY_MODELS)
