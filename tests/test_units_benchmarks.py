"""The before/after benchmark core by hand: counts, batched next-token logits, the bootstrap
interval and the ROME/MEMIT edit scores on inputs small enough to check on paper."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mechinterp.benchmarks.core import (
    EVAL_SEED,
    bootstrap_interval,
    check_count,
    edit_scores,
    next_token_logits,
)
from mechinterp.errors import ConfigError


@pytest.mark.parametrize("value", [1, 2, 1000])
def test_check_count_accepts_positive_integers(value):
    check_count("n_prompts", value)


@pytest.mark.parametrize("value", [0, -3, True, False, 2.0, "4", None])
def test_check_count_refuses_everything_else(value):
    with pytest.raises(ConfigError) as error:
        check_count("n_prompts", value)
    assert str(error.value) == ("n_prompts must be a positive integer (the number of samples to "
                                f"draw), got {value!r}")


class _Recorder(nn.Module):
    """A language model over 5 tokens: the logits at position ``p`` are
    ``10 * p + onehot(token at p)``, so each row says where it was read and what it saw."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1, dtype=torch.float64))
        self.batches = []

    def forward(self, tokens):
        self.batches.append(tokens.clone())
        positions = torch.arange(tokens.shape[1], dtype=torch.float64)[None, :, None]
        return (10 * positions + nn.functional.one_hot(tokens, 5).double()
                + self.anchor).expand(len(tokens), -1, -1)


def test_next_token_logits_reads_the_last_position_of_each_prompt_in_order():
    model = _Recorder()
    rows = [[1, 2, 3], [4], [0, 1, 2], [2, 2]]
    out = next_token_logits(model, rows)
    assert out.dtype == torch.float32 and out.device.type == "cpu"
    expected = torch.tensor([[20, 20, 20, 21, 20], [0, 0, 0, 0, 1],
                             [20, 20, 21, 20, 20], [10, 10, 11, 10, 10]], dtype=torch.float32)
    assert torch.equal(out, expected)
    # one batch per prompt length, prompts of a length together and unpadded
    shapes = sorted(tuple(b.shape) for b in model.batches)
    assert shapes == [(1, 1), (1, 2), (2, 3)]
    three = next(b for b in model.batches if b.shape == (2, 3))
    assert three.tolist() == [[1, 2, 3], [0, 1, 2]]


def test_next_token_logits_refuses_no_prompt_or_an_empty_one():
    message = "next_token_logits needs at least one prompt, each of at least one token"
    for rows in ([], [[1], []]):
        with pytest.raises(ConfigError) as error:
            next_token_logits(_Recorder(), rows)
        assert str(error.value) == message


def _reference_interval(values, statistic, n, level, seed):
    """The percentile bootstrap written out longhand."""
    g = torch.Generator().manual_seed(seed)
    draws = torch.randint(len(values), (n, len(values)), generator=g)
    stats = sorted(float(x) for d in draws for x in torch.as_tensor(statistic(values[d])).flatten())
    def quantile(q):  # linear interpolation between order statistics, as torch.quantile
        pos = q * (len(stats) - 1)
        low = math.floor(pos)
        high = min(low + 1, len(stats) - 1)
        return stats[low] + (stats[high] - stats[low]) * (pos - low)
    return quantile((1 - level) / 2), quantile((1 + level) / 2)


def test_bootstrap_interval_is_the_seeded_percentile_interval_of_the_mean():
    values = torch.tensor([0.0, 1.0, 1.0, 3.0, 7.0, 2.0])
    low, high = bootstrap_interval(values)
    ref = _reference_interval(values, lambda v: v.mean(), 2000, 0.95, EVAL_SEED)
    assert (low, high) == pytest.approx(ref, abs=1e-9)
    assert low < float(values.mean()) < high
    # the default is 2000 draws: on values with few ties, 1999 or 2001 draws move the ends
    noisy = torch.randn(9, generator=torch.Generator().manual_seed(0))
    ref = _reference_interval(noisy, lambda v: v.mean(), 2000, 0.95, EVAL_SEED)
    assert bootstrap_interval(noisy) == pytest.approx(ref, abs=1e-6)
    for n in (1999, 2001):
        assert bootstrap_interval(noisy, n=n) != pytest.approx(ref, abs=1e-6)
    # rows of several columns: the default statistic is the mean of each column, and the
    # interval is taken over every column's draws together
    table = torch.stack([noisy, 10 * noisy], 1)
    pooled = _reference_interval(table, lambda v: v.mean(0), 2000, 0.95, EVAL_SEED)
    assert bootstrap_interval(table) == pytest.approx(pooled, abs=1e-5)
    # fewer draws, another level and seed: the same rule
    ref = _reference_interval(values, lambda v: v.mean(), 7, 0.5, 3)
    assert bootstrap_interval(values, n=7, level=0.5, seed=3) == pytest.approx(ref, abs=1e-9)


