import pytest
import torch

from mechinterp.circuits.capture import (
    attention_patterns,
    capture,
    direct_logit_attribution,
    neuron_activations,
    plot_attention,
    plot_direct_logit_attribution,
    plot_top_neurons,
    top_neurons,
)
from mechinterp.circuits.metrics import logit_diff
from mechinterp.circuits.scoring import ground_truth, head_diagnostics
from mechinterp.errors import ConfigError, ShapeError
from mechinterp.toyworld import build_toy_model, default_tokenizer, get_task, load_toy_model


@pytest.fixture(scope="module")
def induction_model():
    """The attention-only model as the quick profile trains it (shared with test_circuits in
    one session's cache: about 25 s for whichever file needs it first)."""
    return load_toy_model("attn-only-2l").model


@pytest.fixture(scope="module")
def mlp_model():
    """An untrained toyworld-2l: the DLA identity and the neuron plumbing hold for any weights,
    and training it takes minutes."""
    return build_toy_model("toyworld-2l", seed=1).eval()


def test_capture_returns_asked_hooks_and_names_bad_ones(mlp_model):
    tokens = get_task("ioi").prompts(4).clean
    acts = capture(mlp_model, tokens, ["blocks.1.hook_resid_post", "blocks.0.attn.hook_z"])
    assert list(acts) == ["blocks.1.hook_resid_post", "blocks.0.attn.hook_z"]
    assert acts["blocks.0.attn.hook_z"].shape == (4, tokens.shape[1], 4, 16)
    assert not acts["blocks.1.hook_resid_post"].requires_grad
    one = capture(mlp_model, tokens[0], "hook_embed")["hook_embed"]  # a 1-D prompt is a batch of 1
    assert one.shape == (1, tokens.shape[1], 64)
    assert "blocks.0.hook_mlp_out" in capture(mlp_model, tokens)
    with pytest.raises(ConfigError, match=r"unknown hook names.*blocks\.0\.attn\.hook_z"):
        capture(mlp_model, tokens, ["blocks.0.attn.hook_zz"])
    with pytest.raises(ConfigError, match="do not fire"):  # in hook_dict, gated off
        capture(mlp_model, tokens, "blocks.0.attn.hook_result")
    with pytest.raises(ShapeError, match="context"):
        capture(mlp_model, torch.zeros(1, 64, dtype=torch.long), "hook_embed")


def test_attention_patterns_are_causal_distributions_and_find_the_previous_token_head(
        induction_model):
    prompts = get_task("induction").prompts(16, seed=1)
    patterns = attention_patterns(induction_model, prompts)
    pos = prompts.clean.shape[1]
    assert patterns.shape == (16, 2, 4, pos, pos)
    assert torch.allclose(patterns.sum(-1), torch.ones(16, 2, 4, pos), atol=1e-5)
    assert patterns.triu(diagonal=1).abs().max() == 0
    previous = patterns.diagonal(offset=-1, dim1=-2, dim2=-1).mean((0, 3))  # layer head
    layer, head = divmod(int(previous.argmax()), previous.shape[1])
    assert layer == 0 and previous[layer, head] > 0.5
    assert torch.allclose(previous, head_diagnostics(induction_model, prompts)["previous_token"],
                          atol=1e-6)
    labels = default_tokenizer().decode(prompts.clean[0]).split()
    fig = plot_attention(patterns[0], labels, title="induction")
    assert len(fig.axes) == 2 * 4 + 1  # every head and a shared colour bar
    with pytest.raises(ShapeError, match="index a prompt"):
        plot_attention(patterns, labels)
    with pytest.raises(ShapeError, match="labels"):
        plot_attention(patterns[0], labels[:-1])


