import pytest
import torch

from mechinterp.errors import ConfigError
from mechinterp.toyworld import TASKS, build_toy_model, default_tokenizer, get_task
from mechinterp.toyworld.tasks import (
    BIAS_FRAMES,
    FACT_TEMPLATES,
    FACTS,
    SPLITS,
    TOXICITY_FRAMES,
    TOXICITY_PERSONS,
    bias_prompts,
    content_split,
    fact_prompts,
    sample_training_batch,
    toxicity_contexts,
)


def test_tokenizer_round_trip_and_unknown_word():
    tok = default_tokenizer()
    ids = tok.encode("when alice and bob went to the store")
    assert ids[0] == tok.bos_id and tok.decode(ids[1:]) == "when alice and bob went to the store"
    with pytest.raises(ConfigError, match="not in the toy-world vocabulary"):
        tok.encode("when zebra")
    with pytest.raises(ConfigError, match="unknown word class"):
        tok.class_ids("animals")


@pytest.mark.parametrize("name", sorted(TASKS))
def test_prompt_pairs_differ_where_the_task_says(name):
    prompts = get_task(name).prompts(12, seed=3)
    assert prompts.clean.shape == prompts.corrupted.shape
    assert prompts.clean.shape[1] == prompts.positions["end"] + 1
    differ = (prompts.clean != prompts.corrupted).sum(1)
    expected = 2 if name == "induction" else 1  # induction swaps two tokens
    assert torch.all(differ == expected)
    assert torch.all(prompts.answer != prompts.wrong)
    again = get_task(name).prompts(12, seed=3)
    assert torch.equal(again.clean, prompts.clean)


def test_unknown_task_and_training_batches():
    with pytest.raises(ConfigError, match="unknown task"):
        get_task("sarcasm")
    tok = default_tokenizer()
    batch = sample_training_batch(tok, 16, 32, torch.Generator().manual_seed(0),
                                  {"facts": 1.0})
    assert batch.shape == (16, 32) and torch.all(batch[:, 0] == tok.bos_id)
    text = tok.decode(batch[0, 1:])
    for subject, colour in FACTS.items():  # every stated fact is the planted one
        for template in FACT_TEMPLATES:
            marker = template.format(s=subject) + " "
            if marker in text:
                assert text.split(marker, 1)[1].split()[0] == colour


@pytest.mark.parametrize("n_fillers,n_frames", [(16, len(FACT_TEMPLATES)),
                                                 (8, len(BIAS_FRAMES)),
                                                 (len(TOXICITY_PERSONS), len(TOXICITY_FRAMES))])
def test_content_split_is_a_latin_square(n_fillers, n_frames):
    """Frame 0 trains every filler; every filler has exactly one eval and one tune frame; every
    other frame is trained, tuned and evaluated with some fillers."""
    grid = [[content_split(i, f, n_frames) for f in range(n_frames)] for i in range(n_fillers)]
    assert all(row[0] == "train" for row in grid)
    for row in grid:
        assert row.count("eval") == 1 and row.count("tune") == 1
    for f in range(1, n_frames):
        assert {grid[i][f] for i in range(n_fillers)} == set(SPLITS)


def _sentences(tok, split, n=1500, seed=5):
    mixture = {"facts": 1.0, "bias": 1.0, "toxicity": 1.0}
    batch = sample_training_batch(tok, n, 32, torch.Generator().manual_seed(seed), mixture,
                                  split=split)
    out = set()
    for row in batch:
        out.update(s.strip() for s in tok.decode(row[1:]).split(" . ")[:-1])  # last is cut
    return out


def test_held_out_prompts_never_appear_in_training_text():
    """No eval or tune prompt starts a training sentence, while eval text does use them (so
    the check can fail), and eval, tune and train prompts are three disjoint sets."""
    tok = default_tokenizer()
    sets = {}
    for split in SPLITS:
        sets[split] = ({p for _, p in fact_prompts(split)} | {p for _, p in bias_prompts(split)}
                       | {c for kind in ("trigger", "calm") for _, c in
                          toxicity_contexts(kind, split)})
    assert not (sets["eval"] & sets["tune"]) and not (sets["eval"] & sets["train"])
    assert not (sets["tune"] & sets["train"])
    assert len(fact_prompts("eval")) == len(FACTS) and len(fact_prompts("train")) == 3 * len(FACTS)

    def starts(sentences, prompts):
        return {p for p in prompts for s in sentences if s.startswith(p + " ")}

    training = _sentences(tok, "train")
    assert not starts(training, sets["eval"] | sets["tune"])
    assert len(starts(training, sets["train"])) > 0.8 * len(sets["train"])
    assert len(starts(_sentences(tok, "eval"), sets["eval"])) > 0.8 * len(sets["eval"])
    with pytest.raises(ConfigError, match="unknown content split"):
        fact_prompts("test")
    with pytest.raises(ConfigError, match="'trigger' or 'calm'"):
        toxicity_contexts("rude")


def test_toy_model_runs_with_transformerlens_hooks():
    model = build_toy_model("toyworld-2l", seed=0).eval()
    prompts = get_task("ioi").prompts(4)
    logits, cache = model.run_with_cache(prompts.clean)
    assert logits.shape == (4, prompts.clean.shape[1], len(default_tokenizer()))
    assert cache["blocks.1.attn.hook_z"].shape[2] == 4
    with pytest.raises(ConfigError, match="unknown toy model"):
        build_toy_model("gpt5")


def test_shipped_toy_models_are_current_and_used(tmp_path, monkeypatch):
    """Every shipped checkpoint carries the key the current code computes (else it would be
    ignored and the model retrained in every build: rerun ``make toy-models``), and a fresh
    cache loads it instead of training."""
    from mechinterp.toyworld import models

    shipped = sorted(models.SHIPPED.glob("*.json"))
    assert len(shipped) == len(models.SHIPPED_RUNS)
    for name, seed in models.SHIPPED_RUNS:
        key = models.shipped_key(name, seed)
        assert (models.SHIPPED / f"{key}.json").exists(), (
            f"the shipped {name} seed {seed} was trained by other code: run 'make toy-models'")
    monkeypatch.setenv("MECHINTERP_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "_train", lambda *a, **k: pytest.fail("trained, not loaded"))
    name, seed = models.SHIPPED_RUNS[0]
    toy = models.load_toy_model(name, seed=seed, steps=models._spec(name).steps)
    assert toy.meta["key"] == models.shipped_key(name, seed)
    # another seed is not shipped: it is trained
    with pytest.raises(pytest.fail.Exception, match="trained, not loaded"):
        models.load_toy_model(name, seed=7, steps=models._spec(name).steps)
