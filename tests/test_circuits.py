import pytest
import torch

from mechinterp.circuits.computation import ComputationGraph
from mechinterp.circuits.edges import acdc, circuit_metric, edge_attribution_patching
from mechinterp.circuits.metrics import get_metric, logit_diff
from mechinterp.circuits.patching import activation_patching, attribution_patching
from mechinterp.circuits.scoring import faithfulness_curve, ground_truth, roc_auc
from mechinterp.errors import ConfigError, ShapeError
from mechinterp.toyworld import build_toy_model, get_task, load_toy_model


@pytest.fixture(scope="module")
def induction_model():
    """The attention-only model as the quick profile trains it (about half a minute)."""
    return load_toy_model("attn-only-2l").model


@pytest.mark.parametrize("name", ["toyworld-2l", "attn-only-2l"])
def test_graph_forward_reproduces_the_model_and_the_corrupted_run(name):
    model = build_toy_model(name, seed=1).eval()
    prompts = get_task("ioi").prompts(6)
    graph = ComputationGraph(model)
    with torch.no_grad():
        logits, _, _ = graph.forward(prompts.clean)
        _, corrupted, _ = graph.forward(prompts.corrupted)
        cut, _, _ = graph.forward(prompts.clean, torch.zeros(len(graph.edges)), corrupted)
        assert torch.allclose(logits, model(prompts.clean), atol=1e-4)
        assert torch.allclose(cut, model(prompts.corrupted), atol=1e-4)
    with pytest.raises(ShapeError, match="edge mask must have shape"):
        graph.forward(prompts.clean, torch.ones(3), corrupted)
    with pytest.raises(ConfigError, match="needs the corrupted run"):
        graph.forward(prompts.clean, torch.zeros(len(graph.edges)))
    with pytest.raises(ConfigError, match="no edge"):
        graph.edge_index("L1.H0", "L0.H0.q")


def test_a_batch_of_masks_runs_each_variant_as_its_own_pass():
    model = build_toy_model("toyworld-2l", seed=1).eval()
    prompts = get_task("ioi").prompts(5)
    graph = ComputationGraph(model)
    gen = torch.Generator().manual_seed(0)
    masks = (torch.rand(3, len(graph.edges), generator=gen) > 0.5).float()
    with torch.no_grad():
        _, corrupted, _ = graph.forward(prompts.corrupted)
        batched, _, _ = graph.forward(prompts.clean, masks, corrupted)
        for mask, chunk in zip(masks, batched.chunk(3), strict=True):
            alone, _, _ = graph.forward(prompts.clean, mask, corrupted)
            assert torch.allclose(chunk, alone, atol=1e-5)
        assert not torch.allclose(batched.chunk(3)[0], batched.chunk(3)[1], atol=1e-3)


def test_batched_acdc_returns_the_one_edge_at_a_time_circuit(induction_model):
    prompts = get_task("induction").prompts(16, seed=2)
    graph = ComputationGraph(induction_model)
    single = acdc(graph, prompts, threshold=0.02, variants=1, resume=False)
    assert 0 < single.kept.sum() < len(graph.edges) / 2
    for variants in (1, 4, 16):
        batched = acdc(graph, prompts, threshold=0.02, variants=variants)
        assert torch.equal(batched.kept, single.kept)
        assert torch.allclose(batched.scores, single.scores, atol=1e-4)
        assert (batched.forward_passes < single.forward_passes) == (variants > 1)
    with pytest.raises(ConfigError, match="variants"):
        acdc(graph, prompts, variants=0)


