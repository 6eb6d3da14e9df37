"""Circuits in transformers: patching, attribution and automated discovery.

* :mod:`.capture`: activations, attention patterns, direct logit attribution, neurons, plots.
* :mod:`.metrics`: logit difference and KL metrics on clean/corrupted prompt pairs.
* :mod:`.patching`: activation patching and attribution patching over residual positions,
  heads and MLPs.
* :mod:`.computation`: the model as a graph of writers and readers, run edge by edge.
* :mod:`.edges`: edge attribution patching (plain and with integrated gradients) and
  ACDC-style pruning.
* :mod:`.baselines`: random scores, weight norms and the attention-pattern heuristic.
* :mod:`.scoring`: ground-truth circuits, ROC AUC, precision and recall, faithfulness curves.
* :mod:`.graph`: :class:`CircuitGraph`, a circuit with JSON, Graphviz DOT and networkx export.
* :mod:`.discovery`: one call from a task and a method to a scored circuit.
* :mod:`.benchmark`: every method and baseline on every SIIT task and model seed.
"""

from mechinterp.circuits.baselines import BASELINES, baseline_scores
from mechinterp.circuits.benchmark import BenchmarkRun, run_discovery_benchmark
from mechinterp.circuits.capture import (
    LogitAttribution,
    NeuronRanking,
    attention_patterns,
    capture,
    direct_logit_attribution,
    neuron_activations,
    plot_attention,
    plot_direct_logit_attribution,
    plot_top_neurons,
    top_neurons,
)
from mechinterp.circuits.computation import ComputationGraph, Edge
from mechinterp.circuits.discovery import (
    ALL_METHODS,
    DISCOVERY_METHODS,
    Discovery,
    discover_circuit,
    discover_task,
)
from mechinterp.circuits.edges import (
    EdgeScores,
    acdc,
    circuit_metric,
    eap_ig,
    edge_attribution_patching,
)
from mechinterp.circuits.graph import CircuitEdge, CircuitGraph, CircuitNode
from mechinterp.circuits.metrics import get_metric, kl_metric, logit_diff
from mechinterp.circuits.patching import (
    PatchingResult,
    activation_patching,
    attribution_patching,
)
from mechinterp.circuits.scoring import (
    CircuitTruth,
    GroundTruth,
    component_edge_scores,
    faithfulness_curve,
    ground_truth,
    head_diagnostics,
    precision_recall,
    roc_auc,
)

__all__ = [
    "ALL_METHODS",
    "BASELINES",
    "BenchmarkRun",
    "CircuitTruth",
    "DISCOVERY_METHODS",
    "CircuitEdge",
    "CircuitGraph",
    "CircuitNode",
    "ComputationGraph",
    "Discovery",
    "Edge",
    "LogitAttribution",
    "NeuronRanking",
    "EdgeScores",
    "GroundTruth",
    "PatchingResult",
    "acdc",
    "activation_patching",
    "attention_patterns",
    "attribution_patching",
    "baseline_scores",
    "component_edge_scores",
    "eap_ig",
    "precision_recall",
    "run_discovery_benchmark",
    "capture",
    "circuit_metric",
    "direct_logit_attribution",
    "discover_circuit",
    "discover_task",
    "edge_attribution_patching",
    "faithfulness_curve",
    "get_metric",
    "ground_truth",
    "head_diagnostics",
    "kl_metric",
    "logit_diff",
    "neuron_activations",
    "plot_attention",
    "plot_direct_logit_attribution",
    "plot_top_neurons",
    "roc_auc",
    "top_neurons",
]
