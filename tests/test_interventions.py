"""Interventions: exact rollback, the apply/remove protocol, what each family does to the
activations it targets, spec errors, and the issue's goal numbers on a toy model.

The toy model is ``toyworld-2l`` trained for 300 steps (the short schedule the benchmark tests
also use, so one run trains it once): it has learned the toxic words, the pronoun skew and the
facts. Goal numbers are measured with small local helpers at the last position (expected
shares, not samples) on the bare evaluation prompts, which the ready-made interventions never
saw while being fitted. The fact edit's paraphrase score needs the default 2,500-step model
(on which it is 0.97 over all sixteen subjects); this test checks efficacy and specificity.
"""

from __future__ import annotations

import pytest
import torch

from mechinterp.errors import ConfigError, ShapeError
from mechinterp.interventions import (
    KINDS,
    DirectionalAblation,
    DirectionClamp,
    HeadAblation,
    MLPAblation,
    NeuronClamp,
    ParameterPatch,
    RankOneEdit,
    SteeringIntervention,
    active_interventions,
    component_parameters,
    contrast_prompts,
    contrastive_vector,
    get_intervention,
    list_interventions,
    steering_vector,
)
from mechinterp.toyworld import build_toy_model, heldout_loss, load_toy_model
from mechinterp.toyworld.tasks import (
    FACT_TEMPLATES,
    FACTS,
    PRONOUN_SKEW,
    bias_prompts,
    fact_prompts,
    toxicity_contexts,
)

RESID = "blocks.1.hook_resid_pre"


@pytest.fixture(scope="module")
def toy():
    return load_toy_model("toyworld-2l")  # the shipped quick-profile model


@pytest.fixture(scope="module")
def ready(toy):
    return {name: get_intervention(name, toy) for name in list_interventions()}


@pytest.fixture(scope="module")
def probe(toy):
    texts = ["the angry man shouted at", "the nurse said that", "the colour of zorv is",
             "when alice and bob went to the store bob gave a drink to"]
    rows = [toy.tokenizer.encode(t) for t in texts]
    width = max(map(len, rows))
    return torch.tensor([r + [toy.tokenizer.pad_id] * (width - len(r)) for r in rows])


def logits(model, tokens):
    with torch.no_grad():
        return model(tokens)


def last_probs(toy, texts):
    tokens = torch.tensor([toy.tokenizer.encode(t) for t in texts])
    return logits(toy.model, tokens)[:, -1].softmax(-1)


def held_out_probs(toy, texts):
    """Next-token probabilities after each held-out prompt (one pass each: their lengths
    differ)."""
    return torch.cat([last_probs(toy, [t]) for t in texts])


def toxic_share(toy, adjectives: str = "trigger") -> float:
    """Expected share of toxic words sampled after the held-out contexts of one kind."""
    probs = held_out_probs(toy, [c for _, c in toxicity_contexts(adjectives)])
    return float(probs[:, toy.tokenizer.class_ids("toxic")].sum(-1).mean())


def bias_gap(toy) -> float:
    """Mean over professions of |P(he) - P(she)| / (P(he) + P(she)) on the held-out bias
    prompts (probabilities averaged over each profession's prompts)."""
    prompts = bias_prompts()
    probs = held_out_probs(toy, [t for _, t in prompts])
    he, she = (int(i) for i in toy.tokenizer.ids(["he", "she"]))
    gaps = []
    for profession in PRONOUN_SKEW:
        mine = [i for i, (p, _) in enumerate(prompts) if p == profession]
        p_he, p_she = probs[mine, he].mean(), probs[mine, she].mean()
        gaps.append(float((p_he - p_she).abs() / (p_he + p_she)))
    return sum(gaps) / len(gaps)


def colour_top1(toy, subjects, template) -> list[str]:
    probs = last_probs(toy, [template.format(s=s) for s in subjects])
    return [toy.tokenizer.vocab[int(i)] for i in probs.argmax(-1)]


def test_ready_made_list_covers_every_kind(ready):
    listed = list_interventions()
    assert set(listed) == set(ready) and all(listed.values())
    assert {i.kind for i in ready.values()} == set(KINDS)
    assert ready["fact-edit"].fact == ("zorv", "red", "blue")
    assert all(i.fact is None for n, i in ready.items() if n != "fact-edit")