def test_the_incremental_state_follows_the_full_pass_cut_after_cut():
    """Each tested cut's metric equals a full pass with that cut on top of the committed ones,
    also when the change dies out before the logits (the metric then stays as it was)."""
    from mechinterp.circuits.edges import _CircuitState

    model = build_toy_model("toyworld-2l", seed=1).eval()  # heads and MLPs
    prompts = get_task("ioi").prompts(6)
    graph = ComputationGraph(model)
    metric = get_metric("logit_diff", model(prompts.clean))
    with torch.no_grad():
        _, clean, _ = graph.forward(prompts.clean)
        _, corrupted, _ = graph.forward(prompts.corrupted)
        mask = graph.full_mask()
        state = _CircuitState(graph, clean, corrupted, mask)
        current = float(metric(graph.forward(prompts.clean)[0], prompts))
        order = torch.randperm(len(graph.edges), generator=torch.Generator().manual_seed(0))
        silent = 0
        for edge in sorted(order[:60].tolist(), key=lambda e: -graph.edge_readers[e]):
            reader = graph.readers[int(graph.edge_readers[edge])]
            layer = graph.n_layers if reader == "logits" else int(reader.split(".")[0][1:])
            value, change = state.try_cut(edge, layer, metric, prompts)
            trial = mask.clone()
            trial[edge] = 0
            full = float(metric(graph.forward(prompts.clean, trial, corrupted)[0], prompts))
            silent += value is None
            assert (current if value is None else value) == pytest.approx(full, abs=1e-4)
            mask[edge] = 0
            state.commit(change)
            current = full
    assert silent > 0  # some cuts reached the logits through no kept edge


def test_incremental_acdc_returns_the_plain_circuit_on_a_model_with_mlps():
    from mechinterp.siit import get_siit_task, load_siit_models

    model = load_siit_models("siit-ioi", [0])[0].model
    prompts = get_siit_task("siit-ioi").prompts(16, seed=0)
    graph = ComputationGraph(model)
    plain = acdc(graph, prompts, variants=1, resume=False, incremental=False)
    fast = acdc(graph, prompts, incremental=True)
    assert 0 < plain.kept.sum() < len(graph.edges) / 4
    assert torch.equal(fast.kept, plain.kept)
    assert torch.allclose(fast.scores, plain.scores, atol=1e-4)
    with pytest.raises(ConfigError, match="variants=1 and resume=True"):
        acdc(graph, prompts, variants=4, incremental=True)
    with pytest.raises(ConfigError, match="variants=1 and resume=True"):
        acdc(graph, prompts, resume=False, incremental=True)


def test_patching_end_points_and_bad_inputs(induction_model):
    prompts = get_task("induction").prompts(16, seed=1)
    result = activation_patching(induction_model, prompts)
    end = prompts.positions["end"]
    # the clean residual stream at the last position after the last layer is the clean answer
    assert result.scores["resid"][-1, end] == pytest.approx(1.0, abs=1e-4)
    assert result.scores["resid"][0, 0].abs() < 1e-4  # <bos> is the same in both prompts
    noised = activation_patching(induction_model, prompts, direction="noise",
                                 components=("resid",))
    assert noised.scores["resid"][-1, end] == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ConfigError, match="direction"):
        activation_patching(induction_model, prompts, direction="sideways")
    with pytest.raises(ConfigError, match="unknown components"):
        activation_patching(induction_model, prompts, components=("attn",))
    induction_model.train()
    with pytest.raises(ConfigError, match="eval mode"):
        activation_patching(induction_model, prompts)
    induction_model.eval()


def test_every_head_at_every_position(induction_model):
    prompts = get_task("induction").prompts(8, seed=3)
    exact = activation_patching(induction_model, prompts, components=("head_positions",))
    approx = attribution_patching(induction_model, prompts)
    cfg = induction_model.cfg
    pos = prompts.clean.shape[1]
    grid = exact.scores["head_positions"]
    assert grid.shape == approx.scores["head_positions"].shape == (cfg.n_layers, cfg.n_heads, pos)
    assert exact.forward_passes == 2 + cfg.n_layers * cfg.n_heads * pos
    # before the first token where clean and corrupted differ, a head's output is the same in
    # both runs (attention is causal), so patching it there changes nothing
    first = int((prompts.clean != prompts.corrupted).any(0).nonzero()[0])
    assert first > 0
    assert grid[:, :, :first].abs().max() < 1e-5
    assert approx.scores["head_positions"][:, :, :first].abs().max() < 1e-5
    assert grid[:, :, first:].abs().max() > 0.05
    # the per-position estimate adds up to the per-head one
    assert torch.allclose(approx.scores["head_positions"].sum(-1), approx.scores["heads"],
                          atol=1e-5)


