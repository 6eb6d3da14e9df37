"""Self-report scores and baselines by hand: Pearson r, R², drift, and each baseline on a
stand-in model whose stream and neurons are small tensors written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mechinterp.errors import ConfigError, ShapeError
from mechinterp.selfreport import baselines
from mechinterp.selfreport.baselines import (
    BaselineResult,
    cross_prediction_baseline,
    linear_probe_baseline,
    mean_baseline,
    mlp_probe_baseline,
    residual_features,
    token_lookup_baseline,
)
from mechinterp.selfreport.dataset import ActivationDataset
from mechinterp.selfreport.scores import (
    activation_drift,
    pearson_r,
    r2_score,
    score_predictions,
)

# ---------------------------------------------------------------- scores


def test_pearson_r_by_hand_per_neuron():
    target = torch.tensor([[1.0, 1.0, 5.0], [2.0, 2.0, 5.0], [3.0, 4.0, 5.0]])
    prediction = torch.tensor([[2.0, 3.0, 1.0], [4.0, 2.0, 2.0], [6.0, 1.0, 3.0]])
    r = pearson_r(prediction, target)
    # column 0: exact line, r = 1; column 1: prediction [3, 2, 1] against [1, 2, 4]:
    # centred (1, 0, -1) and (-4/3, -1/3, 5/3): sum -3, norms sqrt(2) and sqrt(42)/3
    # column 2: constant target, r reported as 0
    assert r.dtype == torch.float32 and r.shape == (3,)
    assert r.tolist() == pytest.approx([1.0, -3 / (math.sqrt(2) * math.sqrt(42) / 3), 0.0])
    # symmetric, and invariant under an affine change of either side with a positive scale
    assert torch.allclose(pearson_r(target, prediction), r)
    assert torch.allclose(pearson_r(3 * prediction - 7, target), r)
    assert torch.allclose(pearson_r(-prediction, target), -r)


def test_pearson_r_of_a_constant_prediction_is_zero_and_small_scales_still_count():
    target = torch.tensor([[0.0], [1.0], [3.0]])
    assert pearson_r(torch.full((3, 1), 2.0), target).tolist() == [0.0]
    # a neuron with tiny but real variance is correlated as any other
    tiny = torch.tensor([[0.0], [1e-3], [3e-3]])
    assert pearson_r(tiny, tiny).tolist() == pytest.approx([1.0])
    assert pearson_r(tiny, -tiny).tolist() == pytest.approx([-1.0])
    # below 1e-12 of joint norm the neuron counts as constant
    dust = torch.tensor([[0.0], [1e-7], [0.0]])
    assert pearson_r(dust, dust).tolist() == [0.0]


def test_scores_take_one_neuron_as_a_vector_and_refuse_bad_shapes():
    a = torch.tensor([1.0, 2.0, 4.0])
    assert pearson_r(a, 2 * a).tolist() == pytest.approx([1.0])
    assert r2_score(a, a).tolist() == [1.0]
    with pytest.raises(ShapeError) as error:
        pearson_r(torch.zeros(3, 2), torch.zeros(3, 1))
    assert str(error.value) == ("prediction has shape (3, 2) but the target has (3, 1); both "
                                "must be (rows, n_neurons)")
    for shape in ((1, 2), (1,), (2, 2, 2)):
        with pytest.raises(ShapeError) as error:
            r2_score(torch.zeros(shape), torch.zeros(shape))
        assert "scores need (rows, n_neurons) with at least 2 rows, got" in str(error.value)
    pearson_r(torch.zeros(2, 1), torch.zeros(2, 1))  # two rows are enough
    # gradients do not flow back and the input is not changed
    p = torch.tensor([[1.0], [2.0]], requires_grad=True)
    assert not r2_score(p, torch.tensor([[1.0], [3.0]])).requires_grad


def test_r2_by_hand():
    target = torch.tensor([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0]])
    prediction = torch.tensor([[1.0, 2.0], [2.0, 2.0], [4.0, 3.0]])
    r2 = r2_score(prediction, target)
    # column 0: SS_res 1, SS_tot 2 -> 0.5; column 1: constant target, SS_tot held at 1e-12
    assert r2.dtype == torch.float32
    assert r2.tolist() == pytest.approx([0.5, 1 - 1 / 1e-12], rel=1e-6)
    assert r2_score(target[:, :1].expand(3, 1).mean(0).expand(3, 1), target[:, :1]).tolist() == [
        0.0]
    assert r2_score(target, target).tolist() == [1.0, 1.0]


def test_score_predictions_averages_over_neurons_and_rounds_the_lists():
    target = torch.tensor([[0.0, 0.0], [1.0, 3.0], [2.0, 0.0], [3.0, 3.0]])
    prediction = torch.tensor([[0.0, 1.0], [1.0, 2.0], [3.0, 0.0], [3.0, 2.0]])
    r = pearson_r(prediction, target)
    r2 = r2_score(prediction, target)
    out = score_predictions(prediction, target)
    assert set(out) == {"pearson_r", "r2", "pearson_r_per_neuron", "r2_per_neuron"}
    assert out["pearson_r"] == pytest.approx(float(r.mean()))
    assert out["r2"] == pytest.approx(float(r2.mean()))
    assert out["pearson_r_per_neuron"] == [round(float(x), 6) for x in r]
    assert out["r2_per_neuron"] == [round(float(x), 6) for x in r2]
    # by hand: column 0 SS_res 1, SS_tot 5 -> 0.8; column 1 SS_res 3, SS_tot 9 -> 2/3
    assert out["r2_per_neuron"] == [0.8, round(2 / 3, 6)] == [0.8, 0.666667]
    assert out["r2"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert out["pearson_r_per_neuron"][1] == round(float(np.corrcoef([1, 2, 0, 2],
                                                                     [0, 3, 0, 3])[0, 1]), 6)
    assert type(out["pearson_r"]) is float and type(out["r2"]) is float


def test_activation_drift_by_hand():
    before = torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    after = torch.tensor([[2.0, 1.0], [4.0, 0.0], [6.0, 1.0]])
    out = activation_drift(before, after)
    # neuron 0 scaled (r 1, drift 0); neuron 1 flipped (r -1, drift 2)
    assert out["drift_per_neuron"] == [0.0, 2.0]
    assert out["drift"] == pytest.approx(1.0)
    assert out["correlation"] == pytest.approx(0.0)
    # change: squares (1, 1, 4, 1, 9, 1) mean 17/6; original squares (1, 0, 4, 1, 9, 0) 15/6
    assert out["relative_change"] == pytest.approx(math.sqrt(17 / 15))
    assert all(type(out[k]) is float for k in ("drift", "correlation", "relative_change"))
    zero = activation_drift(torch.zeros(3, 1), torch.tensor([[0.0], [0.0], [1e-6]]))
    assert zero["relative_change"] == pytest.approx(math.sqrt(1e-12 / 3 / 1e-12))
    third = activation_drift(torch.tensor([[0.0], [1.0], [2.0]]),
                             torch.tensor([[0.0], [2.0], [1.0]]))
    assert third["drift_per_neuron"] == [0.5] and third["drift"] == pytest.approx(0.5)
    assert third["correlation"] == pytest.approx(0.5)
    # r = 2/sqrt(14): the per-neuron drift is rounded to six places
    odd = activation_drift(torch.tensor([[0.0], [1.0], [2.0], [3.0]]),
                           torch.tensor([[0.0], [3.0], [1.0], [2.0]]))
    # centred (-1.5, -.5, .5, 1.5) and (-1.5, 1.5, -.5, .5): r = 2 / 5
    assert odd["drift_per_neuron"] == [0.6] and odd["drift"] == pytest.approx(0.6)
    odder = activation_drift(torch.tensor([[0.0], [1.0], [2.0]]),
                             torch.tensor([[0.0], [1.0], [5.0]]))
    r = float(np.corrcoef([0, 1, 2], [0, 1, 5])[0, 1])
    assert odder["drift_per_neuron"] == [round(1 - r, 6)] != [round(1 - r, 7)]


# ---------------------------------------------------------------- baselines

D_MODEL = 3


class _Stream(torch.nn.Module):
    """A stand-in language model: the stream at any hook is a fixed embedding of the current
    token; records the hooks it was asked to run and the batches it saw."""

    def __init__(self, vocab=6):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.embed = torch.nn.Parameter(torch.randn(vocab, D_MODEL, generator=g))
        self.calls = []

    def stream(self, tokens):
        return self.embed.detach()[tokens]

    def run_with_hooks(self, tokens, fwd_hooks):
        self.calls.append((tokens.shape, [h for h, _ in fwd_hooks]))
        act = self.stream(tokens)
        for _, fn in fwd_hooks:
            fn(act, hook=None)
        return act


def _dataset(targets_of, n_docs=10, pos=4, first=1, test_docs=(7, 8, 9)):
    """Documents of ``pos`` tokens whose neuron targets are ``targets_of(tokens)``, split so
    the documents ``test_docs`` are the test split."""
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 5, (n_docs, pos), generator=g)
    tokens[:, 0] = 5  # a <bos>-like token that is never an example
    ids = torch.arange(100, 100 + n_docs)
    test = torch.tensor([100 + i for i in test_docs])
    train = torch.tensor([i for i in ids.tolist() if i not in test.tolist()])
    return ActivationDataset(tokens, targets_of(tokens), ids, train, test, layer=1,
                             neurons=[4, 9], first_position=first, seed=0)


def _by_token(tokens):
    table = torch.tensor([[0.0, 1.0], [2.0, -1.0], [4.0, 3.0], [6.0, 0.5], [8.0, 2.0],
                          [50.0, 50.0]])
    return table[tokens]


def test_mean_baseline_predicts_the_training_mean():
    data = _dataset(_by_token)
    result = mean_baseline(data)
    train = data.flat_targets("train")
    assert isinstance(result, BaselineResult) and result.name == "mean"
    assert result.prediction.shape == (3 * 3, 2)
    assert torch.allclose(result.prediction, train.mean(0).expand(9, 2))
    assert result.scores["n_rows"] == 9
    assert result.scores["pearson_r"] == 0.0 and result.details == {}
    test = data.flat_targets("test")
    expected = score_predictions(train.mean(0).expand(9, 2), test)
    assert result.scores["r2"] == pytest.approx(expected["r2"])
    # the mean of other documents is not the test mean: R² is below zero, by this much
    ss = ((test - train.mean(0)) ** 2).sum(0) / ((test - test.mean(0)) ** 2).sum(0)
    assert result.scores["r2"] == pytest.approx(float((1 - ss).mean()), rel=1e-5)
    result.prediction[0, 0] = 1e6  # a copy, not a view of one row
    assert result.prediction[1, 0] != 1e6


def test_token_lookup_baseline_by_hand():
    data = _dataset(_by_token)
    result = token_lookup_baseline(data)
    assert result.name == "token_lookup"
    test = data.examples("test")
    train_tokens = set(data.examples("train")["token"].tolist())
    expected = []
    for t in test["token"].tolist():
        expected.append(_by_token(torch.tensor(t)).tolist() if t in train_tokens
                        else data.flat_targets("train").mean(0).tolist())
    assert torch.allclose(result.prediction, torch.tensor(expected))
    unseen = sum(t not in train_tokens for t in test["token"].tolist())
    assert result.details == {"unseen_test_rows": unseen}


def test_token_lookup_averages_a_tokens_rows_and_falls_back_on_the_mean_for_new_tokens():
    tokens = torch.tensor([[5, 0, 0, 1], [5, 0, 1, 1], [5, 2, 3, 3]])
    targets = torch.zeros(3, 4, 1)
    targets[0, 1:, 0] = torch.tensor([1.0, 3.0, 10.0])
    targets[1, 1:, 0] = torch.tensor([5.0, 20.0, 30.0])
    targets[2, 1:, 0] = torch.tensor([7.0, 7.0, 7.0])
    data = ActivationDataset(tokens, targets, torch.arange(3), torch.tensor([0, 1]),
                             torch.tensor([2]), 0, [0], 1, 0)
    result = token_lookup_baseline(data)
    # token 0 seen three times (1, 3, 5); token 1 three times (10, 20, 30); 2 and 3 never:
    # the training mean (1 + 3 + 10 + 5 + 20 + 30) / 6 = 11.5
    assert result.prediction.flatten().tolist() == [11.5, 11.5, 11.5]
    # with two neurons, each unseen row takes each neuron's own mean
    two = ActivationDataset(tokens, torch.cat([targets, -2 * targets], 2), torch.arange(3),
                            torch.tensor([0, 1]), torch.tensor([2]), 0, [0, 1], 1, 0)
    assert token_lookup_baseline(two).prediction.tolist() == [[11.5, -23.0]] * 3
    assert result.details["unseen_test_rows"] == 3
    swapped = ActivationDataset(tokens, targets, torch.arange(3), torch.tensor([0, 2]),
                                torch.tensor([1]), 0, [0], 1, 0)
    # train rows: token 0 -> 1, 3; token 1 -> 10; tokens 2, 3 -> 7; test tokens 0, 1, 1
    assert token_lookup_baseline(swapped).prediction.flatten().tolist() == [2.0, 10.0, 10.0]
    assert token_lookup_baseline(swapped).details["unseen_test_rows"] == 0


def test_residual_features_read_every_example_position_document_major():
    model = _Stream()
    tokens = torch.tensor([[5, 1, 2], [5, 3, 4], [5, 0, 0]])
    x = residual_features(model, tokens, "blocks.0.hook_resid_mid", batch_size=2)
    assert x.dtype == torch.float64
    assert torch.equal(x, model.stream(tokens[:, 1:]).reshape(-1, D_MODEL).double())
    assert [c[1] for c in model.calls] == [["blocks.0.hook_resid_mid"]] * 2
    assert [tuple(c[0]) for c in model.calls] == [(2, 3), (1, 3)]
    # position 0 counts when asked; the default batch is 32 documents
    model.calls.clear()
    many = torch.randint(0, 5, (40, 3), generator=torch.Generator().manual_seed(0))
    assert torch.equal(residual_features(model, many, "h", first_position=0),
                       model.stream(many).reshape(-1, D_MODEL).double())
    assert [tuple(c[0]) for c in model.calls] == [(32, 3), (8, 3)]
    assert residual_features(model, many, "h").shape == (80, D_MODEL)


def _linear_targets(tokens):
    w = torch.tensor([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]])
    return _Stream().stream(tokens) @ w + torch.tensor([0.25, -1.0])


def _ridge_reference(x, y, alpha):
    x, y = x.double(), y.double()
    mx, my = x.mean(0), y.mean(0)
    xc = x - mx
    w = torch.linalg.solve(xc.T @ xc + alpha * len(x) * torch.eye(x.shape[1], dtype=x.dtype),
                           xc.T @ (y - my))
    return w, my - mx @ w


def test_linear_probe_fits_ridge_on_train_and_chooses_the_penalty_on_held_out_documents():
    data = _dataset(_linear_targets, n_docs=12, pos=5, test_docs=(9, 10, 11))
    model = _Stream()
    result = linear_probe_baseline(model, data, "blocks.1.hook_resid_mid",
                                   alphas=(10.0, 1e-6, 0.1), validation_fraction=0.25)
    assert {h for _, hooks in model.calls for h in hooks} == {"blocks.1.hook_resid_mid"}
    assert result.name == "linear_probe"
    assert result.details["hook"] == "blocks.1.hook_resid_mid"
    # the targets are an exact linear map of the stream: the smallest penalty wins
    assert result.details["alpha"] == 1e-6
    val = result.details["validation_r2"]
    assert list(val) == ["10.0", "1e-06", "0.1"]
    assert val["1e-06"] == pytest.approx(1.0, abs=1e-6) and val["10.0"] < val["0.1"] < 1
    test = data.flat_targets("test")
    assert result.prediction.dtype == torch.float32
    assert torch.allclose(result.prediction, test, atol=1e-4)
    assert result.scores["r2"] == pytest.approx(1.0, abs=1e-5)
    # 9 train documents, a quarter held out rounds to 2: the penalty is scored on the
    # last two documents' rows, after a fit on the first seven, then refit on all nine
    x = model.stream(data.split("train")[0][:, 1:]).reshape(-1, D_MODEL).double()
    y = data.flat_targets("train").double()
    for alpha in (10.0, 0.1):
        w, b = _ridge_reference(x[:28], y[:28], alpha)
        assert val[str(alpha)] == round(score_predictions(x[28:] @ w + b, y[28:])["r2"], 6)
    w, b = _ridge_reference(x, y, 1e-6)
    xt = model.stream(data.split("test")[0][:, 1:]).reshape(-1, D_MODEL).double()
    assert torch.allclose(result.prediction, (xt @ w + b).float(), atol=1e-5)


def test_linear_probe_penalty_counts_rows_and_the_default_penalties():
    # noisy targets: a large penalty does better on the held-out documents than none
    def noisy(tokens):
        g = torch.Generator().manual_seed(3)
        return _linear_targets(tokens) * 0.01 + torch.randn(*tokens.shape, 2, generator=g)

    data = _dataset(noisy, n_docs=12, pos=5, test_docs=(9, 10, 11))
    result = linear_probe_baseline(_Stream(), data, "h")
    assert list(result.details["validation_r2"]) == ["1e-06", "1e-05", "0.0001", "0.001",
                                                      "0.01", "0.1"]
    best = max(result.details["validation_r2"].items(), key=lambda kv: kv[1])[0]
    assert str(result.details["alpha"]) == best
    # default validation share 0.2 of 9 documents rounds to 2, as above
    x = _Stream().stream(data.split("train")[0][:, 1:]).reshape(-1, D_MODEL).double()
    y = data.flat_targets("train").double()
    w, b = _ridge_reference(x[:28], y[:28], 0.1)
    assert result.details["validation_r2"]["0.1"] == pytest.approx(
        score_predictions(x[28:] @ w + b, y[28:])["r2"], abs=1e-6)
    # examples may start later than position 1: features and targets start there too
    late = ActivationDataset(data.tokens, data.targets, data.document_ids, data.train_ids,
                             data.test_ids, 1, [4, 9], 2, 0)
    result = linear_probe_baseline(_Stream(), late, "h", alphas=(1e-3,))
    assert result.prediction.shape == (3 * 3, 2)
    x = _Stream().stream(late.split("train")[0][:, 2:]).reshape(-1, D_MODEL).double()
    w, b = _ridge_reference(x, late.flat_targets("train").double(), 1e-3)
    xt = _Stream().stream(late.split("test")[0][:, 2:]).reshape(-1, D_MODEL).double()
    assert torch.allclose(result.prediction, (xt @ w + b).float(), atol=1e-5)
    with pytest.raises(ConfigError) as error:
        linear_probe_baseline(_Stream(), data, "h", alphas=())
    assert str(error.value) == "alphas must hold at least one ridge penalty"
    for fraction in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ConfigError) as error:
            linear_probe_baseline(_Stream(), data, "h", validation_fraction=fraction)
        assert str(error.value) == f"validation_fraction must lie in (0, 1), got {fraction}"


def test_train_features_hold_out_at_least_one_whole_document():
    data = _dataset(_linear_targets, n_docs=6, pos=4, test_docs=(5,))
    x, y, cut = baselines._train_features(_Stream(), data, "h", 0.01)
    assert x.shape == (15, D_MODEL) and y.shape == (15, 2) and y.dtype == torch.float64
    assert cut == 4 * 3  # one of five documents held out, three rows each
    assert torch.equal(y, data.flat_targets("train").double())
    _, _, cut = baselines._train_features(_Stream(), data, "h", 0.5)
    assert cut == 3 * 3  # round(2.5) = 2 of five documents held out
    first2 = ActivationDataset(data.tokens, data.targets, data.document_ids, data.train_ids,
                               data.test_ids, 1, [4, 9], 2, 0)
    x, y, cut = baselines._train_features(_Stream(), first2, "h", 0.2)
    assert x.shape == (10, D_MODEL) and cut == 4 * 2


def _mlp_reference(x, y, cut, test_x, hidden, steps, lr, seed):
    x, y, test_x = x.float(), y.float(), test_x.float()
    mean, std = y[:cut].mean(0), y[:cut].std(0).clamp(min=1e-6)
    torch.manual_seed(seed)
    probe = torch.nn.Sequential(torch.nn.LayerNorm(x.shape[1]),
                                torch.nn.Linear(x.shape[1], hidden), torch.nn.GELU(),
                                torch.nn.Linear(hidden, y.shape[1]))
    opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=0.0)
    target = (y[:cut] - mean) / std
    best, best_step, state = -float("inf"), 0, None
    for step in range(1, steps + 1):
        loss = ((probe(x[:cut]) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps:
            with torch.no_grad():
                r2 = score_predictions(probe(x[cut:]) * std + mean, y[cut:])["r2"]
            if r2 > best:
                best, best_step = r2, step
                state = {k: v.clone() for k, v in probe.state_dict().items()}
    probe.load_state_dict(state)
    with torch.no_grad():
        return probe(test_x) * std + mean, best_step, best


def test_mlp_probe_keeps_the_checked_step_with_the_best_validation_r2():
    def curved(tokens):
        return torch.tanh(3 * _Stream().stream(tokens)[..., :2]) * 5 + 1

    data = _dataset(curved, n_docs=12, pos=5, test_docs=(9, 10, 11))
    model = _Stream()
    x = model.stream(data.split("train")[0][:, 1:]).reshape(-1, D_MODEL).double()
    y = data.flat_targets("train").double()
    test_x = model.stream(data.split("test")[0][:, 1:]).reshape(-1, D_MODEL)
    for kwargs in ({"steps": 120, "hidden": 5, "lr": 0.05, "seed": 1},
                   {"steps": 60, "hidden": 3, "lr": 0.5, "seed": 2, "validation_fraction": 0.4},
                   {"steps": 50, "hidden": 2, "lr": 0.1, "seed": 3}):  # R² 0.88089180
        fraction = kwargs.get("validation_fraction", 0.2)
        cut = (9 - max(1, round(9 * fraction))) * 4
        want, step, r2 = _mlp_reference(x, y, cut, test_x, kwargs["hidden"], kwargs["steps"],
                                        kwargs["lr"], kwargs["seed"])
        torch.manual_seed(123)
        outside = torch.rand(1)
        result = mlp_probe_baseline(model, data, "h", **kwargs)
        torch.manual_seed(123)
        assert torch.equal(torch.rand(1), outside)  # the global generator is left alone
        assert result.name == "mlp_probe"
        assert torch.allclose(result.prediction, want, atol=1e-5)
        assert result.details == {"hook": "h", "hidden": kwargs["hidden"], "step": step,
                                  "validation_r2": round(r2, 6)}
        assert result.scores["n_rows"] == 12
    assert {h for _, hooks in model.calls for h in hooks} == {"h"}
    # a probe that cannot move (lr 0) scores the same at every check: the first is kept
    still = mlp_probe_baseline(model, data, "h", steps=120, hidden=3, lr=0.0)
    assert still.details["step"] == 50
    # the defaults: 64 hidden units, 500 steps, lr 1e-2, seed 0, a fifth held out; targets
    # with a standard deviation below 1 are standardised by it
    data = _dataset(lambda t: 0.1 * _linear_targets(t), n_docs=12, pos=5, test_docs=(9, 10, 11))
    y = data.flat_targets("train").double()
    want, step, r2 = _mlp_reference(x, y, 7 * 4, test_x, 64, 500, 1e-2, 0)
    result = mlp_probe_baseline(model, data, "h")
    assert torch.allclose(result.prediction, want, atol=1e-4)
    assert result.details["step"] == step and result.details["hidden"] == 64
    # examples from position 2 on
    late = ActivationDataset(data.tokens, data.targets, data.document_ids, data.train_ids,
                             data.test_ids, 1, [4, 9], 2, 0)
    xl = model.stream(late.split("train")[0][:, 2:]).reshape(-1, D_MODEL).double()
    tl = model.stream(late.split("test")[0][:, 2:]).reshape(-1, D_MODEL)
    want, step, _ = _mlp_reference(xl, late.flat_targets("train").double(), 7 * 3, tl, 4, 60,
                                   0.05, 0)
    result = mlp_probe_baseline(model, late, "h", hidden=4, steps=60, lr=0.05)
    assert torch.allclose(result.prediction, want, atol=1e-5) and result.details["step"] == step
    for bad in ({"hidden": 0}, {"steps": 0}):
        with pytest.raises(ConfigError) as error:
            mlp_probe_baseline(model, data, "h", **{"hidden": 4, "steps": 2, **bad})
        assert str(error.value) == (f"hidden and steps must be at least 1, got "
                                    f"{bad.get('hidden', 4)} and {bad.get('steps', 2)}")
    mlp_probe_baseline(model, data, "h", hidden=1, steps=1)  # one of each is enough


def test_cross_prediction_trains_another_model_without_the_anchor(monkeypatch):
    data = _dataset(_by_token)
    seen = {}

    class Predictor:
        @classmethod
        def for_dataset(cls, other, dataset, head, **kwargs):
            seen["for_dataset"] = (other, dataset, head, kwargs)
            return "predictor"

    class Trainer:
        def __init__(self, predictor, dataset, **settings):
            seen["trainer"] = (predictor, dataset, settings)

        def predict(self, split):
            seen["split"] = split
            return data.flat_targets("test") + 1, None

    def train(trainer, run, retrain=False):
        seen["run"] = (run, retrain)
        assert isinstance(trainer, Trainer)
        return {"train_seconds": 2.5, "cached": True}

    monkeypatch.setattr(baselines, "ActivationPredictor", Predictor)
    monkeypatch.setattr(baselines, "PredictorTrainer", Trainer)
    monkeypatch.setattr(baselines, "train_predictor", train)
    other = object()
    settings = {"steps": 3, "anchor_weight": 5.0, "seed": 7}
    result = cross_prediction_baseline(other, data, "token", settings, {"model": "b"},
                                       n_bins=4, tokenizer="tok", read_hook="hk",
                                       bin_tokens="bins", retrain=True)
    assert seen["for_dataset"] == (other, data, "token", {
        "n_bins": 4, "tokenizer": "tok", "read_hook": "hk", "bin_tokens": "bins", "seed": 7})
    assert seen["trainer"] == ("predictor", data, {"steps": 3, "anchor_weight": 0.0,
                                                   "seed": 7})
    assert settings["anchor_weight"] == 5.0  # the caller's settings are not changed
    assert seen["run"] == ({"model": "b", "role": "cross"}, True) and seen["split"] == "test"
    assert result.name == "cross_prediction/token"
    assert result.details == {"head": "token", "train_seconds": 2.5, "cached": True}
    assert torch.equal(result.prediction, data.flat_targets("test") + 1)
    assert result.scores["r2"] < 1 and result.scores["pearson_r"] == pytest.approx(1.0)
    cross_prediction_baseline(other, data, "token", {}, {})
    assert seen["for_dataset"][3] == {"n_bins": 10, "tokenizer": None, "read_hook": None,
                                      "bin_tokens": None, "seed": 0}
    assert seen["run"] == ({"role": "cross"}, False)
