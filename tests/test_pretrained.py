"""The pretrained-model path, offline: a tiny random GPT-2 and a byte-level BPE tokenizer
trained on the prompt sets' own words stand in for gpt2, saved to a folder and loaded back
through ``TransformerBridge.boot_transformers`` exactly as a downloaded model would be."""

from __future__ import annotations

import pytest
import torch
from gpt2_standin import save_standin, train_tokenizer

from mechinterp.circuits import ComputationGraph, activation_patching
from mechinterp.errors import ConfigError, DataError, DataUnavailableError
from mechinterp.pretrained import (
    NATURAL_TASKS,
    TEMPLATES,
    load_pretrained,
    natural_corpus,
    natural_prompts,
    pretrained_tokenizer,
)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """``(folder, hf_model, tokenizer)``: a saved 2-layer GPT-2 with random weights."""
    folder = tmp_path_factory.mktemp("gpt2-standin")
    model, tokenizer = save_standin(folder, natural_corpus())
    return folder, model, tokenizer


@pytest.fixture(scope="module")
def bridge(standin):
    return load_pretrained(str(standin[0]), device="cpu")


def test_bridge_computes_what_the_hf_model_computes(standin, bridge):
    _, hf_model, tokenizer = standin
    assert not bridge.training and bridge.cfg.n_layers == 2 and bridge.cfg.n_heads == 4
    tok = pretrained_tokenizer(bridge)
    assert tok.encode(" Mary", add_special_tokens=False) == \
        tokenizer.encode(" Mary", add_special_tokens=False)
    tokens = natural_prompts("ioi", tok, 4).clean
    with torch.no_grad():
        assert torch.allclose(bridge(tokens), hf_model(tokens).logits, atol=1e-5)
    _, cache = bridge.run_with_cache(tokens)
    assert cache["blocks.1.attn.hook_z"].shape == (4, tokens.shape[1], 4, 16)


@pytest.mark.parametrize("task", NATURAL_TASKS)
def test_natural_prompts_differ_in_one_token_with_one_token_answers(standin, task):
    tokenizer = standin[2]
    for template in range(len(TEMPLATES[task])):
        prompts = natural_prompts(task, tokenizer, 10, seed=3, template=template)
        assert prompts.clean.shape == prompts.corrupted.shape
        assert prompts.clean.shape == (10, prompts.positions["end"] + 1)
        assert torch.all(prompts.clean[:, 0] == tokenizer.bos_token_id)
        differ = prompts.clean != prompts.corrupted
        assert torch.all(differ.sum(1) == 1)
        column = int(differ[0].nonzero())  # the corrupted slot is a named position
        assert torch.all(differ[:, column]) and column in prompts.positions.values()
        assert torch.all(prompts.answer != prompts.wrong)
        for word in tokenizer.convert_ids_to_tokens(prompts.answer.tolist()):
            assert word.startswith("Ġ")  # one token, with its leading space
    first, again = (natural_prompts(task, tokenizer, 10, seed=3, template=0) for _ in range(2))
    assert torch.equal(first.clean, again.clean) and torch.equal(first.wrong, again.wrong)


def test_words_that_are_not_single_tokens_are_left_out(standin):
    dropped = {" Mary", " John", " Sarah", " Kate"}
    tokenizer = train_tokenizer([t for t in natural_corpus() if t not in dropped])
    assert all(len(tokenizer.encode(w, add_special_tokens=False)) > 1 for w in dropped)
    prompts = natural_prompts("ioi", tokenizer, 40, seed=1)
    used = {tokenizer.decode([t]) for t in prompts.clean[:, prompts.positions["s2"]].tolist()}
    assert len(used) > 4 and not used & dropped
    bare = train_tokenizer([t for t in natural_corpus() if not t.startswith(" ")], 300)
    with pytest.raises(DataError, match="single tokens"):
        natural_prompts("induction", bare, 4)
    with pytest.raises(ConfigError, match=r"tasks: \['induction', 'ioi'"):
        natural_prompts("sarcasm", tokenizer, 4)
    with pytest.raises(ConfigError, match="template must be in"):
        natural_prompts("bias", tokenizer, 4, template=7)


