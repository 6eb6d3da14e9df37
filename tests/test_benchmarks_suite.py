"""The behaviour benchmarks: the planted toy-world phenomena are measured as planted, a dummy
intervention moves the number it targets and is always rolled back, and the English suite runs
offline on a tiny random GPT-2 stand-in.

The toy model is ``toyworld-2l`` trained for 300 steps (a complete, shorter schedule of the same
spec, ~25 s here): facts, the pronoun skew and the toxic words are learned well before the
induction and indirect-object circuits that the default 2,500 steps are for.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import pytest
import torch
from gpt2_standin import save_standin

from mechinterp.benchmarks import (
    EVAL_SEED,
    before_after,
    bias_gap,
    edit_metrics,
    edit_scores,
    factual_recall,
    plot_before_after,
    results_table,
    run_pretrained_suite,
    run_suite,
    toxicity_rate,
)
from mechinterp.benchmarks.pretrained import TOXIC_WORDS, pretrained_benchmark_corpus
from mechinterp.errors import ConfigError
from mechinterp.pretrained import load_pretrained, natural_corpus, pretrained_tokenizer
from mechinterp.toyworld import load_toy_model
from mechinterp.toyworld.tasks import FACTS, PRONOUN_SKEW, bias_prompts, toxicity_contexts


@pytest.fixture(scope="module")
def toy():
    return load_toy_model("toyworld-2l")  # the shipped quick-profile model


@pytest.fixture(scope="module")
def baseline(toy):
    return run_suite(toy.model, toy.tokenizer, toy.spec, fact=("zorv", "red", "blue"))


class Dummy:
    """An intervention on the unembedding: ``rows`` of the output matrix (and their biases) are
    zeroed, or, with ``swap``, two rows are exchanged."""

    kind = "weights"
    description = "test intervention"

    def __init__(self, ids: list[int], *, swap: bool = False, fact=None, restore: bool = True,
                 name: str = "dummy") -> None:
        self.ids, self.swap, self.fact, self.restore, self.name = ids, swap, fact, restore, name
        self.saved = None

    @staticmethod
    def _linear(model):
        return model.unembed._original_component

    def apply(self, model) -> None:
        linear = self._linear(model)
        self.saved = [p.detach().clone() for p in (linear.weight, linear.bias) if p is not None]
        with torch.no_grad():
            for p in (linear.weight, linear.bias):
                if p is None:
                    continue
                if self.swap:
                    p[self.ids] = p[self.ids[::-1]].clone()
                else:
                    p[self.ids] = 0.0

    def remove(self, model) -> None:
        if not self.restore:
            return
        linear = self._linear(model)
        with torch.no_grad():
            for p, saved in zip((p for p in (linear.weight, linear.bias) if p is not None),
                                self.saved, strict=True):
                p.copy_(saved)

    @contextmanager
    def applied(self, model):
        self.apply(model)
        try:
            yield self
        finally:
            self.remove(model)


class Suppress(Dummy):
    """Pushes the logits of ``ids`` to -1e4 with a forward hook on the unembedding."""

    def apply(self, model) -> None:
        def hook(_module, _inputs, output):
            output = output.clone()
            output[..., self.ids] = -1e4
            return output

        self.handle = model.unembed.register_forward_hook(hook)

    def remove(self, model) -> None:
        self.handle.remove()


class Failing(Dummy):
    """Zeroes the rows, then makes every forward pass fail while applied."""

    def apply(self, model) -> None:
        super().apply(model)

        def boom(*_):
            raise RuntimeError("intervention failed mid-run")

        self.handle = self._linear(model).register_forward_hook(boom)

    def remove(self, model) -> None:
        self.handle.remove()
        super().remove(model)


def test_the_planted_behaviour_is_measured_as_planted(toy, baseline):
    tox = baseline["toxicity"]
    assert tox["trigger"] > 0.5 and tox["calm"] < 0.25
    assert tox["trigger_mass"] > 0.5 and tox["calm_mass"] < 0.25
    assert abs(tox["trigger"] - tox["trigger_mass"]) < 0.06  # sampling agrees with the mass
    assert tox["split"] == "eval" and tox["n_contexts"]["trigger"] == len(
        toxicity_contexts("trigger"))
    recall = baseline["factual_recall"]
    assert recall["accuracy"] > 0.9 and recall["n_prompts"] == len(FACTS)  # one unseen each
    bias = baseline["bias_gap"]
    assert bias["gap"] > 0.2 and set(bias["per_profession"]) == set(PRONOUN_SKEW)
    for profession, row in bias["per_profession"].items():
        assert (row["skew"] > 0) == (PRONOUN_SKEW[profession] > 0.5), profession
        assert row["training_skew"] == pytest.approx(2 * PRONOUN_SKEW[profession] - 1)
    assert bias["sign_agreement"] == 1.0 and bias["training_gap"] == pytest.approx(0.5625)
    # a profession's probabilities are the means over its held-out prompts, by hand
    he, she = (int(i) for i in toy.tokenizer.ids(["he", "she"]))
    for profession in ("nurse", "farmer"):
        texts = [t for p, t in bias_prompts("eval") if p == profession]
        assert texts and all("said that" not in t for t in texts)  # frame 0 is trained
        with torch.no_grad():
            probs = torch.stack([toy.model(torch.tensor([toy.tokenizer.encode(t)]))[0, -1]
                                 .softmax(-1) for t in texts])
        row = bias["per_profession"][profession]
        assert row["p_he"] == pytest.approx(float(probs[:, he].mean()), rel=1e-4)
        assert row["p_she"] == pytest.approx(float(probs[:, she].mean()), rel=1e-4)
    seen = factual_recall(toy.model, toy.tokenizer, "train")
    assert seen["n_prompts"] == 3 * len(FACTS) and seen["split"] == "train"
    assert 0 < baseline["loss"] < 3
    edit = baseline["edit"]  # nothing was edited: zorv is still red
    assert edit["efficacy"] == 0.0 and edit["paraphrase"] == 0.0 and edit["p_old"] > 0.5
    assert edit["neighbourhood"] > 0.9 and edit["neighbourhood_score"] > 0.9


def test_the_same_seed_gives_the_same_numbers(toy, baseline):
    again = run_suite(toy.model, toy.tokenizer, toy.spec, fact=("zorv", "red", "blue"))
    assert again == baseline
    other = toxicity_rate(toy.model, toy.tokenizer, seed=EVAL_SEED + 1)
    assert other["per_adjective"] != baseline["toxicity"]["per_adjective"]
    assert other["trigger_mass"] == baseline["toxicity"]["trigger_mass"]  # exact, not sampled


def test_removing_toxic_words_and_rolling_back(toy, baseline):
    model, tok = toy.model, toy.tokenizer
    tokens = torch.tensor([tok.encode("the angry man shouted at"), tok.encode(
        "the colour of zorv is")])
    with torch.no_grad():
        logits = model(tokens)
    result = before_after(toy, Dummy(tok.class_ids("toxic").tolist(), name="no toxic words"))
    assert result["before"]["toxicity"] == baseline["toxicity"]
    assert result["after"]["toxicity"]["trigger"] < 0.05
    assert result["change"]["toxicity"] < -0.4
    assert abs(result["change"]["factual_recall"]) < 1e-9  # facts are untouched
    with torch.no_grad():
        assert torch.equal(model(tokens), logits)
    assert result["kind"] == "weights" and result["intervention"] == "no toxic words"
    table = results_table([result])
    assert "| no toxic words |" in table and "→" in table and "factual recall" in table
    fig = plot_before_after([result], ["toxicity", "loss"])
    assert len(fig.axes) == 2


def test_a_failing_intervention_is_still_removed(toy):
    model, tok = toy.model, toy.tokenizer
    tokens = torch.tensor([tok.encode("the nurse said that")])
    with torch.no_grad():
        logits = model(tokens)
    with pytest.raises(RuntimeError, match="failed mid-run"):
        before_after(toy, Failing(tok.class_ids("toxic").tolist()))
    with torch.no_grad():
        assert torch.equal(model(tokens), logits)


def test_an_intervention_that_does_not_undo_itself_is_caught(toy):
    ids = toy.tokenizer.ids(["hello", "thanks"]).tolist()  # words no metric reads
    bad = Dummy(ids, restore=False, name="sticky")
    try:
        with pytest.raises(ConfigError, match="'sticky' did not restore the model"):
            before_after(toy, bad)
    finally:
        bad.restore = True
        bad.remove(toy.model)


def test_a_fact_edit_is_scored_as_rome_and_memit_score_it(toy):
    """Swapping the output rows of red and blue 'edits' every red subject to blue: efficacy and
    paraphrase are complete, and the neighbourhood (every other subject's held-out prompt,
    blue subjects left out) loses the other red subject: 12 of 13."""
    tok = toy.tokenizer
    fact = ("zorv", "red", "blue")
    swap = Dummy(tok.ids(["red", "blue"]).tolist(), swap=True, fact=fact, name="red<->blue")
    result = before_after(toy, swap)
    after = result["after"]["edit"]
    assert after["efficacy"] == 1.0 and after["paraphrase"] == 1.0
    assert after["n_neighbours"] == 13
    assert after["neighbourhood"] == pytest.approx(12 / 13, abs=0.08)
    assert result["change"]["efficacy"] == 1.0
    assert edit_metrics(toy.model, tok, fact)["efficacy"] == 0.0  # rolled back


def test_edit_scores_follow_their_definitions():
    logits = torch.tensor([[0.0, 2.0, 1.0], [0.0, 1.0, 2.0], [3.0, 0.0, 1.0]])
    scores = edit_scores(logits[:1], logits[1:2], logits[2:], torch.tensor([0]), old=2, new=1)
    assert scores["efficacy"] == 1.0 and scores["efficacy_score"] == 1.0
    assert scores["paraphrase"] == 0.0 and scores["paraphrase_score"] == 0.0
    assert scores["neighbourhood"] == 1.0 and scores["neighbourhood_score"] == 1.0
    assert scores["p_new"] == pytest.approx(math.exp(2) / (1 + math.exp(2) + math.exp(1)))


def test_bad_inputs_say_what_to_do(toy):
    model, tok = toy.model, toy.tokenizer
    with pytest.raises(ConfigError, match="n must be a positive integer"):
        toxicity_rate(model, tok, n=0)
    with pytest.raises(ConfigError, match="unknown fact subject 'nobody'.*zorv"):
        edit_metrics(model, tok, ("nobody", "red", "blue"))
    with pytest.raises(ConfigError, match="unknown fact subject"):
        run_suite(model, tok, fact=("nobody", "red", "blue"))
    with pytest.raises(ConfigError, match="'zorv' is 'red', not 'green'"):
        edit_metrics(model, tok, ("zorv", "green", "blue"))
    with pytest.raises(ConfigError, match="must be a colour other than 'red'"):
        edit_metrics(model, tok, ("zorv", "red", "idiot"))
    with pytest.raises(ConfigError, match="triple"):
        edit_metrics(model, tok, ("zorv", "red"))
    with pytest.raises(ConfigError, match="needs an applied"):
        before_after(toy, object())
    with pytest.raises(ConfigError, match="at least one"):
        results_table([])
    assert factual_recall(model, tok)["accuracy"] > 0.9 and bias_gap(model, tok)["gap"] > 0


# --- the English suite on an offline stand-in -------------------------------------------------

@pytest.fixture(scope="module")
def gpt2_standin(tmp_path_factory):
    """A saved 2-layer GPT-2 with random weights, loaded back as a ``TransformerBridge``."""
    folder = tmp_path_factory.mktemp("gpt2-benchmark-standin")
    save_standin(folder, natural_corpus() + pretrained_benchmark_corpus())
    return load_pretrained(str(folder), device="cpu")


def test_the_english_suite_runs_offline(gpt2_standin):
    model = gpt2_standin
    fact = ("France", "Paris", "Rome")
    results = run_pretrained_suite(model, fact=fact)
    assert set(results) == {"toxicity", "factual_recall", "bias_gap", "loss", "perplexity",
                            "loss_ci", "edit"}
    tox = results["toxicity"]
    assert tox["words"] == list(TOXIC_WORDS)  # the stand-in holds every word as one token
    # every number is recomputed here from the model's own next-token distribution, one
    # prompt at a time (a sign flip, a swapped pair of pronouns or prompt sets fails this)
    from mechinterp.benchmarks import pretrained as suite
    from mechinterp.pretrained import _CAPITALS, single_token, token_ids

    tok = pretrained_tokenizer(model)

    def next_probs(text):
        with torch.no_grad():
            return model(torch.tensor([token_ids(tok, text, bos=True)]))[0, -1].softmax(-1)

    toxic_ids = [single_token(tok, w) for w in TOXIC_WORDS]
    mass = {c: float(next_probs(c)[toxic_ids].sum())
            for c in (*suite.TOXIC_CONTEXTS, *suite.CALM_CONTEXTS)}
    assert tox["trigger"] == pytest.approx(
        sum(mass[c] for c in suite.TOXIC_CONTEXTS) / len(suite.TOXIC_CONTEXTS), rel=1e-4)
    assert tox["calm"] == pytest.approx(
        sum(mass[c] for c in suite.CALM_CONTEXTS) / len(suite.CALM_CONTEXTS), rel=1e-4)
    recall = results["factual_recall"]
    capitals = {c: i for c in _CAPITALS.values() if (i := single_token(tok, c)) is not None}
    hits = among = 0
    for template in suite.CAPITAL_TEMPLATES:
        for country, capital in _CAPITALS.items():
            if capital in capitals:
                p = next_probs(template.format(s=country))
                hits += int(p.argmax()) == capitals[capital]
                best = max(capitals.values(), key=lambda i: float(p[i]))
                among += best == capitals[capital]
    assert recall["accuracy"] == pytest.approx(hits / recall["n_prompts"])
    assert recall["accuracy_among_attributes"] == pytest.approx(among / recall["n_prompts"])
    assert recall["accuracy"] <= recall["accuracy_among_attributes"]
    bias = results["bias_gap"]
    assert len(bias["per_profession"]) == 16
    he, she = single_token(tok, "he"), single_token(tok, "she")
    skews = []
    for job in (*suite.MALE_TYPED, *suite.FEMALE_TYPED):
        per = [next_probs(t.format(job=job)) for t in suite.BIAS_TEMPLATES]
        skew = sum(float((p[he] - p[she]) / (p[he] + p[she])) for p in per) / len(per)
        assert bias["per_profession"][job]["skew"] == pytest.approx(skew, rel=1e-3, abs=1e-6)
        skews.append(skew)
    assert bias["gap"] == pytest.approx(sum(abs(x) for x in skews) / len(skews), rel=1e-3)
    agree = sum((x > 0) == (job in suite.MALE_TYPED) for x, job in
                zip(skews, (*suite.MALE_TYPED, *suite.FEMALE_TYPED), strict=True))
    assert bias["sign_agreement"] == pytest.approx(agree / len(skews))
    # at least 100 prompts behind every number, and an interval around each estimate
    assert tox["n_prompts"] >= 200 and recall["n_prompts"] >= 100 and bias["n_prompts"] >= 100
    for value, (low, high) in ((tox["trigger"], tox["trigger_ci"]),
                               (tox["calm"], tox["calm_ci"]),
                               (recall["accuracy"], recall["accuracy_ci"]),
                               (bias["gap"], bias["gap_ci"]),
                               (results["loss"], results["loss_ci"])):
        assert low <= value <= high
    assert tox["trigger_ci"][0] < tox["trigger_ci"][1]  # a continuous mass varies over prompts
    assert results["perplexity"] == pytest.approx(math.exp(results["loss"]))
    assert results["loss"] > 0 and 0 <= results["edit"]["neighbourhood"] <= 1
    assert run_pretrained_suite(model, fact=fact) == results

    tok = pretrained_tokenizer(model)
    toxic = [tok.encode(" " + w, add_special_tokens=False)[0] for w in TOXIC_WORDS]
    probe = torch.tensor([tok.encode("The angry driver said that I was")])
    with torch.no_grad():
        logits = model(probe)
    result = before_after(model, Suppress(toxic, name="no toxic words"))
    assert result["before"]["toxicity"]["trigger"] > 1e-3
    assert result["after"]["toxicity"]["trigger"] < 1e-6
    assert "edit" not in result["after"]
    with torch.no_grad():
        assert torch.equal(model(probe), logits)
    with pytest.raises(ConfigError, match="capital of France is 'Paris', not 'Lyon'"):
        run_pretrained_suite(model, fact=("France", "Lyon", "Rome"))


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_data():
    from mechinterp.benchmarks.core import bootstrap_interval

    g = torch.Generator().manual_seed(0)
    small, large = torch.rand(30, generator=g), torch.rand(3000, generator=g)
    lo_s, hi_s = bootstrap_interval(small)
    lo_l, hi_l = bootstrap_interval(large)
    assert lo_s < float(small.mean()) < hi_s and lo_l < float(large.mean()) < hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 5  # about sqrt(100) = 10 times narrower
    # uniform on [0, 1]: the mean's standard error is 1 / sqrt(12 n); a 95% interval ~ 3.9 se
    assert hi_l - lo_l == pytest.approx(3.92 / math.sqrt(12 * 3000), rel=0.15)
    assert bootstrap_interval(small) == (lo_s, hi_s)  # seeded
    with pytest.raises(ConfigError, match="at least two"):
        bootstrap_interval(torch.tensor([1.0]))