@pytest.mark.parametrize("name", list(list_interventions()))
def test_every_ready_made_changes_the_model_and_rolls_back_exactly(toy, ready, probe, name):
    model, intervention = toy.model, ready[name]
    before = logits(model, probe)
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    with intervention.applied(model):
        assert intervention.is_applied(model) and active_interventions(model) == [intervention]
        changed = logits(model, probe)
        with pytest.raises(ConfigError, match="already applied"):
            intervention.apply(model)
    assert not torch.equal(changed, before)
    assert torch.equal(logits(model, probe), before)
    assert all(torch.equal(v, params[k]) for k, v in model.named_parameters())
    assert active_interventions(model) == []
    with pytest.raises(ConfigError, match="not applied"):
        intervention.remove(model)


def test_applied_removes_even_when_the_body_raises(toy, ready, probe):
    before = logits(toy.model, probe)
    with pytest.raises(RuntimeError), ready["fact-edit"].applied(toy.model):
        raise RuntimeError("boom")
    assert torch.equal(logits(toy.model, probe), before)


def test_weight_edits_must_be_removed_in_reverse_order(toy, ready, probe):
    model, edit = toy.model, ready["fact-edit"]
    other = RankOneEdit(0, torch.ones_like(edit.update) * 1e-3, name="other")
    before = logits(model, probe)
    edit.apply(model)
    other.apply(model)
    with pytest.raises(ConfigError, match="remove the interventions applied since"):
        edit.remove(model)
    other.remove(model)
    edit.remove(model)
    assert torch.equal(logits(model, probe), before)


def test_zero_strength_steering_changes_nothing(toy, probe):
    vector = torch.randn(toy.model.cfg.d_model)
    before = logits(toy.model, probe)
    for positions in ("all", "last", 2):
        with SteeringIntervention(RESID, vector, 0.0, positions=positions).applied(toy.model):
            assert torch.equal(logits(toy.model, probe), before)


def test_steering_vectors_and_positions(toy, probe):
    model, tok = toy.model, toy.tokenizer
    tokens = torch.tensor([tok.encode("the angry man shouted at")])
    assert torch.equal(steering_vector(model, tokens, tokens, RESID),
                       torch.zeros(model.cfg.d_model))
    trigger, calm = contrast_prompts("toxicity", tok)
    vector = contrastive_vector(model, trigger, calm, RESID)
    before = logits(model, probe)
    with SteeringIntervention(RESID, vector, -2.0, positions="last").applied(model):
        after = logits(model, probe)
    assert torch.equal(after[:, :-1], before[:, :-1]) and not torch.equal(after, before)
    calm_before, trigger_before = toxic_share(toy, "calm"), toxic_share(toy)
    with SteeringIntervention(RESID, vector, 1.0).applied(model):
        assert toxic_share(toy, "calm") > 2 * calm_before  # calm contexts turn toxic
    with SteeringIntervention(RESID, vector, -1.0).applied(model):
        assert toxic_share(toy) < trigger_before - 0.1  # and trigger contexts calm down


def test_zero_head_ablation_equals_zeroing_its_hook_z(toy, probe):
    def zero(act, hook):
        act = act.clone()
        act[:, :, 2] = 0.0
        return act
    with torch.no_grad():
        manual = toy.model.run_with_hooks(probe, fwd_hooks=[("blocks.1.attn.hook_z", zero)])
    with HeadAblation(1, 2).applied(toy.model):
        assert torch.equal(logits(toy.model, probe), manual)


def test_clamps_and_ablations_set_what_they_target(toy, probe):
    model = toy.model
    direction = torch.randn(model.cfg.d_model)
    unit = direction / direction.norm()
    cases = [
        (NeuronClamp(1, [3, 17], [0.5, -1.0]), "blocks.1.mlp.hook_post",
         lambda a: torch.allclose(a[..., [3, 17]], torch.tensor([0.5, -1.0]).expand(
             *a.shape[:2], 2))),
        (DirectionClamp(RESID, direction, 2.5), RESID,
         lambda a: torch.allclose(a @ unit, torch.full(a.shape[:2], 2.5), atol=1e-4)),
        (DirectionalAblation({RESID: direction}), RESID,
         lambda a: torch.allclose(a @ unit, torch.zeros(a.shape[:2]), atol=1e-4)),
        (MLPAblation(0, "mean", mean=torch.arange(64.0)), "blocks.0.hook_mlp_out",
         lambda a: torch.equal(a, torch.arange(64.0).expand_as(a))),
    ]
    for intervention, hook, holds in cases:
        with intervention.applied(model), torch.no_grad():
            _, cache = model.run_with_cache(probe, names_filter=[hook])
        assert holds(cache[hook]), intervention.name