def test_direct_logit_attribution_adds_up_to_the_logit_difference(mlp_model):
    prompts = get_task("ioi").prompts(16)
    dla = direct_logit_attribution(mlp_model, prompts)
    assert dla.names[:6] == ["embed", "L0.H0", "L0.H1", "L0.H2", "L0.H3", "L0.mlp"]
    assert {"L1.mlp", "L1.b_O", "ln_final.b", "b_U"} <= set(dla.names)
    assert dla.contributions.shape == (len(dla.names), 16)
    with torch.no_grad():
        expected = logit_diff(mlp_model(prompts.clean), prompts)
    assert float(dla.logit_diff.mean()) == pytest.approx(float(expected), abs=1e-5)
    assert torch.allclose(dla.total(), dla.logit_diff, atol=1e-4)
    assert dla.logit_diff.abs().max() > 1e-3  # not trivially zero
    b_u = mlp_model.b_U.detach()
    assert torch.allclose(dla.contributions[dla.names.index("b_U")],
                          b_u[prompts.answer] - b_u[prompts.wrong])
    heads = dla.contributions[[dla.names.index(f"L{layer}.H{h}") for layer in range(2) for h in range(4)]]
    assert torch.allclose(dla.heads().flatten(), heads.mean(1), atol=1e-6)
    corrupted = direct_logit_attribution(mlp_model, prompts, which="corrupted")
    assert torch.allclose(corrupted.total(), corrupted.logit_diff, atol=1e-4)
    assert not torch.allclose(corrupted.logit_diff, dla.logit_diff)
    fig = plot_direct_logit_attribution(dla, title="ioi")
    assert len(fig.axes) == 3  # heads heatmap, its colour bar, the other components
    with pytest.raises(ConfigError, match="which"):
        direct_logit_attribution(mlp_model, prompts, which="both")


def test_direct_logit_attribution_credits_the_induction_heads(induction_model):
    prompts = get_task("induction").prompts(16, seed=1)
    dla = direct_logit_attribution(induction_model, prompts)
    assert "L0.mlp" not in dla.names  # attention-only
    assert torch.allclose(dla.total(), dla.logit_diff, atol=1e-4)
    truth = ground_truth(induction_model, prompts)
    means = dla.mean()
    best = max(means, key=means.get)
    assert best.startswith("L1.H") and best in truth.nodes
    assert dla.heads().shape == (2, 4)


def test_neuron_activations_and_top_neurons(mlp_model, induction_model):
    prompts = get_task("toxicity").prompts(8)
    acts = neuron_activations(mlp_model, prompts.clean, 1)
    pre = capture(mlp_model, prompts.clean, "blocks.1.mlp.hook_pre")["blocks.1.mlp.hook_pre"]
    assert acts.shape == (8, prompts.clean.shape[1], 256)
    assert torch.allclose(acts, torch.nn.functional.gelu(pre), atol=1e-5)  # after the GELU
    ranking = top_neurons(mlp_model, prompts, 1, k=5)  # clean against corrupted
    base = neuron_activations(mlp_model, prompts.corrupted, 1)[:, -1].mean(0)
    difference = acts[:, -1].mean(0) - base
    assert torch.allclose(ranking.scores, difference.topk(5).values, atol=1e-6)
    assert torch.equal(ranking.indices, difference.topk(5).indices)
    assert (ranking.scores[:-1] >= ranking.scores[1:]).all()
    same = top_neurons(mlp_model, prompts.clean, 1, k=3, baseline=prompts.clean, position=None)
    assert same.scores.abs().max() < 1e-6
    alone = top_neurons(mlp_model, prompts.clean, 0, k=4)
    assert alone.baseline_mean is None and torch.equal(alone.scores, alone.mean.topk(4).values)
    assert len(plot_top_neurons(ranking, labels=("trigger", "calm")).axes) == 2
    assert len(plot_top_neurons(alone).axes) == 1
    with pytest.raises(ConfigError, match="attention-only"):
        neuron_activations(induction_model, prompts.clean, 0)
    with pytest.raises(ConfigError, match="layer"):
        neuron_activations(mlp_model, prompts.clean, 2)
    with pytest.raises(ConfigError, match="k must be"):
        top_neurons(mlp_model, prompts, 1, k=0)
