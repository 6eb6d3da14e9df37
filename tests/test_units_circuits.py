"""Circuit metrics and scoring by hand: the logit difference, the KL metric, ROC AUC (against
a brute-force pair count and scikit-learn on random scores), precision and recall, edge
scores summed per component, ground-truth rules and the faithfulness curve on stand-ins
whose answers are known."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pytest
import torch

from mechinterp.circuits import scoring
from mechinterp.circuits.metrics import METRICS, get_metric, kl_metric, logit_diff
from mechinterp.circuits.scoring import (
    CircuitTruth,
    component_edge_scores,
    faithfulness_curve,
    ground_truth,
    head_diagnostics,
    precision_recall,
    roc_auc,
)
from mechinterp.errors import ConfigError
from mechinterp.toyworld.tasks import INDUCTION_PROMPT_PERIOD, PromptSet


def _prompts(answer, wrong, task="ioi", pos=3, positions=None):
    n = len(answer)
    tokens = torch.zeros(n, pos, dtype=torch.long)
    return PromptSet(task, tokens, tokens.clone(), torch.tensor(answer), torch.tensor(wrong),
                     positions or {})


# ---------------------------------------------------------------- metrics


def test_logit_diff_reads_the_last_position_by_hand():
    logits = torch.zeros(2, 3, 4)
    logits[0, -1] = torch.tensor([1.0, 5.0, 2.0, 0.0])
    logits[1, -1] = torch.tensor([3.0, 0.0, 0.0, 1.0])
    logits[:, 0] = 100.0  # earlier positions are not read
    logits[:, 1] = -100.0
    prompts = _prompts([1, 3], [2, 0])
    # row 0: 5 - 2 = 3; row 1: 1 - 3 = -2; mean 0.5
    assert float(logit_diff(logits, prompts)) == pytest.approx(0.5)


def test_kl_metric_is_minus_the_mean_kl_from_the_clean_run():
    clean = torch.zeros(2, 2, 3)
    clean[:, -1] = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    clean[:, 0] = 7.0
    metric = kl_metric(clean)
    prompts = _prompts([0, 0], [1, 1], pos=2)
    assert float(metric(clean, prompts)) == pytest.approx(0.0, abs=1e-7)
    run = torch.zeros(2, 2, 3)
    run[:, -1] = torch.tensor([[math.log(2), 0.0, 0.0], [1.0, 2.0, 3.0]])
    # row 0: KL(uniform || (1/2, 1/4, 1/4)) = log(3/4) * -1 ... written out:
    p = torch.full((3,), 1 / 3)
    q = torch.tensor([0.5, 0.25, 0.25])
    kl0 = float((p * (p / q).log()).sum())
    assert float(metric(run, prompts)) == pytest.approx(-kl0 / 2, rel=1e-5)
    assert kl0 > 0
    # the reference is fixed when the metric is built, and the metric takes gradients
    clean[:, -1] = 50.0
    assert float(metric(run, prompts)) == pytest.approx(-kl0 / 2, rel=1e-5)
    run.requires_grad_(True)
    metric(run, prompts).backward()
    assert run.grad is not None and run.grad[:, 0].abs().sum() == 0


def test_get_metric_by_name():
    assert METRICS == ("logit_diff", "kl")
    assert get_metric("logit_diff") is logit_diff
    assert get_metric("logit_diff", torch.zeros(1, 1, 2)) is logit_diff
    clean = torch.tensor([[[0.0, 1.0]]])
    kl = get_metric("kl", clean)
    assert float(kl(clean, _prompts([0], [1], pos=1))) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ConfigError) as error:
        get_metric("kl")
    assert str(error.value) == "the kl metric needs the clean run's logits"
    with pytest.raises(ConfigError) as error:
        get_metric("accuracy")
    assert str(error.value) == "unknown metric 'accuracy'; metrics: ['logit_diff', 'kl']"


# ---------------------------------------------------------------- ROC AUC


def test_roc_auc_by_hand():
    scores = {"a": 0.9, "b": -0.8, "c": 0.3, "d": 0.8, "e": 0.1}
    # |score|: positives a 0.9, c 0.3; negatives b 0.8, d 0.8, e 0.1
    # a beats all three; c beats e only: 4 wins of 6 pairs
    assert roc_auc(scores, {"a", "c"}) == pytest.approx(4 / 6)
    # ties count half: positive b ties negative d
    assert roc_auc(scores, {"b"}) == pytest.approx((2 + 0.5) / 4)
    assert roc_auc({"x": 2.0, "y": 1.0}, {"x"}) == 1.0
    assert roc_auc({"x": 2.0, "y": 1.0}, {"y"}) == 0.0
    # names outside the scores are ignored
    assert roc_auc({"x": 2.0, "y": 1.0}, {"x", "zzz"}) == 1.0
    for positives, counts in (({"x", "y"}, "2 and 0"), (set(), "0 and 2")):
        with pytest.raises(ConfigError) as error:
            roc_auc({"x": 2.0, "y": 1.0}, positives)
        assert str(error.value) == f"ROC AUC needs positives and negatives; got {counts}"


def _brute_force_auc(scores, positives):
    pos = [abs(v) for k, v in scores.items() if k in positives]
    neg = [abs(v) for k, v in scores.items() if k not in positives]
    total = 0.0
    for p in pos:
        for n in neg:
            total += 1.0 if p > n else 0.5 if p == n else 0.0
    return total / (len(pos) * len(neg))


def test_roc_auc_agrees_with_a_pair_count_and_sklearn_on_random_scores():
    try:
        from sklearn.metrics import roc_auc_score
    except ImportError:  # pragma: no cover
        roc_auc_score = None
    rng = random.Random(0)
    for trial in range(80):
        n = rng.randint(2, 12)
        names = [f"n{i}" for i in range(n)]
        # few distinct values, so ties are common; signs must not matter
        scores = {k: rng.choice([-1, 1]) * rng.randint(0, 4) / 2 for k in names}
        positives = set(rng.sample(names, rng.randint(1, n - 1)))
        got = roc_auc(scores, positives)
        assert got == pytest.approx(_brute_force_auc(scores, positives)), trial
        if roc_auc_score is not None:
            labels = [k in positives for k in names]
            assert got == pytest.approx(roc_auc_score(labels, [abs(scores[k]) for k in names]))
        # relabelling the components leaves the statistic as it was
        rename = dict(zip(names, rng.sample(names, n), strict=True))
        assert roc_auc({rename[k]: v for k, v in scores.items()},
                       {rename[k] for k in positives}) == pytest.approx(got)


def test_roc_auc_sees_a_structural_baseline_it_should_beat():
    # a score that is 1 on every component of layer 0 and 0 elsewhere gets AUC 0.5 on a
    # circuit that has one head in each layer: a method has to do better than the layer
    names = [f"L{layer}.H{h}" for layer in range(2) for h in range(4)]
    layer_only = {k: float(k.startswith("L0")) for k in names}
    assert roc_auc(layer_only, {"L0.H1", "L1.H2"}) == pytest.approx(0.5)


# ---------------------------------------------------------------- precision, edges


def test_precision_recall_by_hand():
    assert precision_recall({"a", "b", "c", "d"}, {"a", "b", "x"}) == (0.5, pytest.approx(2 / 3))
    assert precision_recall(set(), {"a"}) == (0.0, 0.0)
    assert precision_recall({"a"}, set()) == (0.0, 0.0)
    assert precision_recall({"a"}, frozenset({"a"})) == (1.0, 1.0)
    assert precision_recall(["a", "a", "b"], {"a"}) == (1 / 3, 1.0)


def test_component_edge_scores_sum_absolute_scores_over_a_heads_inputs():
    scores = {"L0.H1 -> L2.H0.q": 1.0, "L0.H1 -> L2.H0.k": -2.0, "L0.H1 -> L2.H0.v": 0.5,
              "L0.H1 -> L2.mlp": -3.0, "embed -> L0.H1.v": 0.25, "L2.H0 -> logits": -1.5,
              "L1.mlp -> L2.H0.q": 4.0}
    assert component_edge_scores(scores) == {
        "L0.H1 -> L2.H0": 3.5, "L0.H1 -> L2.mlp": 3.0, "embed -> L0.H1": 0.25,
        "L2.H0 -> logits": 1.5, "L1.mlp -> L2.H0": 4.0}
    truth = CircuitTruth(frozenset({"L0.H1"}), frozenset({"embed -> L0.H1"}), "siit")
    assert truth.source == "siit" and "L0.H1" in truth.nodes


# ---------------------------------------------------------------- ground truth


class _PatternModel:
    """Returns preset attention patterns ``(batch, heads, q, k)`` per layer."""

    def __init__(self, patterns):
        self.patterns = patterns
        self.cfg = SimpleNamespace(n_layers=len(patterns), n_heads=patterns[0].shape[1])
        self.seen = None

    def run_with_cache(self, tokens):
        self.seen = tokens
        cache = {f"blocks.{i}.attn.hook_pattern": p for i, p in enumerate(self.patterns)}
        return None, cache


def _induction_patterns(prev_heads, induction_heads, n_layers=2, n_heads=3, pos=None,
                        strength=0.6):
    period = INDUCTION_PROMPT_PERIOD
    pos = pos or 2 * period + 1
    patterns = []
    for layer in range(n_layers):
        p = torch.zeros(2, n_heads, pos, pos)
        for h in range(n_heads):
            if (layer, h) in prev_heads:
                for q in range(1, pos):
                    p[:, h, q, q - 1] = strength
            if (layer, h) in induction_heads:
                for q in range(period + 1, pos):
                    p[:, h, q, q - period + 1] = strength
                # the first query read is period + 1: make it count twice as much
                p[:, h, period + 1, 2] = 2 * strength
        patterns.append(p)
    return patterns


def test_head_diagnostics_and_the_induction_rule():
    period = INDUCTION_PROMPT_PERIOD
    pos = 2 * period + 1
    model = _PatternModel(_induction_patterns({(0, 1)}, {(1, 2)}))
    prompts = PromptSet("induction", torch.ones(2, pos, dtype=torch.long),
                        torch.zeros(2, pos, dtype=torch.long), torch.zeros(2), torch.zeros(2))
    diag = head_diagnostics(model, prompts)
    assert torch.equal(model.seen, prompts.clean)
    assert set(diag) == {"previous_token", "induction"}
    expected_prev = torch.zeros(2, 3)
    expected_prev[0, 1] = 0.6
    assert torch.allclose(diag["previous_token"], expected_prev)
    expected_ind = torch.zeros(2, 3)
    expected_ind[1, 2] = 0.6 * (pos - period) / (pos - period - 1)
    assert torch.allclose(diag["induction"], expected_ind)
    truth = ground_truth(model, prompts)
    assert truth.nodes == {"L0.H1", "L1.H2"}
    assert truth.edges == {"embed -> L0.H1.v", "L0.H1 -> L1.H2.k", "L1.H2 -> logits"}
    # the rules use >= 0.5, a previous-token head counts only in layer 0 and an induction
    # head only after it
    edge = _PatternModel(_induction_patterns({(0, 0), (1, 0)}, {(0, 2), (1, 1)}, strength=0.5))
    truth = ground_truth(edge, prompts)
    assert truth.nodes == {"L0.H0", "L1.H1"}
    weak = _PatternModel(_induction_patterns({(0, 0)}, {(1, 1)}, strength=0.4))
    with pytest.raises(ConfigError) as error:
        ground_truth(weak, prompts)
    assert str(error.value) == ("no head passes the induction ground-truth rule; is the model "
                                "trained? (diagnostics: previous_token, induction)")


def test_the_ioi_rule_reads_attention_from_the_end_to_s2():
    pos = 5
    patterns = [torch.zeros(2, 2, pos, pos) for _ in range(2)]
    patterns[0][:, 1, 4, 2] = torch.tensor([0.2, 0.4])  # mean 0.3: in
    patterns[1][:, 0, 4, 2] = torch.tensor([0.2, 0.39])  # mean 0.295: out
    patterns[1][:, 1, 4, 3] = 0.9  # attends to another position: out
    model = _PatternModel(patterns)
    prompts = _prompts([0, 0], [1, 1], pos=pos, positions={"end": 4, "s2": 2})
    diag = head_diagnostics(model, prompts)
    assert set(diag) == {"previous_token", "end_to_s2"}
    assert diag["end_to_s2"][0, 1] == pytest.approx(0.3)
    truth = ground_truth(model, prompts)
    assert truth.nodes == {"L0.H1"}
    assert truth.edges == {"L0.H1 -> logits", "embed -> L0.H1.v"}
    assert truth.diagnostics is not None
    other = PromptSet("greater-than", prompts.clean, prompts.corrupted, prompts.answer,
                      prompts.wrong, {})
    with pytest.raises(ConfigError) as error:
        ground_truth(model, other)
    assert str(error.value) == ("no ground-truth circuit is defined for task 'greater-than'; "
                                "tasks with one: ['induction', 'ioi']")


# ---------------------------------------------------------------- faithfulness


class _LinearGraph:
    """Edges with fixed contributions to the answer logit: the answer's logit at the last
    position is the sum of the kept edges' weights plus, for cut edges, the corrupted
    run's ``corrupt`` weights; the wrong token's logit is 0."""

    def __init__(self, clean_w, corrupt_w):
        self.clean_w = torch.tensor(clean_w)
        self.corrupt_w = torch.tensor(corrupt_w)
        self.edges = [f"e{i}" for i in range(len(clean_w))]

    def forward(self, tokens, mask=None, corrupted_outputs=None):
        if corrupted_outputs is None:  # a plain run, clean or corrupted
            w = self.clean_w if tokens[0, 0] == 1 else self.corrupt_w
            outputs = w
        else:
            w = mask * self.clean_w + (1 - mask) * corrupted_outputs
            outputs = None
        logits = torch.zeros(len(tokens), tokens.shape[1], 2)
        logits[:, -1, 0] = w.sum()
        return logits, outputs, None


def test_faithfulness_curve_by_hand():
    graph = _LinearGraph([4.0, 1.0, 0.0, 3.0], [0.0, 0.0, 0.0, -2.0])
    prompts = PromptSet("ioi", torch.ones(1, 2, dtype=torch.long),
                        torch.zeros(1, 2, dtype=torch.long), torch.tensor([0]), torch.tensor([1]))
    # clean metric 8, corrupted -2: gap 10; scores rank edges 0, 3, 1, 2 by |score|
    scores = torch.tensor([5.0, 0.5, 0.1, -2.0])
    curve = faithfulness_curve(graph, prompts, scores, sizes=[1, 2, 3, 4])
    # top 1: edge 0 clean (4) + edge 3 corrupted (-2) = 2 -> (2 + 2) / 10
    # top 2: 4 + 3 = 7 -> 0.9; top 3: 8 -> 1.0; all: 1.0
    assert curve == [(1, pytest.approx(0.4)), (2, pytest.approx(0.9)), (3, pytest.approx(1.0)),
                     (4, pytest.approx(1.0))]
    # default sizes: powers of two up to the number of edges, and the number of edges
    assert [k for k, _ in faithfulness_curve(graph, prompts, scores)] == [1, 2, 4]
    # a metric passed by name, and a metric passed as a function
    by_name = faithfulness_curve(graph, prompts, scores, sizes=[2], metric="logit_diff")
    assert by_name == [(2, pytest.approx(0.9))]
    # the KL metric is built from the clean run's logits: the clean run scores 0, the
    # corrupted one -KL, and the top edges recover a share of that gap
    kl = faithfulness_curve(graph, prompts, scores, sizes=[1, 4], metric="kl")
    assert kl[0][0] == 1 and 0 < kl[0][1] < 1 and kl[1] == (4, pytest.approx(1.0))
    doubled = faithfulness_curve(graph, prompts, scores, sizes=[2],
                                 metric=lambda logits, p: 2 * logit_diff(logits, p))
    assert doubled == [(2, pytest.approx(0.9))]


def test_faithfulness_curve_default_sizes_on_a_larger_graph(monkeypatch):
    graph = _LinearGraph([1.0] * 70, [0.0] * 70)
    prompts = PromptSet("ioi", torch.ones(1, 2, dtype=torch.long),
                        torch.zeros(1, 2, dtype=torch.long), torch.tensor([0]), torch.tensor([1]))
    curve = faithfulness_curve(graph, prompts, torch.arange(70.0))
    assert curve == [(k, pytest.approx(k / 70)) for k in (1, 2, 4, 8, 16, 32, 64, 70)]
    assert scoring.faithfulness_curve is faithfulness_curve