def test_parameter_patch_copies_one_head(toy, probe):
    source = build_toy_model("toyworld-2l", seed=5).eval()
    patch = ParameterPatch("L1.H3", source)
    with patch.applied(toy.model):
        mine = component_parameters(toy.model, "L1.H3")
        theirs = component_parameters(source, "L1.H3")
        for key, (param, index) in mine.items():
            assert torch.equal(param[index], theirs[key][0][theirs[key][1]]), key
        other = component_parameters(toy.model, "L1.H2")["q.weight"]
        assert not torch.equal(other[0][other[1]], component_parameters(
            source, "L1.H2")["q.weight"][0][other[1]])
    with pytest.raises(ConfigError, match="L<layer>.H<head>"):
        component_parameters(toy.model, "layer1-head3")


def test_toxicity_and_bias_goals(toy, ready):
    base_toxic, base_gap = toxic_share(toy), bias_gap(toy)
    base_loss = heldout_loss(toy.model, toy.spec)
    assert base_toxic > 0.8 and base_gap > 0.4  # the planted phenomena are there to remove
    with ready["toxicity-steer"].applied(toy.model):
        toxic_cut = 1 - toxic_share(toy) / base_toxic
        steer_loss = heldout_loss(toy.model, toy.spec) / base_loss - 1
    with ready["bias-ablate"].applied(toy.model):
        gap_cut = 1 - bias_gap(toy) / base_gap
        bias_loss = heldout_loss(toy.model, toy.spec) / base_loss - 1
    with ready["toxicity-ablate"].applied(toy.model):
        ablate_cut = 1 - toxic_share(toy) / base_toxic
    # the loss budget always holds; the 90% goal where the tuning rule says it was met (on
    # this model it is not: the page states the miss), and far more than a random direction
    assert steer_loss <= 0.05, steer_loss
    assert toxic_cut >= 0.9 or not ready["toxicity-steer"].meta["met"], toxic_cut
    assert toxic_cut >= 0.6, toxic_cut
    assert gap_cut >= 0.8 and bias_loss <= 0.05, (gap_cut, bias_loss)
    # ablation removes the trigger/calm distinction: the rate falls toward the average, no lower
    assert 0.2 <= ablate_cut < 0.9, ablate_cut


def test_the_steering_strength_rule_counts_the_loss(toy, ready, monkeypatch):
    from mechinterp.interventions import ready as ready_module

    meta = ready["toxicity-steer"].meta
    tried = meta["tried"]  # (threshold, strength, tuning cut, tuning loss rise)
    budget, target = ready_module.LOSS_BUDGET, ready_module.STEER_TARGET
    assert {t[0] for t in tried} == set(ready_module.GATE_THRESHOLDS)
    kept = next(t for t in tried if t[:2] == (meta["gate_threshold"], meta["strength"]))
    assert (kept[2], kept[3]) == (meta["tuning_toxicity_cut"], meta["tuning_loss_rise"])
    meeting = [t for t in tried if t[2] >= target and t[3] <= budget]
    assert meta["met"] == bool(meeting) and meta["tuning_loss_rise"] <= budget
    if meeting:  # the pair meeting both with the least loss
        assert meta["tuning_loss_rise"] == min(t[3] for t in meeting)
    else:  # the best cut within the budget
        assert meta["tuning_toxicity_cut"] == max(t[2] for t in tried if t[3] <= budget)
    for at in ready_module.GATE_THRESHOLDS:  # each sweep stops at the first pass or overrun
        sweep = [t for t in tried if t[0] == at]
        assert all(t[2] < target and t[3] <= budget for t in sweep[:-1])
    # with no loss budget at all, nothing qualifies: the miss is stated, and the weakest
    # strength is kept rather than one that breaks the model
    monkeypatch.setattr(ready_module, "LOSS_BUDGET", -1.0)
    strict = get_intervention("toxicity-steer", toy)
    assert not strict.meta["met"] and strict.meta["strength"] == ready_module.STEER_STRENGTHS[0]
    assert len(strict.meta["tried"]) == len(ready_module.GATE_THRESHOLDS)


