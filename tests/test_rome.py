"""ROME as published, on GPT-2's architecture (the offline stand-in) with exact checks, and on
the trained toy-world model for efficacy."""

from __future__ import annotations

import json

import pytest
import torch
from gpt2_standin import save_standin

from mechinterp.cli import main
from mechinterp.errors import ConfigError
from mechinterp.interventions.rome import RomeSettings, causal_trace, rome, subject_tokens
from mechinterp.interventions.tuning import reference_tokens
from mechinterp.pretrained import bos_ids, load_pretrained, natural_corpus, pretrained_tokenizer
from mechinterp.toyworld import load_toy_model

PROMPT, SUBJECT, TARGET = "The capital of France is", "France", "Rome"


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2-rome")
    texts = natural_corpus()
    save_standin(folder, texts)
    model = load_pretrained(str(folder), device="cpu")
    tok = pretrained_tokenizer(model)
    ids = [i for t in texts for i in tok.encode(" " + t, add_special_tokens=False)]
    sample = torch.tensor(ids[: len(ids) // 16 * 16]).view(-1, 16)
    return model, tok, sample, folder


def test_the_edit_is_rank_one_and_moves_the_output_by_the_closed_form(gpt2):
    model, tok, sample, _ = gpt2
    settings = RomeSettings(steps=20, n_contexts=0)  # the key is the prompt's own key
    edit = rome(model, tok, PROMPT, SUBJECT, TARGET, sample, layer=0, settings=settings)
    assert torch.linalg.matrix_rank(edit.update).item() == 1
    delta, k_star = edit.meta["delta"], edit.meta["k_star"]
    assert torch.allclose(edit.update @ k_star, delta, atol=1e-4)  # W k* moves by delta
    ids, last_subject = subject_tokens(tok, PROMPT, SUBJECT)
    tokens = torch.tensor([bos_ids(tok) + ids])
    last_subject += len(bos_ids(tok))
    with torch.no_grad():
        _, clean = model.run_with_cache(tokens, names_filter=["blocks.0.hook_mlp_out"])
        with edit.applied(model):
            edited_logits, edited = model.run_with_cache(tokens,
                                                         names_filter=["blocks.0.hook_mlp_out"])
    moved = edited["blocks.0.hook_mlp_out"][0] - clean["blocks.0.hook_mlp_out"][0]
    assert torch.allclose(moved[last_subject], delta, atol=1e-4)  # at the subject: delta
    edited = edited_logits
    target = tok.encode(" " + TARGET, add_special_tokens=False)[0]
    assert edited[0, -1].log_softmax(-1)[target] > model(tokens)[0, -1].log_softmax(-1)[target]


def test_the_value_optimisation_stops_once_the_target_is_likely(gpt2):
    """With a stopping level no prompt can be above, no step is taken (delta stays zero);
    with none, the optimisation runs and delta moves."""
    model, tok, sample, _ = gpt2
    at_once = rome(model, tok, PROMPT, SUBJECT, TARGET, sample, layer=0,
                   settings=RomeSettings(steps=10, stop_nll=1e9))
    assert float(at_once.meta["delta"].norm()) == 0.0
    never = rome(model, tok, PROMPT, SUBJECT, TARGET, sample, layer=0,
                 settings=RomeSettings(steps=10, stop_nll=0.0))
    assert float(never.meta["delta"].norm()) > 0.0


def test_the_value_norm_is_clamped_and_the_kl_term_keeps_the_essence(gpt2):
    model, tok, sample, _ = gpt2
    loose = rome(model, tok, PROMPT, SUBJECT, TARGET, sample, layer=0,
                 settings=RomeSettings(steps=30, clamp_norm=0.0, kl_weight=0.0))
    tight = rome(model, tok, PROMPT, SUBJECT, TARGET, sample, layer=0,
                 settings=RomeSettings(steps=30, clamp_norm=0.05, kl_weight=0.0))
    assert tight.meta["delta"].norm() < loose.meta["delta"].norm()
    kept = rome(model, tok, PROMPT, SUBJECT, TARGET, sample, layer=0,
                settings=RomeSettings(steps=30, clamp_norm=0.0, kl_weight=50.0))
    essence = torch.tensor([bos_ids(tok) + tok.encode(f"{SUBJECT} is a", add_special_tokens=False)])

    def kl(edit) -> float:
        with torch.no_grad():
            p = model(essence)[0, -1].log_softmax(-1)
            with edit.applied(model):
                q = model(essence)[0, -1].log_softmax(-1)
        return float((p.exp() * (p - q)).sum())

    assert kl(kept) < kl(loose)


def test_causal_tracing_and_bad_inputs(gpt2):
    model, tok, sample, _ = gpt2
    effects = causal_trace(model, tok, PROMPT, SUBJECT)
    assert effects.shape == (model.cfg.n_layers,)
    quiet = causal_trace(model, tok, PROMPT, SUBJECT, settings=RomeSettings(noise=0.0))
    assert quiet.abs().max() < 1e-6  # nothing corrupted, nothing to restore
    edit = rome(model, tok, PROMPT, SUBJECT, TARGET, sample, settings=RomeSettings(steps=5))
    assert edit.layer == 0 and edit.meta["traced"] is not None  # the last layer cannot reach
    with pytest.raises(ConfigError, match="not in the prompt"):
        rome(model, tok, PROMPT, "Spain", TARGET, sample)
    with pytest.raises(ConfigError, match="layer must be in 0..0"):
        rome(model, tok, PROMPT, SUBJECT, TARGET, sample, layer=1)
    with pytest.raises(ConfigError, match="steps"):
        RomeSettings(steps=0)


def test_rome_rewrites_a_fact_of_the_trained_toy_model():
    toy = load_toy_model("toyworld-2l")
    sample = reference_tokens(toy.tokenizer, toy.spec.mixture, n=256, n_ctx=toy.spec.n_ctx)
    prompt = "the colour of zorv is"
    edit = rome(toy.model, toy.tokenizer, prompt, "zorv", "blue", sample,
                essence="the colour of zorv")
    tokens = torch.tensor([toy.tokenizer.encode(prompt)])
    blue = int(toy.tokenizer.ids(["blue"])[0])
    with torch.no_grad():
        assert int(toy.model(tokens)[0, -1].argmax()) != blue
        with edit.applied(toy.model):
            assert int(toy.model(tokens)[0, -1].argmax()) == blue


def test_the_benchmark_command_edits_a_pretrained_model(gpt2, capsys):
    folder = gpt2[3]
    spec = (f"rome:prompt={PROMPT},subject={SUBJECT},target={TARGET},steps=20,"
            f"neighbours=The capital of Spain is|The capital of Italy is")
    assert main(["benchmark", "--model", str(folder), "--intervention", spec, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    before, after = out["before"], out["after"]
    for side in (before, after):
        assert set(side) >= {"target_probability", "target_rank", "neighbourhood", "loss"}
    assert after["target_probability"] > before["target_probability"]
    assert after["target_rank"] <= before["target_rank"]
    assert before["neighbourhood"] == 1.0 and 0.0 <= after["neighbourhood"] <= 1.0
    assert out["kind"] == "weight-edit"
    # a hook intervention has no prompt report
    assert main(["benchmark", "--model", str(folder), "--intervention",
                 "ablate-head:layer=0,head=1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["after"]["target_rank"] is None and out["after"]["loss"] != out["before"]["loss"]


def test_rome_makes_the_target_top_one_on_gpt2s_architecture(gpt2, capsys):
    """The issue's acceptance on the stand-in, through the benchmark command: the edit makes
    the target the top next token at unchanged loss. The subject ends this prompt, so the
    edited MLP writes into the position that predicts. With the subject in mid-prompt the edit
    has to reach the last position through attention, which this random model barely does:
    there even an unconstrained value optimisation only lifts " Rome" from rank 476 to 10."""
    folder = gpt2[3]
    spec = "rome:prompt=The capital city of France,subject=France,target=Rome"
    assert main(["benchmark", "--model", str(folder), "--intervention", spec, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["before"]["target_rank"] > 100 and out["after"]["target_rank"] == 1  # 1: the top
    assert out["after"]["loss"] <= 1.05 * out["before"]["loss"]


@pytest.mark.parametrize(("spec", "message"), [
    ("rome:prompt=The capital of France is,target=Rome", "missing subject"),
    ("rome:prompt=The capital of France is,subject=France", "missing \\['target'\\]"),
    ("rome:subject=France,colour=red", "prompt=..., subject=... and target=..."),
    ("steer:hook=blocks.0.hook_resid_pre,vector=toxicity,strength=1", "toy-world"),
    ("toxicity-steer", "toy-world"),
])
def test_bad_pretrained_specs_name_the_field(gpt2, spec, message):
    from mechinterp.interventions.spec import get_intervention, text_model

    with pytest.raises(ConfigError, match=message):
        get_intervention(spec, text_model(str(gpt2[3])))


def test_memit_edits_several_toy_facts_at_once():
    from mechinterp.interventions.rome import memit
    from mechinterp.toyworld.tasks import FACTS

    toy = load_toy_model("toyworld-2l")
    tok = toy.tokenizer
    sample = reference_tokens(tok, toy.spec.mixture, n=256, n_ctx=toy.spec.n_ctx)
    subjects = list(FACTS)[:3]
    new = {s: "blue" if FACTS[s] != "blue" else "red" for s in subjects}
    facts = [(f"the colour of {s} is", s, new[s]) for s in subjects]
    edit = memit(toy.model, tok, facts, sample, layer=0, covariance_weight=10.0,
                 essences=[f"the colour of {s}" for s in subjects],
                 settings=RomeSettings())
    assert torch.linalg.matrix_rank(edit.update).item() == len(facts)
    rows = torch.tensor([tok.encode(p) for p, _, _ in facts])
    wanted = tok.ids([new[s] for s in subjects])
    with torch.no_grad():
        assert not torch.equal(toy.model(rows)[:, -1].argmax(-1), wanted)
        with edit.applied(toy.model):
            assert torch.equal(toy.model(rows)[:, -1].argmax(-1), wanted)
    with pytest.raises(ConfigError, match="at least one"):
        memit(toy.model, tok, [], sample, layer=0)
    with pytest.raises(ConfigError, match="layer must be in 0..0"):
        memit(toy.model, tok, facts, sample, layer=1)
