"""Baselines, scoring helpers, EAP-IG and the discovery benchmark runner."""

import pytest
import torch

from mechinterp.circuits import (
    CircuitTruth,
    ComputationGraph,
    baseline_scores,
    component_edge_scores,
    discover_circuit,
    eap_ig,
    precision_recall,
    roc_auc,
    run_discovery_benchmark,
)
from mechinterp.circuits.baselines import baseline_circuit_nodes
from mechinterp.errors import ConfigError
from mechinterp.siit import SIITConfig, get_siit_task
from mechinterp.toyworld import get_task, load_toy_model


def test_scoring_helpers_by_hand():
    scores = {"a -> L1.H0.q": 0.5, "a -> L1.H0.k": -0.25, "a -> L1.mlp": 1.0, "b -> logits": -2}
    assert component_edge_scores(scores) == {"a -> L1.H0": 0.75, "a -> L1.mlp": 1.0,
                                             "b -> logits": 2.0}
    assert precision_recall({"x", "y", "z", "w"}, {"x", "q"}) == (0.25, 0.5)
    assert precision_recall(set(), {"x"}) == (0.0, 0.0)
    assert roc_auc({"p": 3, "n1": 1, "n2": 3}, {"p"}) == 0.75


def test_baselines():
    model = load_toy_model("attn-only-2l").model
    graph = ComputationGraph(model)
    prompts = get_task("induction").prompts(16, seed=1)
    nodes, edges = baseline_scores("weight_norm", model, graph, prompts)
    ov = model.W_V[1, 2].detach() @ model.W_O[1, 2].detach()
    assert nodes["L1.H2"] == pytest.approx(float(ov.norm()), rel=1e-5)
    assert edges["embed -> L1.H2"] == pytest.approx(float(model.W_E.detach().norm()) * nodes["L1.H2"],
                                                    rel=1e-5)
    assert len(nodes) == 8 and len(edges) == len({(e.writer, graph.node_of(e.reader))
                                                  for e in graph.edges})
    first, _ = baseline_scores("random", model, graph, prompts, seed=4)
    again, _ = baseline_scores("random", model, graph, prompts, seed=4)
    assert first == again != baseline_scores("random", model, graph, prompts, seed=5)[0]
    attention, _ = baseline_scores("attention", model, graph, prompts)
    # the layer-0 head that attends to the previous token scores near 1
    assert max(attention[f"L0.H{h}"] for h in range(4)) > 0.5
    assert baseline_circuit_nodes(nodes) == set(sorted(nodes, key=lambda n: -nodes[n])[:2])
    with pytest.raises(ConfigError, match="unknown baseline"):
        baseline_scores("oracle", model, graph, prompts)


def test_eap_ig_is_complete_along_the_embedding_path():
    """Integrated gradients add up: the scores of the edges out of the embeddings sum to the
    whole clean-corrupted gap (1 after normalising) as the path is sampled finely."""
    model = load_toy_model("attn-only-2l").model
    graph = ComputationGraph(model)
    prompts = get_task("induction").prompts(16, seed=1)
    scored = eap_ig(graph, prompts, steps=64)
    from_embed = torch.tensor([e.writer == "embed" for e in graph.edges])
    assert float(scored.scores[from_embed].sum()) == pytest.approx(1.0, abs=0.02)
    coarse = eap_ig(graph, prompts, steps=1)
    assert abs(float(coarse.scores[from_embed].sum()) - 1) > 0.02  # one point is not enough
    with pytest.raises(ConfigError, match="steps"):
        eap_ig(graph, prompts, steps=0)


def test_discovery_scored_against_a_truth_and_benchmark_skips_failed_models():
    from transformer_lens import TransformerBridge

    from mechinterp.siit.training import default_arch, draw_alignment

    task = get_siit_task("siit-histogram")
    arch = default_arch(task)
    model = TransformerBridge.boot_native(arch.bridge_config(0, "t"), device="cpu").eval()
    alignment = draw_alignment(task, arch, 0)
    truth = CircuitTruth(frozenset(alignment.values()),
                         frozenset({f"embed -> {alignment['count_x']}"}), "siit")
    prompts = task.prompts(16, seed=1)
    found = discover_circuit(model, prompts, "weight_norm", truth=truth,
                             heldout=task.prompts(16, seed=2))
    assert found.ground_truth == "siit" and 0 <= found.roc_auc <= 1
    assert found.edge_roc_auc is not None and set(found.precision) == {"nodes", "edges"}
    assert found.circuit.meta["faithfulness_prompts"] == "held out"
    run = run_discovery_benchmark(["siit-histogram"], [0], ("random", "eap"),
                                  config=SIITConfig(steps=2, batch_size=8), n_prompts=16)
    assert not run.verification["siit-histogram", 0]["passed"] and run.rows == []
    run = run_discovery_benchmark(["siit-histogram"], [0], ("random", "eap"),
                                  config=SIITConfig(steps=2, batch_size=8), n_prompts=16,
                                  require_verified=False)
    table = run.aggregate()
    assert table["siit-histogram", "random"]["node_auc"] == pytest.approx(0.5, abs=0.1)
    assert table["siit-histogram", "eap"]["edge_auc"] is not None
    assert run.graphs["siit-histogram"]["component_edges"] >= 150
    assert run.graphs["siit-histogram"]["nodes"] >= 20


def test_a_method_scores_high_only_against_the_circuit_that_was_built():
    """The scorer reads the built circuit: the same attribution scores that rank the shipped
    model's circuit first rank a circuit moved onto other heads no better than chance."""
    from mechinterp.siit import load_siit_models

    siit = load_siit_models("siit-ioi", [1])[0]
    task = get_siit_task("siit-ioi")
    found = discover_circuit(siit.model, task.prompts(32, seed=1), "attribution",
                             truth=siit.truth())
    assert found.roc_auc >= 0.9
    circuit = siit.circuit_nodes
    others = sorted(n for n in found.node_scores if n not in circuit and ".H" in n)
    moved = set(others[: len(circuit)])  # as many components, none of them in the circuit
    assert roc_auc(found.node_scores, moved) <= 0.6