def test_fact_edit_takes_and_stays_specific(toy, ready):
    subject, old, new = ready["fact-edit"].fact
    others = [s for s in FACTS if s != subject and FACTS[s] != new]
    held_out = dict(fact_prompts("eval"))
    with ready["fact-edit"].applied(toy.model):
        assert colour_top1(toy, [subject], FACT_TEMPLATES[0]) == [new]
        # the neighbourhood as the benchmark scores it: other subjects' held-out prompts
        kept = [colour_top1(toy, [s], held_out[s]) == [FACTS[s]] for s in others]
    assert sum(kept) / len(kept) >= 0.9
    assert colour_top1(toy, [subject], FACT_TEMPLATES[0]) == [old]


def test_specs_build_the_named_intervention(toy, probe):
    spec = f"steer:hook={RESID},strength=4,vector=toxicity"
    steer = get_intervention(spec, toy)
    assert steer.name == spec and steer.kind == "steering" and steer.strength == 4.0
    base = toxic_share(toy, "calm")
    with steer.applied(toy.model):
        assert toxic_share(toy, "calm") > 1.5 * base
    numbers = ";".join(["0"] * toy.model.cfg.d_model)
    before = logits(toy.model, probe)
    with get_intervention(f"steer:hook={RESID},vector={numbers},strength=3", toy).applied(
            toy.model):
        assert torch.equal(logits(toy.model, probe), before)
    kinds = {"ablate-head:layer=0,head=1,mode=mean": "ablation",
             "ablate-direction:hook=resid,vector=bias": "ablation",
             "clamp-neurons:layer=1,neurons=3+17,value=0": "clamp",
             "patch-mlp:layer=1,source=untrained,seed=2": "param-patch"}
    for text, kind in kinds.items():
        intervention = get_intervention(text, toy)
        assert intervention.kind == kind
        with intervention.applied(toy.model):
            assert not torch.equal(logits(toy.model, probe), before), text


@pytest.mark.parametrize(("spec", "error", "message"), [
    ("toxicity-stear", ConfigError, "toxicity-steer"),
    ("nudge:hook=x", ConfigError, "unknown intervention kind 'nudge'.*steer:hook"),
    ("steer:hook=blocks.9.hook_resid_pre,vector=toxicity,strength=1", ConfigError,
     "unknown hook.*blocks.1.hook_resid_pre"),
    ("steer:hook=blocks.1.hook_resid_pre,vector=1;2;3,strength=1", ShapeError, r"\(64,\)"),
    ("steer:hook=blocks.1.hook_resid_pre,vector=toxicity,strength=lots", ConfigError,
     "strength must be a number"),
    ("steer:hook=blocks.1.hook_resid_pre,vector=toxicity", ConfigError, "missing strength"),
    ("steer:hook=blocks.1.hook_resid_pre,vector=kindness,strength=1", ConfigError,
     "bias, toxicity"),
    ("steer:hook=blocks.1.hook_resid_pre,vector=toxicity,strength=1,colour=red", ConfigError,
     "unknown key 'colour'"),
    ("ablate-head:layer=0,head=9", ConfigError, r"head must be in 0\.\.3"),
    ("ablate-mlp:layer=0,mode=median", ConfigError, "zero.*mean"),
    ("clamp-neurons:layer=1,neurons=3+x,value=0", ConfigError, "integers joined by"),
    ("rome:subject=zorv,colour=red", ConfigError, "new colour must be one of"),
    ("rome:subject=zorv,colour=blue,layer=1", ConfigError, r"layer must be in 0\.\.0"),
    ("patch-head:layer=0,head=1,source=somewhere", ConfigError, "untrained"),
])
def test_bad_specs_say_what_is_wrong(toy, spec, error, message):
    with pytest.raises(error, match=message):
        get_intervention(spec, toy)


def test_fitting_refuses_a_modified_model(toy, ready):
    with ready["bias-ablate"].applied(toy.model), pytest.raises(ConfigError,
                                                                 match="remove those first"):
        get_intervention("toxicity-steer", toy)


def test_meta_is_declared_per_instance_and_copied_on_assignment():
    a = SteeringIntervention(RESID, torch.ones(4))
    b = SteeringIntervention(RESID, torch.ones(4))
    assert a.meta == {} and b.meta == {}
    a.meta["strength"] = 2.0
    assert b.meta == {}  # not one dict shared by the class
    found = {"missed": True}
    b.meta = found
    found["missed"] = False
    assert b.meta == {"missed": True}
