"""The transfer protocol and its shared building blocks by hand: validation, the carves, the
four metrics on a stand-in recipient whose answers are written out, alignment maps, probes,
calibration, the concept override and the open-set gate."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from mechinterp.data import DigitData
from mechinterp.errors import ConfigError, ShapeError
from mechinterp.transfer import common
from mechinterp.transfer.common import (
    Affine,
    ConceptLogit,
    OpenSetGate,
    calibrate_threshold,
    concept_override,
    copy_units,
    features,
    fit_regressor,
    gated,
    importance_by_layer,
    logistic_probe,
    orthogonal_procrustes,
    override_concept,
    penultimate_hook,
    ridge_map,
    set_concept_row,
)
from mechinterp.transfer.protocol import (
    CALIBRATION_SHARE,
    FALSE_POSITIVE_CAP,
    GATES,
    VALIDATION_SHARE,
    TransferProtocol,
    calibration_indices,
    fit_split,
    transfer_metrics,
    validation_indices,
)

# ---------------------------------------------------------------- protocol


def test_protocol_constants():
    assert GATES == ("closed-set", "open-set")
    assert FALSE_POSITIVE_CAP == 0.005 and VALIDATION_SHARE == 0.1 and CALIBRATION_SHARE == 0.2
    default = TransferProtocol()
    assert default.as_dict() == {"concept": 4, "recipient_digits": (0, 1, 2, 3),
                                 "donor_digits": (2, 3, 4, 5), "specificity_digit": 5,
                                 "gate": "open-set"}
    assert default.shared_digits == (2, 3)


def test_protocol_validation_messages():
    cases = [
        ({"gate": "ajar"}, "gate must be one of ['closed-set', 'open-set'], got 'ajar'"),
        ({"concept": 3}, "the concept digit 3 must be new to the recipient, but the recipient "
                         "digits [0, 1, 2, 3] include it"),
        ({"concept": 7}, "the donor must know the concept digit 7; donor digits are "
                         "[2, 3, 4, 5]"),
        ({"specificity_digit": 4}, "the specificity digit 4 must differ from the concept and "
                                   "be unknown to the recipient (recipient digits [0, 1, 2, 3])"),
        ({"specificity_digit": 1}, "the specificity digit 1 must differ from the concept and "
                                   "be unknown to the recipient (recipient digits [0, 1, 2, 3])"),
        ({"recipient_digits": (0, 1), "donor_digits": (4, 5)},
         "recipient and donor share no digit, so their representations cannot be aligned: "
         "recipient [0, 1], donor [4, 5]"),
    ]
    for fields, message in cases:
        with pytest.raises(ConfigError) as error:
            TransferProtocol(**fields)
        assert str(error.value) == message
    # digit sets given as text are parsed and sorted
    p = TransferProtocol(concept=9, recipient_digits="3,1,0", donor_digits=[9, 1, 0],
                         specificity_digit=8, gate="closed-set")
    assert p.recipient_digits == (0, 1, 3) and p.donor_digits == (0, 1, 9)
    assert p.shared_digits == (0, 1)
    # one shared digit is enough
    assert TransferProtocol(recipient_digits=(0, 2), donor_digits=(2, 4)).shared_digits == (2,)


def _digits(train_labels, test_labels=(0,), source="stand-in", classes=tuple(range(10))):
    n, m = len(train_labels), len(test_labels)
    train = torch.zeros(n, 1, 28, 28)
    train[:, 0, 0, 0] = torch.arange(n) + 1000
    test = torch.zeros(m, 1, 28, 28)
    test[:, 0, 0, 0] = torch.arange(m)
    return DigitData(source, classes, train, torch.tensor(train_labels), test,
                     torch.tensor(test_labels))


def test_check_data_names_the_missing_digits():
    p = TransferProtocol()
    p.check_data(_digits([0], classes=(0, 1, 2, 3, 4, 5)))
    with pytest.raises(ConfigError) as error:
        p.check_data(_digits([0], classes=(0, 1, 2, 3, 4)))
    assert str(error.value) == ("the protocol needs digits [0, 1, 2, 3, 4, 5] but data source "
                                "'stand-in' lacks [5]")
    with pytest.raises(ConfigError, match=r"lacks \[0, 2\]"):
        p.check_data(_digits([0], classes=(1, 3, 4, 5)))


def test_the_carves_are_fixed_consecutive_slices_of_one_permutation():
    data = _digits(list(range(10)) * 5)
    order = torch.randperm(50, generator=torch.Generator().manual_seed(2024))
    assert validation_indices(data).tolist() == order[:5].tolist()
    assert calibration_indices(data).tolist() == order[5:15].tolist()
    fit = fit_split(data)
    kept = sorted(set(range(50)) - set(order[:15].tolist()))
    assert fit.source == "stand-in|transfer-fit" and fit.classes == data.classes
    assert torch.equal(fit.train_images, data.train_images[kept])
    assert torch.equal(fit.train_labels, data.train_labels[kept])
    assert fit.test_images is data.test_images and fit.test_labels is data.test_labels
    # 0.1 and 0.2 of 33 round to 3 and 7
    small = _digits([0] * 33)
    assert len(validation_indices(small)) == 3 and len(calibration_indices(small)) == 7
    assert fit_split(small).n_train == 23


class _Answers(nn.Module):
    """Answers ``answers[i]`` for the image whose pixel (0, 0) is ``i``."""

    def __init__(self, answers):
        super().__init__()
        self.answers = dict(answers)

    def forward(self, x):
        keys = x[:, 0, 0, 0].long().tolist()
        return nn.functional.one_hot(torch.tensor([self.answers[k] for k in keys]), 10).float()


def test_transfer_metrics_by_hand():
    # test labels:  4 4 4 4 0 1 2 3 5 5 7
    # answers:      4 4 1 4 0 4 2 1 4 5 4
    labels = [4, 4, 4, 4, 0, 1, 2, 3, 5, 5, 7]
    answers = [4, 4, 1, 4, 0, 4, 2, 1, 4, 5, 4]
    data = _digits([0] * 20, labels)
    model = _Answers(enumerate(answers))
    model.train()
    m = transfer_metrics(model, data, TransferProtocol())
    assert not model.training
    assert m == {
        "transfer": pytest.approx(3 / 4),
        "preservation": pytest.approx(2 / 4),      # 0 and 2 right, 1 and 3 wrong
        "specificity": pytest.approx(1 / 2),       # one of the two 5s called 4
        "false_positive_rate": pytest.approx(3 / 7),  # the 1, one 5 and the 7
    }
    assert list(m) == ["transfer", "preservation", "specificity", "false_positive_rate"]
    # another protocol reads its own digits
    p = TransferProtocol(concept=5, specificity_digit=4)
    m = transfer_metrics(model, data, p)
    assert m["transfer"] == pytest.approx(1 / 2)
    assert m["specificity"] == 0.0  # no 4 is called 5
    assert m["false_positive_rate"] == pytest.approx(0.0)


def test_transfer_metrics_on_the_validation_carve():
    train_labels = [4, 0, 1, 2, 3, 5, 4, 0, 1, 2] * 3
    data = _digits(train_labels, [0])
    idx = validation_indices(data).tolist()
    # the model is right on every validation image but calls the first one 4
    answers = {1000 + i: train_labels[i] for i in range(30)}
    answers[1000 + idx[0]] = 4
    answers[0] = 9
    m = transfer_metrics(_Answers(answers), data, TransferProtocol(), split="validation")
    labels = [train_labels[i] for i in idx]
    own = [lab for lab in labels if lab in (0, 1, 2, 3)]
    first = labels[0]
    assert m["transfer"] == 1.0
    assert m["preservation"] == pytest.approx(
        (len(own) - (first in (0, 1, 2, 3))) / len(own))
    with pytest.raises(ConfigError) as error:
        transfer_metrics(_Answers(answers), data, TransferProtocol(), split="calibration")
    assert str(error.value) == "split must be 'test' or 'validation', got 'calibration'"


# ---------------------------------------------------------------- features and maps


class _Cached(nn.Module):
    """A stand-in classifier whose activation at every hook is ``images * scale``."""

    def __init__(self):
        super().__init__()
        self.hidden_hooks = ["conv1.hook_post", "fc1.hook_post", "fc2.hook_post"]
        self.batches = []

    def run_with_cache(self, images, names_filter):
        self.batches.append((len(images), names_filter))
        return None, {names_filter: images * 2}


def test_penultimate_hook_and_features_in_batches():
    model = _Cached()
    assert penultimate_hook(model) == "fc2.hook_post"
    images = torch.arange(5 * 4.0).view(5, 1, 2, 2)
    model.train()
    out = features(model, images, "fc1.hook_post", batch_size=2)
    assert not model.training
    assert torch.equal(out, images.flatten(1) * 2)
    assert model.batches == [(2, "fc1.hook_post"), (2, "fc1.hook_post"), (1, "fc1.hook_post")]
    model.batches.clear()
    features(model, torch.zeros(3000, 1, 1, 1), "fc1.hook_post")
    assert [n for n, _ in model.batches] == [2048, 952]


def test_affine_is_fixed():
    a = Affine(torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64), torch.tensor([1, -1]))
    assert a.weight.dtype == torch.float32 and a.bias.dtype == torch.float32
    assert a(torch.tensor([[1.0, 1.0]])).tolist() == [[2.0, 2.0]]
    assert [n for n, _ in a.named_buffers()] == ["weight", "bias"]
    assert list(a.parameters()) == []


def test_ridge_map_by_hand_and_its_penalty():
    x = torch.tensor([[0.0], [1.0], [2.0]])
    y = torch.tensor([[1.0, 0.0], [3.0, 1.0], [5.0, 5.0]])
    # centred x (-1, 0, 1): gram 2, penalty ridge * mean(xc²) * n = ridge * 2
    w, b = ridge_map(x, y, ridge=0.5)
    assert w.dtype == torch.float32 and w.shape == (1, 2) and b.shape == (2,)
    # slope = (xc . yc) / (2 + 1): column 0 xc.yc = 4 -> 4/3; column 1: 5 -> 5/3
    assert w.tolist()[0] == pytest.approx([4 / 3, 5 / 3])
    assert b.tolist() == pytest.approx([3 - 4 / 3, 2 - 5 / 3])
    w, b = ridge_map(x, y)  # default penalty 1e-2: 2 * 0.01 = 0.02
    assert w.tolist()[0] == pytest.approx([4 / 2.02, 5 / 2.02])
    with pytest.raises(ShapeError) as error:
        ridge_map(x, y[:1])
    assert str(error.value) == "ridge_map needs paired rows, got 3 and 1"


def test_ridge_map_and_procrustes_recover_planted_maps():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 4, generator=g)
    w_true = torch.randn(4, 3, generator=g)
    w, b = ridge_map(x, x @ w_true + 2.0, ridge=1e-9)
    assert torch.allclose(w, w_true, atol=1e-4) and torch.allclose(b, torch.full((3,), 2.0),
                                                                   atol=1e-4)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g))
    r = orthogonal_procrustes(x, x @ q)
    assert r.dtype == torch.float32 and torch.allclose(r, q, atol=1e-5)
    # with noise the answer is still a rotation, and the best one
    noisy = x @ q + 0.3 * torch.randn(200, 4, generator=g)
    r = orthogonal_procrustes(x, noisy)
    assert torch.allclose(r @ r.T, torch.eye(4), atol=1e-5)
    assert (x @ r - noisy).norm() <= (x @ q - noisy).norm() + 1e-4
    with pytest.raises(ShapeError) as error:
        orthogonal_procrustes(x, x[:, :3])
    assert str(error.value) == "Procrustes needs equal shapes, got (200, 4) and (200, 3)"


def test_fit_regressor_takes_seeded_adam_steps_on_random_batches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 1.0

    def run(fit, **kwargs):
        torch.manual_seed(0)
        module = nn.Linear(3, 1)
        return fit(module, x, y, torch.Generator().manual_seed(5), **kwargs)

    def reference(module, x, y, generator, *, steps, lr=1e-3, weight_decay=0.0,
                  batch_size=256):
        opt = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(steps):
            idx = torch.randint(0, len(x), (batch_size,), generator=generator)
            loss = ((module(x[idx]) - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return module.eval()

    for kwargs in ({"steps": 5}, {"steps": 3, "lr": 0.1, "weight_decay": 0.5, "batch_size": 7}):
        got, want = run(fit_regressor, **kwargs), run(reference, **kwargs)
        assert not got.training
        assert torch.equal(got.weight, want.weight) and torch.equal(got.bias, want.bias)
    with torch.no_grad():
        fitted = fit_regressor(nn.Linear(3, 1), x, y, torch.Generator().manual_seed(1),
                               steps=300, lr=0.05)
    assert ((fitted(x) - y) ** 2).mean() < 1e-3  # it fits even when called under no_grad


def _probe_reference(x, positive, steps=300, weight_decay=1e-3):
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    target = positive.float()
    pos_weight = (1 - target).sum() / target.sum()
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(z @ w + b, target,
                                                              pos_weight=pos_weight)
        loss = loss + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w_raw = (w / std).detach()
    return w_raw, (b - (mean * w_raw).sum()).detach().squeeze()


def test_logistic_probe_against_its_definition():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(80, 3, generator=g) * torch.tensor([1.0, 10.0, 0.1]) + 4.0
    positive = (x[:, 0] - 4 + 0.05 * (x[:, 1] - 4) + torch.randn(80, generator=g) * 0.5) > 0.8
    for kwargs in ({}, {"steps": 4, "weight_decay": 0.1}):
        w, b = logistic_probe(x, positive, **kwargs)
        w_ref, b_ref = _probe_reference(x, positive, **kwargs)
        assert torch.allclose(w, w_ref, atol=1e-5) and torch.allclose(b, b_ref, atol=1e-5)
        assert b.shape == () and not w.requires_grad
    # the probe separates what it was fit on, in the coordinates of x
    w, b = logistic_probe(x, positive)
    assert ((x @ w + b > 0) == positive).float().mean() > 0.85
    constant = torch.cat([x[:, :2], torch.ones(80, 1)], 1)  # a constant column is harmless
    w, _ = logistic_probe(constant, positive)
    assert torch.isfinite(w).all()
    for labels in (torch.zeros(80, dtype=torch.bool), torch.ones(80, dtype=torch.bool)):
        with pytest.raises(ShapeError) as error:
            logistic_probe(x, labels)
        assert str(error.value) == "a probe needs both positive and negative examples"


# ---------------------------------------------------------------- calibration and override


def test_calibrate_threshold_is_the_quantile_of_the_negatives():
    negatives = torch.arange(201.0)  # 0..200
    assert calibrate_threshold(negatives) == pytest.approx(199.0)  # 0.995 * 200
    assert calibrate_threshold(negatives, 0.1) == pytest.approx(180.0)
    assert calibrate_threshold(torch.tensor([1, 3]), 0.5) == pytest.approx(2.0)
    assert type(calibrate_threshold(negatives)) is float
    grad = torch.arange(5.0, requires_grad=True)
    assert calibrate_threshold(grad, 0.0) == 4.0


class _Fixed(nn.Module):
    def __init__(self, values):
        super().__init__()
        self.values = torch.as_tensor(values, dtype=torch.float32)

    def forward(self, x):
        return self.values[: len(x)].clone()


def test_concept_logit_by_hand():
    logits = torch.tensor([[1.0, 3.0, 0.0, 9.0], [2.0, 0.0, 5.0, 0.0]])
    scores = torch.tensor([2.0, 0.5])
    edited = ConceptLogit(_Fixed(logits), 3, _Fixed(scores), threshold=1.0)
    out = edited(torch.zeros(2))
    # concept logit = max of the others + 10 * (score - 1): 3 + 10 = 13; 5 - 5 = 0
    assert out.tolist() == [[1.0, 3.0, 0.0, 13.0], [2.0, 0.0, 5.0, 0.0]]
    assert logits[0, 3] == 9.0  # the recipient's output is not written in place
    soft = ConceptLogit(_Fixed(logits), 3, _Fixed(scores), threshold=1.0, sharpness=2.0)
    assert soft(torch.zeros(2))[:, 3].tolist() == [5.0, 4.0]
    assert edited.concept == 3 and edited.threshold == 1.0 and edited.sharpness == 10.0
    # the concept wins exactly when the score passes the threshold
    at = ConceptLogit(_Fixed(logits), 0, _Fixed(torch.tensor([1.0, 1.0])), threshold=1.0)
    assert at(torch.zeros(2))[:, 0].tolist() == [9.0, 5.0]


def test_concept_override_calibrates_on_the_negatives():
    negatives = torch.arange(201.0)
    recipient = _Fixed(torch.zeros(201, 5))
    scorer = _Fixed(torch.arange(201.0))
    edited = concept_override(recipient, 2, scorer, negatives)
    assert isinstance(edited, ConceptLogit) and not edited.training
    assert edited.threshold == pytest.approx(199.0)
    assert edited.recipient is recipient and edited.scorer is scorer and edited.concept == 2
    assert concept_override(recipient, 2, scorer, negatives, 0.5).threshold == pytest.approx(100)
    fired = (edited(negatives).argmax(1) == 2).float().mean().item()
    assert fired == pytest.approx(1 / 201)  # only the score 200 passes 199


def test_open_set_gate_by_hand():
    scores = _Fixed([3.0, 3.0, -1.0])
    logits = torch.full((3, 10), -5.0)
    logits[0, 1] = 2.5   # A is sure of its own digit 1: the score loses 2.5
    logits[0, 3] = 1.0   # (the best own digit counts, not the first)
    logits[1, 2] = -0.5  # no positive evidence for an own digit: the score stays
    logits[2, 7] = 9.0   # evidence for a digit A does not know is ignored
    gate = OpenSetGate(scores, _Fixed(logits), own_digits=(0, 1, 2, 3))
    assert gate.own_digits == [0, 1, 2, 3]
    assert gate(torch.zeros(3)).tolist() == [0.5, 3.0, -1.0]


def _ctx(gate, calls):
    def negatives(digits):
        calls.append(digits)
        return torch.arange(201.0)

    protocol = TransferProtocol(gate=gate)
    recipient = _Fixed(torch.zeros(201, 10))
    return SimpleNamespace(protocol=protocol, recipient=recipient,
                           calibration_negatives=negatives)


def test_gated_and_override_concept_follow_the_protocol():
    calls = []
    open_ctx = _ctx("open-set", calls)
    scorer = _Fixed(torch.arange(201.0))
    g = gated(open_ctx, scorer)
    assert isinstance(g, OpenSetGate) and g.scorer is scorer
    assert g.recipient is open_ctx.recipient and g.own_digits == [0, 1, 2, 3]
    closed = _ctx("closed-set", calls)
    assert gated(closed, scorer) is scorer
    edited = override_concept(closed, scorer)
    assert calls == [(4,)] and edited.concept == 4 and edited.recipient is closed.recipient
    assert edited.scorer is scorer and edited.threshold == pytest.approx(199.0)
    other = _Fixed(torch.zeros(201, 10))
    edited = override_concept(open_ctx, scorer, concept=5, recipient=other,
                              negatives=torch.zeros(101))
    assert calls == [(4,)]  # given negatives: none fetched
    assert edited.concept == 5 and edited.recipient is other
    assert isinstance(edited.scorer, OpenSetGate)
    assert edited.threshold == pytest.approx(99.5)  # scores 0..100 of the 101 negatives
    override_concept(open_ctx, scorer, concept=5)
    assert calls == [(4,), (5,)]


# ---------------------------------------------------------------- weight surgery


class _Net(nn.Module):
    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(1, 2, 3)
        self.fc1 = nn.Linear(4, 3)
        self.fc2 = nn.Linear(3, 2)
        self.out = nn.Linear(2, 5)
        self.hidden_hooks = ["conv1.hook_post", "fc1.hook_post", "fc2.hook_post"]

    @property
    def output_layer(self):
        return self.out


def test_set_concept_row_and_copy_units():
    net = _Net(0)
    before = net.out.weight.detach().clone()
    set_concept_row(net, 3, torch.tensor([7.0, -7.0]), 0.5)
    assert net.out.weight[3].tolist() == [7.0, -7.0] and net.out.bias[3].item() == 0.5
    assert torch.equal(net.out.weight[[0, 1, 2, 4]], before[[0, 1, 2, 4]])
    set_concept_row(net, 1, torch.tensor([1.0, 2.0]), torch.tensor(-1.0))
    assert net.out.bias[1].item() == -1.0
    with pytest.raises(ShapeError) as error:
        set_concept_row(net, 1, torch.zeros(3), 0.0)
    assert str(error.value) == "concept row must have shape (2,), got (3,)"
    target, source = _Net(1), _Net(2)
    keep = target.fc1.weight.detach().clone()
    copy_units(target, source, "fc1", torch.tensor([0, 2]))
    assert torch.equal(target.fc1.weight[[0, 2]], source.fc1.weight[[0, 2]])
    assert torch.equal(target.fc1.bias[[0, 2]], source.fc1.bias[[0, 2]])
    assert torch.equal(target.fc1.weight[1], keep[1])
    assert target.fc1.bias[1] != source.fc1.bias[1]


def test_importance_by_layer_pushes_the_concept_row_back_through_abs_weights():
    net = _Net(0)
    with torch.no_grad():
        net.out.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, -2.0], [0.0, 0.0], [0.0, 0.0],
                                           [0.0, 0.0]]))
        net.fc2.weight.copy_(torch.tensor([[1.0, -1.0, 0.0], [0.5, 0.0, -3.0]]))
    scores = importance_by_layer(net, 1)
    assert list(scores) == ["fc2", "fc1"]  # convolutions are not scored
    assert scores["fc2"].tolist() == [1.0, 2.0]
    # fc1: |W_fc2|^T (1, 2) = (1 + 1, 1 + 0, 0 + 6)
    assert scores["fc1"].tolist() == [2.0, 1.0, 6.0]
    scores["fc2"][0] = 99.0  # a copy, not the weights
    assert net.out.weight[1, 0].item() == 1.0
    assert common.importance_by_layer is importance_by_layer
