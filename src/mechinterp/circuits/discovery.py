"""Circuit discovery end to end: run one method on a task, cut a circuit, score it.

:func:`discover_circuit` turns any method into a :class:`CircuitGraph`:

* ``activation`` / ``attribution`` score components (heads and MLPs). The circuit keeps the
  components whose normalised score reaches ``threshold`` (default 0.1: alone, the component
  restores a tenth of the clean-corrupted gap), with every edge between them, from the
  embeddings and into the logits.
* ``eap`` and ``eap-ig`` score edges; the circuit keeps edges whose normalised score reaches
  ``threshold`` (default 0.02).
* ``acdc`` prunes edges itself (``threshold`` is its pruning threshold, default 0.02).
* the baselines ``random``, ``weight_norm`` and ``attention``
  (:mod:`mechinterp.circuits.baselines`) score components and edges without patching; their
  circuit is their top quarter of components.

Every circuit is then scored the same way: *faithfulness* is the share of the metric gap the
circuit alone recovers when every edge outside it carries its corrupted output (1 = the clean
model, 0 = the corrupted one), measured on ``heldout`` prompts when given (prompts the method
never saw); where a :class:`~mechinterp.circuits.scoring.CircuitTruth` is given, *ROC AUC* of
the component scores and (for methods that score edges, baselines included) of the
component-edge scores against it, and the precision and recall of the circuit's components
and edges.

:func:`discover_task` does the same from names: a SIIT benchmark task
(:data:`mechinterp.siit.SIIT_TASKS`, ground truth by construction, verified), a toy-world
task (no ground truth: the older attention-pattern rule is only a baseline now), or a
pretrained model (``gpt2``, or a folder saved with ``save_pretrained``) run on the same task
written in English (:func:`mechinterp.pretrained.natural_prompts`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mechinterp.circuits.baselines import BASELINES, baseline_circuit_nodes, baseline_scores
from mechinterp.circuits.computation import ComputationGraph
from mechinterp.circuits.edges import (
    EdgeScores,
    acdc,
    circuit_metric,
    eap_ig,
    edge_attribution_patching,
)
from mechinterp.circuits.graph import CircuitGraph
from mechinterp.circuits.metrics import get_metric
from mechinterp.circuits.patching import activation_patching, attribution_patching
from mechinterp.circuits.scoring import (
    CircuitTruth,
    component_edge_scores,
    ground_truth,
    precision_recall,
    roc_auc,
)
from mechinterp.errors import ConfigError
from mechinterp.toyworld.tasks import TASKS, PromptSet, get_task

__all__ = ["Discovery", "discover_circuit", "discover_task", "DISCOVERY_METHODS",
           "ALL_METHODS", "DEFAULT_THRESHOLDS", "TASK_MODELS", "PRETRAINED_MODELS",
           "HEURISTIC_TASKS", "heuristic_truth", "WANG_2023_IOI_HEADS", "compare_with_wang"]

DISCOVERY_METHODS = ("activation", "attribution", "eap", "eap-ig", "acdc")
ALL_METHODS = DISCOVERY_METHODS + BASELINES
"""The discovery methods, then the baselines they are compared with."""
DEFAULT_THRESHOLDS = {"activation": 0.1, "attribution": 0.1, "eap": 0.02, "eap-ig": 0.02,
                      "acdc": 0.02}
TASK_MODELS = {"induction": "attn-only-2l", "ioi": "toyworld-2l", "facts": "toyworld-2l",
               "bias": "toyworld-2l", "toxicity": "toyworld-2l"}
"""The toy-world model trained for each toy-world task (the default of :func:`discover_task`)."""
WANG_2023_IOI_HEADS = {
    "name mover": ("L9.H6", "L9.H9", "L10.H0"),
    "s-inhibition": ("L7.H3", "L7.H9", "L8.H6", "L8.H10"),
    "induction": ("L5.H5", "L6.H9"),
    "duplicate token": ("L0.H1", "L3.H0"),
    "previous token": ("L2.H2", "L4.H11"),
}
"""Heads of GPT-2 small's IOI circuit as Wang et al. (2023) report them, by class (layer.head
written ``L{l}.H{h}``)."""
HEURISTIC_TASKS = ("induction", "ioi")
"""Toy-world tasks with an attention-pattern circuit (:func:`heuristic_truth`)."""
PRETRAINED_MODELS = ("gpt2", "gpt2-small", "gpt2-medium", "distilgpt2")
"""Hub names :func:`discover_task` accepts besides the toy models (they need the network once;
``gpt2-small`` is ``gpt2``)."""


@dataclass
class Discovery:
    """One method's circuit for one task and how good it is.

    Attributes:
        circuit: the circuit (its ``meta`` holds what produced it).
        node_scores: every head's and MLP's score.
        edge_scores: every graph edge's score (``eap``, ``eap-ig``, ``acdc``), else ``None``.
        roc_auc: AUC of ``node_scores`` against the true components (``None`` without a
            ground truth); edge_roc_auc: the same for component-edge scores (``None`` for the
            node-only methods ``activation`` and ``attribution``).
        faithfulness: share of the metric gap the circuit recovers on its own.
        seconds: wall time of the method (not of the scoring).
        precision, recall: of the circuit's ``nodes`` and ``edges`` against the truth.
        ground_truth: how the truth is known (``siit``), ``None`` without one.
        verification: the SIIT model's causal checks, where there is one.
        reference: for GPT-2 small on IOI, the comparison with Wang et al.'s heads
            (:func:`compare_with_wang`).
    """

    circuit: CircuitGraph
    node_scores: dict[str, float]
    edge_scores: dict[str, float] | None
    roc_auc: float | None
    edge_roc_auc: float | None
    faithfulness: float
    seconds: float
    precision: dict[str, float] = field(default_factory=dict)
    recall: dict[str, float] = field(default_factory=dict)
    ground_truth: str | None = None
    verification: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """The numbers, as the command line prints them."""
        meta = self.circuit.meta
        return {"task": meta.get("task"), "method": meta.get("method"), "model": meta.get("model"),
                "seed": meta.get("seed"), "ground_truth": self.ground_truth,
                "roc_auc": self.roc_auc, "edge_roc_auc": self.edge_roc_auc,
                "precision": self.precision or None, "recall": self.recall or None,
                "verification": self.verification, "reference_heads": self.reference,
                "faithfulness": self.faithfulness,
                "faithfulness_prompts": meta.get("faithfulness_prompts"),
                "n_nodes": self.circuit.n_nodes, "n_edges": self.circuit.n_edges,
                "seconds": self.seconds, "threshold": meta.get("threshold"),
                "n_prompts": meta.get("n_prompts"), "clean_metric": meta.get("clean_metric"),
                "corrupted_metric": meta.get("corrupted_metric")}


def _check_method(method: str) -> None:
    if method not in ALL_METHODS:
        raise ConfigError(f"unknown discovery method {method!r}; methods: "
                          f"{list(DISCOVERY_METHODS)}, baselines: {list(BASELINES)}")


def _node_circuit(graph: ComputationGraph, kept: set[str]) -> list[str]:
    """Every graph edge from a kept component (or the embeddings) into a kept component (or
    the logits)."""
    writers, readers = kept | {"embed"}, kept | {"logits"}
    return [e.name for e in graph.edges
            if e.writer in writers and graph.node_of(e.reader) in readers]


def _score(discovery: Discovery, truth: CircuitTruth, component_edges: dict[str, float] | None
           ) -> None:
    discovery.ground_truth = truth.source
    discovery.roc_auc = roc_auc(discovery.node_scores, set(truth.nodes))
    # a truth whose edges name q/k/v inputs is compared input by input
    by_input = any(e.endswith((".q", ".k", ".v")) for e in truth.edges)
    edges = discovery.edge_scores if by_input else component_edges
    if edges is not None:
        discovery.edge_roc_auc = roc_auc(edges, set(truth.edges))
    found_nodes = {n.name for n in discovery.circuit.nodes if n.name not in ("embed", "logits")}
    found_edges = set(discovery.circuit.edge_names()) if by_input else \
        set(component_edge_scores({e: 1.0 for e in discovery.circuit.edge_names()}))
    for key, found, true in (("nodes", found_nodes, truth.nodes),
                             ("edges", found_edges, truth.edges)):
        discovery.precision[key], discovery.recall[key] = precision_recall(found, true)


def heuristic_truth(model, prompts: PromptSet) -> CircuitTruth | None:
    """The attention-pattern circuit of a toy-world ``induction`` or ``ioi`` prompt set
    (:func:`~mechinterp.circuits.scoring.ground_truth`), labelled ``attention-heuristic``;
    ``None`` for other tasks. Not a ground truth: kept so the toy-world pages can compare
    with what they showed before circuits were built by construction."""
    if prompts.task not in HEURISTIC_TASKS:
        return None
    rule = ground_truth(model, prompts)
    return CircuitTruth(frozenset(rule.nodes), frozenset(rule.edges), "attention-heuristic")


def discover_circuit(model, prompts: PromptSet, method: str, *, threshold: float | None = None,
                     metric: str = "logit_diff", model_name: str | None = None,
                     graph: ComputationGraph | None = None, truth: CircuitTruth | None = None,
                     heldout: PromptSet | None = None, seed: int | None = None,
                     score_truth: bool = True) -> Discovery:
    """Run ``method`` on ``prompts`` and return its circuit, scored.

    Args:
        model: a ``TransformerBridge`` in eval mode.
        prompts: clean/corrupted pairs of one task (what the method sees).
        method: one of :data:`ALL_METHODS`.
        threshold: where the circuit is cut (see the module docstring for defaults).
        metric: ``logit_diff`` or ``kl``.
        model_name: recorded in the circuit's ``meta``.
        graph: a ``ComputationGraph`` of ``model`` to reuse (built when omitted).
        truth: the ground-truth circuit to score against.
        score_truth: without ``truth``, score a toy-world ``induction`` or ``ioi`` prompt set
            against its attention-pattern circuit (:func:`heuristic_truth`).
        heldout: prompts for faithfulness that the method never saw (default ``prompts``).
        seed: recorded in ``meta`` (the model's seed); also the draw of ``random``.

    Raises:
        ConfigError: unknown method or metric, a negative threshold, or prompts on which the
            metric does not tell clean from corrupted.
    """
    _check_method(method)
    if method in BASELINES and threshold is not None:
        raise ConfigError(f"the {method} baseline has no threshold (it keeps its top quarter)")
    threshold = DEFAULT_THRESHOLDS.get(method) if threshold is None else float(threshold)
    if threshold is not None and threshold < 0:
        raise ConfigError(f"threshold must be >= 0, got {threshold}")
    graph = graph or ComputationGraph(model)
    started = time.perf_counter()
    edge_scores: dict[str, float] | None = None
    component_edges: dict[str, float] | None = None
    clean_m = corr_m = None
    if method in BASELINES:
        node_scores, component_edges = baseline_scores(method, model, graph, prompts,
                                                       seed=seed or 0)
        seconds = time.perf_counter() - started
        edge_names = _node_circuit(graph, baseline_circuit_nodes(node_scores))
    elif method in ("activation", "attribution"):
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
                              if method == "eap" else eap_ig(graph, prompts, metric=metric)
                              if method == "eap-ig" else
                              acdc(graph, prompts, threshold=threshold, metric=metric))
        seconds = time.perf_counter() - started
        node_scores = {k: v for k, v in scored.node_scores().items()
                       if k not in ("embed", "logits")}
        edge_scores = {e.name: float(s) for e, s in zip(scored.edges, scored.scores, strict=True)}
        component_edges = component_edge_scores(edge_scores)
        keep = scored.kept if scored.kept is not None else scored.scores.abs() >= threshold
        edge_names = [e.name for e, k in zip(scored.edges, keep.tolist(), strict=True) if k]
        clean_m, corr_m = scored.clean_metric, scored.corrupted_metric
    faith_prompts = heldout if heldout is not None else prompts
    meta = {"task": prompts.task, "method": method, "model": model_name, "seed": seed,
            "threshold": threshold, "metric": metric, "n_prompts": len(prompts),
            "clean_metric": clean_m, "corrupted_metric": corr_m,
            "faithfulness_prompts": "held out" if heldout is not None else "the same"}
    circuit = CircuitGraph.from_edges(edge_names, graph.n_layers, edge_scores=edge_scores,
                                      node_scores=node_scores, meta=meta)
    faithfulness = _faithfulness(graph, faith_prompts, circuit, metric)
    circuit.meta["faithfulness"] = faithfulness
    found = Discovery(circuit, node_scores, edge_scores, None, None, faithfulness, seconds)
    if truth is None and score_truth:
        truth = heuristic_truth(model, prompts)
    if truth is not None:
        _score(found, truth, component_edges)
    return found


@torch.no_grad()
def _faithfulness(graph: ComputationGraph, prompts: PromptSet, circuit: CircuitGraph,
                  metric: str) -> float:
    clean_logits, _, _ = graph.forward(prompts.clean)
    corr_logits, corr_out, _ = graph.forward(prompts.corrupted)
    fn = get_metric(metric, clean_logits)
    clean_m, corr_m = float(fn(clean_logits, prompts)), float(fn(corr_logits, prompts))
    kept = circuit_metric(graph, prompts, circuit.edge_mask(graph), corr_out, fn)
    return (kept - corr_m) / (clean_m - corr_m)


def compare_with_wang(node_scores: dict[str, float]) -> dict[str, Any]:
    """The method's top heads (as many as :data:`WANG_2023_IOI_HEADS` lists) against those
    heads: ``top_heads``, ``overlap`` (how many of them are listed), ``by_class`` (listed heads
    found per class) and ``chance`` (the overlap a random ranking of GPT-2 small's 144 heads
    would have on average)."""
    reference = {h: c for c, heads in WANG_2023_IOI_HEADS.items() for h in heads}
    heads = {k: v for k, v in node_scores.items() if ".H" in k}
    top = sorted(heads, key=lambda h: -abs(heads[h]))[:len(reference)]
    return {"top_heads": top, "overlap": sum(h in reference for h in top),
            "of": len(reference),
            "by_class": {c: [h for h in hs if h in top] for c, hs in WANG_2023_IOI_HEADS.items()},
            "chance": len(reference) ** 2 / max(len(heads), 1)}


def discover_task(task: str, method: str, *, model: str | None = None, n_prompts: int = 64,
                  prompt_seed: int = 1, model_seed: int = 0, threshold: float | None = None,
                  metric: str = "logit_diff", verify_model: bool = True) -> Discovery:
    """:func:`discover_circuit` on a task by name, with a model by name.

    Args:
        task: a SIIT task (:data:`mechinterp.siit.SIIT_TASKS`) or a toy-world task
            (:data:`mechinterp.toyworld.TASKS`).
        method: one of :data:`ALL_METHODS`.
        model: for a toy-world task, a toy-world model name (default :data:`TASK_MODELS`
            ``[task]``), a name in :data:`PRETRAINED_MODELS` or a folder holding a saved
            pretrained model; a SIIT task always uses its own SIIT-trained model.
        n_prompts: clean/corrupted pairs; prompt_seed: their seed. Faithfulness is measured on
            ``n_prompts`` other pairs (seed ``prompt_seed + 1000``) on SIIT tasks.
        model_seed: the model's training seed (trained once, then cached).
        verify_model: run the SIIT model's causal checks and report them.

    Raises:
        ConfigError: unknown task, method or model, or a toy model not trained on the task.
        DataError: a pretrained model that is neither cached nor downloadable.
    """
    from mechinterp.siit import SIIT_TASKS, get_siit_task, load_siit_models, verify
    from mechinterp.toyworld.models import TOY_MODELS, load_toy_model

    if task not in TASKS and task not in SIIT_TASKS:
        raise ConfigError(f"unknown task {task!r}; SIIT tasks (ground truth by construction): "
                          f"{sorted(SIIT_TASKS)}; toy-world tasks: {sorted(TASKS)}")
    _check_method(method)
    if n_prompts < 2:
        raise ConfigError(f"n_prompts must be at least 2, got {n_prompts}")
    if method in BASELINES and threshold is not None:
        raise ConfigError(f"the {method} baseline has no threshold (it keeps its top quarter)")
    if task in SIIT_TASKS:
        if model is not None:
            raise ConfigError(f"{task} runs on its own SIIT-trained model; choose it with "
                              "--seed, not --model")
        siit = load_siit_models(task, [model_seed])[0]
        spec = get_siit_task(task)
        device = next(siit.model.parameters()).device
        prompts = spec.prompts(n_prompts, seed=prompt_seed).to(device)
        heldout = spec.prompts(n_prompts, seed=prompt_seed + 1000).to(device)
        found = discover_circuit(siit.model, prompts, method, threshold=threshold,
                                 metric=metric, model_name=f"{task} (SIIT)", truth=siit.truth(),
                                 heldout=heldout, seed=model_seed)
        if verify_model:
            found.verification = verify(siit).summary()
        return found
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

        net = load_pretrained(name)  # gpt2-small is an alias of gpt2
        prompts = natural_prompts(task, pretrained_tokenizer(net), n_prompts, seed=prompt_seed)
    else:
        raise ConfigError(f"unknown model {name!r}; toy models: {sorted(TOY_MODELS)}; "
                          f"pretrained: {list(PRETRAINED_MODELS)} or a folder holding a saved "
                          "model")
    prompts = prompts.to(next(net.parameters()).device)
    found = discover_circuit(net, prompts, method, threshold=threshold, metric=metric,
                             model_name=name, seed=model_seed, score_truth=name in TOY_MODELS)
    if name in ("gpt2", "gpt2-small") and task == "ioi":
        found.reference = compare_with_wang(found.node_scores)
    return found