def test_bootstrap_interval_of_another_statistic_over_rows():
    values = torch.tensor([[1.0, 0.0], [3.0, 1.0], [2.0, 5.0], [8.0, 1.0]])

    def spread(rows):
        return rows[:, 0].max() - rows[:, 1].min()

    ref = _reference_interval(values, spread, 50, 0.9, 11)
    assert bootstrap_interval(values, spread, n=50, level=0.9, seed=11) == pytest.approx(
        ref, abs=1e-9)
    # a constant sample has a zero-width interval, and the bounds are plain floats
    low, high = bootstrap_interval(torch.full((5,), 2.5), n=20)
    assert (low, high) == (2.5, 2.5) and type(low) is float and type(high) is float


def test_bootstrap_interval_refuses_one_value_and_a_bad_level():
    with pytest.raises(ConfigError) as error:
        bootstrap_interval(torch.tensor([1.0]))
    assert str(error.value) == "a bootstrap interval needs at least two values"
    bootstrap_interval(torch.tensor([1.0, 2.0]), n=3)  # two values are enough
    for level in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(ConfigError) as error:
            bootstrap_interval(torch.tensor([1.0, 2.0]), level=level)
        assert str(error.value) == f"level must be in (0, 1), got {level}"


def test_edit_scores_by_hand():
    # vocabulary of 4; old = 1, new = 2
    rewrite = torch.tensor([[0.0, 1.0, 2.0, -1.0]])
    paraphrase = torch.tensor([[0.0, 3.0, 2.0, 0.0],    # old on top, old beats new
                               [0.0, 1.0, 2.0, 5.0],    # 3 on top, new beats old
                               [0.0, 1.0, 4.0, 0.0]])   # new on top
    neighbours = torch.tensor([[5.0, 0.0, 1.0, 0.0],    # own answer 0 on top, beats new
                               [0.0, 0.0, 3.0, 2.0],    # own answer 3 loses to new
                               [0.0, 2.0, 1.0, 0.0],    # own answer 1 on top
                               [1.0, 0.0, 1.0, 0.0]])   # own answer 0 ties new: top-1, no win
    scores = edit_scores(rewrite, paraphrase, neighbours, torch.tensor([0, 3, 1, 0]), old=1, new=2)
    probs = torch.tensor([0.0, 1.0, 2.0, -1.0]).softmax(-1)
    assert scores == pytest.approx({
        "efficacy": 1.0,
        "efficacy_score": 1.0,
        "paraphrase": 1 / 3,
        "paraphrase_score": 2 / 3,
        "neighbourhood": 3 / 4,
        "neighbourhood_score": 2 / 4,
        "p_new": float(probs[2]),
        "p_old": float(probs[1]),
    })
    assert list(scores) == ["efficacy", "efficacy_score", "paraphrase", "paraphrase_score",
                            "neighbourhood", "neighbourhood_score", "p_new", "p_old"]
    # a failed edit: the old answer stays on top and ahead
    failed = edit_scores(torch.tensor([[0.0, 3.0, 2.0, 0.0]]), paraphrase[:1], neighbours[:1],
                         torch.tensor([0]), old=1, new=2)
    assert failed["efficacy"] == 0.0 and failed["efficacy_score"] == 0.0
    assert failed["p_old"] > failed["p_new"]
    assert all(type(v) is float for v in failed.values())
