"""Weight interventions on GPT-2's architecture (the offline stand-in): parameter patching of
a head (slices of the fused q/k/v projection and of the output projection, both ``Conv1D``)
and of an MLP, and a rank-one edit of the MLP's output projection, checked exactly."""

from __future__ import annotations

import copy

import pytest
import torch
from gpt2_standin import save_standin

from mechinterp.errors import ShapeError
from mechinterp.interventions import HeadAblation, MLPAblation
from mechinterp.interventions.weights import ParameterPatch, RankOneEdit, component_parameters
from mechinterp.pretrained import load_pretrained, natural_corpus


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2-weights")
    save_standin(folder, natural_corpus())
    return load_pretrained(str(folder), device="cpu")


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _perturbed(model, component: str, seed: int = 0):
    """A copy of ``model`` whose ``component`` weights alone are changed."""
    other = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param, index in component_parameters(other, component).values():
            param[index] += 0.3 * torch.randn(param[index].shape, generator=g)
    return other


TOKENS = torch.arange(2, 14).view(2, 6)


@pytest.mark.parametrize("component", ["L1.H2", "L0.mlp"])
def test_patching_a_component_moves_exactly_its_weights(gpt2, component):
    before = _state(gpt2)
    source = _perturbed(gpt2, component)
    with torch.no_grad():
        want, base = source(TOKENS), gpt2(TOKENS)
    assert not torch.allclose(want, base, atol=1e-4)  # the component matters
    with ParameterPatch(component, source).applied(gpt2):
        with torch.no_grad():
            got = gpt2(TOKENS)
        # the patched model is the source model: every weight outside the component is equal
        assert torch.allclose(got, want, atol=1e-5)
        changed = {k for k, v in gpt2.state_dict().items() if not torch.equal(v, before[k])}
        assert changed and all((".attn." in k) == (component != "L0.mlp") for k in changed)
        assert all(f"blocks.{component[1]}." in k or f".h.{component[1]}." in k
                   for k in changed), changed
    assert all(torch.equal(v, before[k]) for k, v in gpt2.state_dict().items())  # bit for bit


@pytest.mark.parametrize("component", ["L1.H2", "L0.mlp"])
def test_a_components_weights_act_only_through_that_component(gpt2, component):
    """Independent of how the slices are found: with the component's output zeroed, changing
    every weight said to belong to it changes nothing."""
    source = _perturbed(gpt2, component, seed=3)
    ablate = HeadAblation(1, 2) if component == "L1.H2" else MLPAblation(0)
    with torch.no_grad():
        with ablate.applied(gpt2):
            mine = gpt2(TOKENS)
        with ablate.applied(source):
            theirs = source(TOKENS)
    assert torch.allclose(mine, theirs, atol=1e-5)


def test_a_head_patch_touches_only_that_heads_slice_of_the_fused_projection(gpt2):
    qkv = gpt2.blocks[1].attn.qkv.original_component.weight  # Conv1D: (d_model, 3 * d_model)
    before = qkv.detach().clone()
    d_head, d_model = gpt2.cfg.d_head, gpt2.cfg.d_model
    with ParameterPatch("L1.H2", _perturbed(gpt2, "L1.H2")).applied(gpt2):
        moved = (qkv != before).any(0).nonzero().flatten()
    expected = torch.cat([torch.arange(2 * d_head, 3 * d_head) + part * d_model
                          for part in range(3)])
    assert torch.equal(moved, expected)


def test_a_rank_one_edit_moves_the_mlp_output_by_the_closed_form(gpt2):
    d_model, d_mlp = gpt2.cfg.d_model, gpt2.cfg.d_mlp
    g = torch.Generator().manual_seed(1)
    u, v = torch.randn(d_model, generator=g), torch.randn(d_mlp, generator=g)
    update = torch.outer(u, v) * 0.05
    hooks = ["blocks.0.mlp.hook_post", "blocks.0.hook_mlp_out"]
    conv = gpt2.blocks[0].mlp.out.original_component.weight  # Conv1D: (d_mlp, d_model)
    original = conv.detach().clone()
    with torch.no_grad():
        _, clean = gpt2.run_with_cache(TOKENS, names_filter=hooks)
        with RankOneEdit(0, update).applied(gpt2):
            assert torch.linalg.matrix_rank(conv - original).item() == 1
            assert torch.allclose((conv - original).T, update, atol=1e-6)
            _, edited = gpt2.run_with_cache(TOKENS, names_filter=hooks)
    assert torch.equal(conv, original)
    keys = clean["blocks.0.mlp.hook_post"]
    assert torch.allclose(edited["blocks.0.hook_mlp_out"] - clean["blocks.0.hook_mlp_out"],
                          keys @ update.T, atol=1e-5)
    with pytest.raises(ShapeError, match=r"\(d_model, d_mlp\)"):
        RankOneEdit(0, update.T).apply(gpt2)


def _cache(model, hooks):
    with torch.no_grad():
        return model.run_with_cache(TOKENS, names_filter=hooks)[1]


def test_every_hook_intervention_does_exactly_what_it_says_on_gpt2(gpt2):
    """Steering, clamps and ablations on GPT-2's architecture, each checked at its hook, and
    the model unchanged afterwards."""
    from mechinterp.interventions import (
        DirectionalAblation,
        DirectionClamp,
        NeuronClamp,
        SteeringIntervention,
    )

    d_model = gpt2.cfg.d_model
    g = torch.Generator().manual_seed(2)
    vector = torch.randn(d_model, generator=g)
    unit = vector / vector.norm()
    before = _state(gpt2)
    resid = "blocks.1.hook_resid_pre"
    clean = _cache(gpt2, [resid])[resid]
    checks = [
        (NeuronClamp(0, [3, 7], [0.5, -1.0]), "blocks.0.mlp.hook_post",
         lambda a: torch.equal(a[..., 3], torch.full_like(a[..., 3], 0.5))
         and torch.equal(a[..., 7], torch.full_like(a[..., 7], -1.0))),
        (HeadAblation(1, 2), "blocks.1.attn.hook_z", lambda a: bool((a[:, :, 2] == 0).all())),
        (MLPAblation(0), "blocks.0.hook_mlp_out", lambda a: bool((a == 0).all())),
        (SteeringIntervention(resid, vector, 2.0), resid,
         lambda a: torch.allclose(a - clean, 2.0 * vector.expand_as(a), atol=1e-5)),
        (DirectionClamp(resid, vector, 1.5), resid,
         lambda a: torch.allclose(a @ unit, torch.full(a.shape[:2], 1.5), atol=1e-4)),
        (DirectionalAblation({resid: vector}), resid,
         lambda a: bool((a @ unit).abs().max() < 1e-4)),
    ]
    for intervention, hook, holds in checks:
        with intervention.applied(gpt2):
            assert holds(_cache(gpt2, [hook])[hook]), intervention.name
    assert all(torch.equal(v, before[k]) for k, v in gpt2.state_dict().items())