def test_patching_and_the_edge_graph_work_on_the_bridge(bridge):
    prompts = natural_prompts("ioi", pretrained_tokenizer(bridge), 8, seed=2)
    result = activation_patching(bridge, prompts)
    end = prompts.positions["end"]
    assert result.scores["resid"][-1, end] == pytest.approx(1.0, abs=1e-4)
    assert result.scores["resid"][0, 0].abs() < 1e-4  # BOS is the same in both prompts
    assert result.scores["heads"].shape == (2, 4) and result.scores["mlp"].shape == (2,)
    graph = ComputationGraph(bridge)
    with torch.no_grad():
        logits, _, _ = graph.forward(prompts.clean)
        _, corrupted, _ = graph.forward(prompts.corrupted)
        cut, _, _ = graph.forward(prompts.clean, torch.zeros(len(graph.edges)), corrupted)
        assert torch.allclose(logits, bridge(prompts.clean), atol=1e-4)
        assert torch.allclose(cut, bridge(prompts.corrupted), atol=1e-4)


def test_compatibility_mode_changes_logits_only_by_a_constant(standin, bridge):
    folded = load_pretrained(str(standin[0]), device="cpu", compatibility_mode=True)
    tokens = natural_prompts("facts", pretrained_tokenizer(folded), 4).clean
    with torch.no_grad():
        raw, centred = bridge(tokens), folded(tokens)
        graph_logits, _, _ = ComputationGraph(folded).forward(tokens)
    shift = centred - raw
    assert torch.allclose(shift, shift.mean(-1, keepdim=True).expand_as(shift), atol=1e-4)
    assert torch.allclose(graph_logits, centred, atol=1e-4)


def test_a_missing_model_says_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="no folder"):
        load_pretrained(str(tmp_path / "absent"))
    with pytest.raises(DataError, match="no config.json"):
        load_pretrained(str(tmp_path))
    monkeypatch.setenv("MECHINTERP_OFFLINE", "1")
    with pytest.raises(DataUnavailableError, match="not in the local cache.*save_pretrained"):
        load_pretrained("mechinterp-tests/no-such-model")


def test_a_cached_hub_model_loads_offline_from_the_cache(standin, tmp_path, monkeypatch):
    """Offline, a hub name resolves to its snapshot in the Hugging Face cache (the layout a
    download leaves), with no request to the hub."""
    import shutil

    import huggingface_hub

    commit = "0" * 40
    repo = tmp_path / "models--mechinterp-tests--tiny-gpt2"
    shutil.copytree(standin[0], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("MECHINTERP_OFFLINE", "1")
    model = load_pretrained("mechinterp-tests/tiny-gpt2", device="cpu")
    assert model.cfg.model_name == "mechinterp-tests/tiny-gpt2"
    tokens = natural_prompts("bias", pretrained_tokenizer(model), 3).clean
    with torch.no_grad():
        assert torch.allclose(model(tokens), standin[1](tokens).logits, atol=1e-5)


def test_discovery_runs_on_a_saved_pretrained_model(standin):
    from mechinterp.circuits.discovery import discover_task

    found = discover_task("ioi", "eap", model=str(standin[0]), n_prompts=8)
    assert found.roc_auc is None  # no planted circuit in a pretrained model
    assert found.circuit.meta["model"] == str(standin[0])
    assert found.circuit.n_edges > 0 and found.edge_scores is not None


def test_compare_with_wang_counts_listed_heads():
    from mechinterp.circuits.discovery import WANG_2023_IOI_HEADS, compare_with_wang

    scores = {f"L{layer}.H{h}": 0.0 for layer in range(12) for h in range(12)}
    scores |= {"L9.H9": 5.0, "L10.H0": -4.0, "L7.H3": 3.0, "L11.H11": 2.5}
    out = compare_with_wang(scores)
    assert out["top_heads"][:4] == ["L9.H9", "L10.H0", "L7.H3", "L11.H11"]
    assert out["overlap"] >= 3 and out["of"] == 13 and out["chance"] == pytest.approx(13 ** 2 / 144)
    assert out["by_class"]["name mover"] == ["L9.H9", "L10.H0"]
    assert sum(len(v) for v in WANG_2023_IOI_HEADS.values()) == 13