def test_every_method_finds_the_planted_induction_circuit(induction_model):
    prompts = get_task("induction").prompts(32, seed=1)
    truth = ground_truth(induction_model, prompts)
    assert any(n.startswith("L0") for n in truth.nodes)  # a previous-token head
    assert any(n.startswith("L1") for n in truth.nodes)  # an induction head
    graph = ComputationGraph(induction_model)
    activation = activation_patching(induction_model, prompts, components=("heads",))
    attribution = attribution_patching(induction_model, prompts)
    eap = edge_attribution_patching(graph, prompts)
    pruned = acdc(graph, prompts, threshold=0.02)
    heads = lambda scores: {k: v for k, v in scores.items() if ".H" in k}  # noqa: E731
    # a score that knows only each head's layer already reaches 0.9 here (every layer-1 head
    # is in the circuit): a method has to beat it, which takes finding the one previous-token
    # head among the layer-0 heads
    names = list(heads(activation.node_scores()))
    layer_only = {k: float(k.startswith("L1")) for k in names}
    structural = roc_auc(layer_only, truth.nodes)
    assert structural <= 0.9
    layer0 = [k for k in names if k.startswith("L0")]
    for scores in (activation.node_scores(), attribution.node_scores(),
                   heads(eap.node_scores())):
        assert roc_auc(scores, truth.nodes) > structural
        assert roc_auc({k: scores[k] for k in layer0}, truth.nodes) == 1.0
    edge_scores = {e.name: float(s) for e, s in zip(eap.edges, eap.scores, strict=True)}
    edge_layer_only = {k: float(" -> L1" in k or k.endswith("logits")) for k in edge_scores}
    assert roc_auc(edge_scores, truth.edges) >= 0.9
    assert roc_auc(edge_scores, truth.edges) > roc_auc(edge_layer_only, truth.edges) + 0.1
    # the pruned circuit keeps the behaviour it was pruned against
    fn = get_metric("logit_diff")
    _, corrupted, _ = graph.forward(prompts.corrupted)
    kept = circuit_metric(graph, prompts, pruned.kept.float(), corrupted, fn)
    share = (kept - pruned.corrupted_metric) / (pruned.clean_metric - pruned.corrupted_metric)
    assert share > 0.8 and pruned.kept.sum() < len(graph.edges) / 2
    # EAP's top edges alone recover most of the gap; as many edges in a random order, or the
    # least important ones first, recover almost none of it
    n = len(graph.edges)
    curve = dict(faithfulness_curve(graph, prompts, eap.scores, sizes=[16, n]))
    assert curve[n] == pytest.approx(1.0, abs=1e-4) and curve[16] > 0.85
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        shuffled = dict(faithfulness_curve(graph, prompts, torch.rand(n, generator=generator),
                                           sizes=[16]))
        assert shuffled[16] < curve[16] - 0.5
    least = dict(faithfulness_curve(graph, prompts, 1 / (eap.scores.abs() + 1e-9), sizes=[16]))
    assert abs(least[16]) < 0.1


def test_metrics_and_auc():
    logits = torch.zeros(2, 3, 5)
    logits[:, -1, 1] = 2.0
    prompts = get_task("bias").prompts(2)
    object.__setattr__(prompts, "answer", torch.tensor([1, 1]))
    object.__setattr__(prompts, "wrong", torch.tensor([0, 0]))
    assert float(logit_diff(logits, prompts)) == pytest.approx(2.0)
    assert float(get_metric("kl", logits)(logits, prompts)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ConfigError, match="unknown metric"):
        get_metric("accuracy")
    assert roc_auc({"a": 3, "b": 2, "c": 1}, {"a"}) == 1.0
    assert roc_auc({"a": 1, "b": 1}, {"a"}) == 0.5
    with pytest.raises(ConfigError, match="positives and negatives"):
        roc_auc({"a": 1}, {"a"})
