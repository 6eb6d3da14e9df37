"""SymbioteNet metrics by hand: inhibition rates and accuracies on a stand-in classifier whose
answers are written out, changed units, class entropy, class sharing, Jaccard overlap and the
per-digit summary."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from mechinterp.data import DigitData
from mechinterp.errors import ConfigError
from mechinterp.symbiote.metrics import (
    changed_units,
    class_sharing,
    evaluate_inhibition,
    jaccard,
    summarise,
    unit_class_entropy,
)


class _Answers(torch.nn.Module):
    """A classifier that answers ``answers[i]`` for the image whose pixel (0, 0) is ``i``;
    its hooks map the logits of a batch."""

    def __init__(self, answers, n_classes=4):
        super().__init__()
        self.logits = torch.nn.functional.one_hot(torch.tensor(answers), n_classes).float()

    def forward(self, images):
        return self.logits[images[:, 0, 0, 0].long()]

    def run_with_hooks(self, images, fwd_hooks):
        out = self(images)
        for fn in fwd_hooks:
            out = fn(out)
        return out

    run_in_chunks = run_with_hooks


def _images(n, offset=0):
    images = torch.zeros(n, 1, 28, 28)
    images[:, 0, 0, 0] = torch.arange(offset, offset + n)
    return images


def _data(test_labels, train_labels=(0, 1)):
    return DigitData("stand-in", (0, 1, 2, 3), _images(len(train_labels), 100),
                     torch.tensor(train_labels), _images(len(test_labels)),
                     torch.tensor(test_labels))


def _to(digit_from, digit_to):
    """A hook that moves every answer ``digit_from`` to ``digit_to``."""
    def hook(logits):
        moved = logits.argmax(-1) == digit_from
        out = logits.clone()
        out[moved] = torch.nn.functional.one_hot(torch.tensor(digit_to), 4).float()
        return out
    return hook


def test_evaluate_inhibition_by_hand():
    # labels 2 2 2 0 1 3 1 0; the model answers 2 2 1 0 2 3 1 1
    labels = [2, 2, 2, 0, 1, 3, 1, 0]
    answers = [2, 2, 1, 0, 2, 3, 1, 1]
    model = _Answers(answers + [0] * 200)
    data = _data(labels)
    row = evaluate_inhibition(model, data, 2, [_to(2, 3)])
    # after: 3 3 1 0 3 3 1 1. other images (5): before right 0, 3, 1 -> 3/5; after 0, 3, 1 -> 3/5
    assert row == {
        "digit": 2,
        "target_output_rate": 0.0,
        "target_output_rate_before": pytest.approx(3 / 8),
        "nontarget_accuracy": pytest.approx(3 / 5),
        "baseline_nontarget_accuracy": pytest.approx(3 / 5),
        "nontarget_accuracy_drop": pytest.approx(0.0),
        "confusion": {1: pytest.approx(1 / 3), 3: pytest.approx(2 / 3)},
    }
    assert list(row["confusion"]) == [1, 3]  # sorted by class
    assert type(row["digit"]) is int
    # a hook that breaks other digits: 0 -> 1 costs one of the five other images
    row = evaluate_inhibition(model, data, 2, [_to(0, 1)])
    assert row["nontarget_accuracy"] == pytest.approx(2 / 5)
    assert row["nontarget_accuracy_drop"] == pytest.approx(1 / 5)
    assert row["target_output_rate"] == pytest.approx(3 / 8)
    assert row["confusion"] == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3)}


def test_evaluate_inhibition_uses_given_predictions_and_the_training_split():
    model = _Answers([0] * 100 + [1, 1, 3, 0])
    data = _data([0, 1], train_labels=(1, 1, 3, 2))
    before = torch.tensor([1, 1, 3, 2])  # claimed answers before: all right
    row = evaluate_inhibition(model, data, 2, [], split="train", before=before)
    # train images: the model now answers 1 1 3 0; the digit 2 image goes to 0
    assert row["baseline_nontarget_accuracy"] == 1.0
    assert row["nontarget_accuracy"] == 1.0
    assert row["target_output_rate_before"] == pytest.approx(1 / 4)
    assert row["target_output_rate"] == 0.0
    assert row["confusion"] == {0: 1.0}
    plain = evaluate_inhibition(model, data, 2, [], split="train")
    assert plain["baseline_nontarget_accuracy"] == 1.0 and plain["target_output_rate_before"] == 0
    model.train()
    evaluate_inhibition(model, data, 2, [])
    assert not model.training  # measured in eval mode
    with pytest.raises(ConfigError) as error:
        evaluate_inhibition(model, data, 2, [], split="validation")
    assert str(error.value) == "split must be 'train' or 'test', got 'validation'"


def test_changed_units_by_hand():
    gate = torch.tensor([[1.0, 0.5, 1.05, 1.2, 1.0]])
    shift = torch.tensor([[0.0, 0.0, 0.0, 0.0, -0.3]])
    seen = []

    def table(classes):
        seen.append(classes)
        return {"fc1.hook_post": (gate, shift), "conv.hook": (torch.ones(1, 2), torch.zeros(1, 2))}

    symbiote = SimpleNamespace(config=SimpleNamespace(change_threshold=0.1), table=table)
    out = changed_units(symbiote, 3)
    assert seen == [[3]]
    # deviation |g - 1| + |shift|: 0, 0.5, 0.05, 0.2, 0.3 -> units 1, 3, 4 pass 0.1
    assert out["fc1.hook_post"].tolist() == [1, 3, 4]
    assert out["fc1.hook_post"].dtype == torch.int64 and out["conv.hook"].numel() == 0
    assert changed_units(symbiote, 3, threshold=0.25)["fc1.hook_post"].tolist() == [1, 4]
    assert changed_units(symbiote, 3, threshold=0.3)["fc1.hook_post"].tolist() == [1]
    assert changed_units(symbiote, 3, threshold=0.0)["fc1.hook_post"].tolist() == [1, 2, 3, 4]


class _Units:
    """A model whose hidden activations are preset per training image."""

    def __init__(self, acts):
        self.acts = acts
        self.hidden_hooks = list(acts)

    def run_with_cache(self, images, names_filter):
        idx = images[:, 0, 0, 0].long() - 100
        return None, {k: v[idx] for k, v in self.acts.items() if names_filter(k)}


def test_unit_class_entropy_by_hand():
    # three classes, two images each; unit 0 answers one class, unit 1 all classes alike
    # but one, unit 2 is flat, unit 3 takes negative values, unit 4 is a conv channel map
    acts = torch.tensor([[4.0, 1.0, 2.0, -1.0], [2.0, 1.0, 2.0, -3.0],
                         [0.0, 1.0, 2.0, -2.0], [0.0, 3.0, 2.0, -2.0],
                         [0.0, 0.0, 2.0, -4.0], [0.0, 0.0, 2.0, -4.0]])
    conv = torch.zeros(6, 1, 2, 2)
    conv[:2] = 1.0  # class 0: mean 1; others 0 -> answers one class
    conv[0, 0, 0, 0] = 3.0  # spatial mean of image 0: 1.5
    model = _Units({"fc.hook": acts, "conv.hook": conv})
    data = DigitData("stand-in", (0, 1, 2), _images(6, 100), torch.tensor([0, 0, 1, 1, 2, 2]),
                     _images(1), torch.tensor([0]))
    out = unit_class_entropy(model, data)
    means = {"u1": [1.0, 2.0, 0.0], "u3": [-2.0, -2.0, -4.0]}
    # unit 1: above min (1, 2, 0) -> p (1/3, 2/3, 0); unit 3: (2, 2, 0) -> (1/2, 1/2, 0)
    h1 = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3)) / math.log(3)
    h3 = math.log(2) / math.log(3)
    fc = out["fc.hook"]
    assert fc[0].item() == pytest.approx(0.0, abs=1e-6)
    assert fc[1].item() == pytest.approx(h1, rel=1e-5) and fc[3].item() == pytest.approx(h3)
    assert math.isnan(fc[2].item())  # the same mean on every class
    assert means  # (written out above for the reader)
    assert out["conv.hook"].tolist() == pytest.approx([0.0], abs=1e-6)
    # a spread of exactly 1e-9 (in float32) still counts as flat
    edge = acts.clone()
    edge[:, 2] = torch.tensor([0.0, 0.0, 0.0, 0.0, 1e-9, 1e-9])
    assert math.isnan(unit_class_entropy(_Units({"fc.hook": edge}), data)["fc.hook"][2].item())
    # a unit whose spread is below 1e-9 counts as flat; a larger one does not
    tiny = acts.clone()
    tiny[:, 2] = torch.tensor([2.0, 2.0, 2.0, 2.0, 2.0, 2.0 + 1e-4])
    out = unit_class_entropy(_Units({"fc.hook": tiny}), data)
    assert out["fc.hook"][2].item() == pytest.approx(0.0, abs=1e-4)
    # the entropy of a uniform spread over all but the lowest class of four is log3/log4
    four = torch.tensor([[0.0], [1.0], [1.0], [1.0]])
    data4 = DigitData("stand-in", (0, 1, 2, 3), _images(4, 100), torch.tensor([0, 1, 2, 3]),
                      _images(1), torch.tensor([0]))
    assert unit_class_entropy(_Units({"h": four}), data4)["h"].item() == pytest.approx(
        math.log(3) / math.log(4), rel=1e-5)


def test_class_sharing_by_hand():
    # class means per unit (rows: classes 0, 1, 2):
    #   (3, 0, 0), (0, 3, 0), (0, 0, -1): class 2 owns no unit (its best unit is negative)
    means = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, -1.0]])
    acts = means.repeat_interleave(2, 0)
    data = DigitData("stand-in", (0, 1, 2), _images(6, 100), torch.tensor([0, 0, 1, 1, 2, 2]),
                     _images(1), torch.tensor([0]))
    out = class_sharing(_Units({"h": acts}), data)
    centred = means - means.mean(0)
    centred = centred / centred.norm(dim=1, keepdim=True)
    cosine = centred @ centred.T
    expected = max(cosine[i, j].item() for i in range(3) for j in range(3) if i != j)
    assert out == {"h": {"classes_without_own_unit": 1.0,
                         "max_class_cosine": pytest.approx(expected, rel=1e-5)}}
    # by hand: centred rows (2, -1, 1/3), (-1, 2, 1/3), (-1, -1, -2/3); rows 0 and 1 meet at
    # (-2 - 2 + 1/9) / (5 + 1/9) = -35/46, rows 0 and 2 at (-2 + 1 - 2/9) / sqrt(46/9 * 22/9)
    assert expected == pytest.approx((-1 - 2 / 9) / math.sqrt(46 / 9 * 22 / 9), rel=1e-5)
    # two classes with the same pattern: cosine 1; every class owns a unit
    same = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0],
                         [1.0, 0.0]])
    out = class_sharing(_Units({"h": same}), data)
    assert out["h"]["max_class_cosine"] == pytest.approx(1.0)
    assert out["h"]["classes_without_own_unit"] == 1.0  # unit ties go to the first class
    # a class whose strongest unit answers exactly 0 does not own it
    zero = torch.tensor([[0.0], [0.0], [-1.0], [-1.0], [-2.0], [-2.0]])
    assert class_sharing(_Units({"h": zero}), data)["h"]["classes_without_own_unit"] == 3.0
    # a class whose mean equals the mean over classes has no direction: cosine 0 with all
    flat = torch.tensor([[1.0], [1.0], [1.0], [1.0], [1.0], [1.0]])
    assert class_sharing(_Units({"h": flat}), data)["h"]["max_class_cosine"] == 0.0


def test_jaccard_and_summarise_by_hand():
    a = {"x": torch.tensor([1, 2]), "y": torch.tensor([0])}
    b = {"x": torch.tensor([2, 3]), "y": torch.tensor([0]), "z": torch.tensor([], dtype=torch.long)}
    # pairs: a {x1, x2, y0}, b {x2, x3, y0}: 2 shared of 4
    assert jaccard(a, b) == pytest.approx(2 / 4)
    assert jaccard(a, a) == 1.0
    assert jaccard({}, {}) == 1.0 and jaccard({"x": torch.tensor([], dtype=torch.long)}, {}) == 1.0
    assert jaccard(a, {}) == 0.0
    # the same unit index in two layers is two different units
    assert jaccard({"x": torch.tensor([0])}, {"y": torch.tensor([0])}) == 0.0
    rows = [{"digit": 1, "rate": 0.5, "n": 2, "name": "a", "confusion": {1: 0.3}},
            {"digit": 3, "rate": 0.25, "n": 4, "name": "b", "confusion": {}}]
    assert summarise(rows) == {"rate": 0.375, "n": 3.0}
    assert summarise(rows[:1]) == {"rate": 0.5, "n": 2.0}


def test_unit_class_count_by_hand():
    from mechinterp.symbiote.metrics import unit_class_count as count

    # class means per unit (classes 0, 1, 2):
    #   (4, 0, 0) -> 1; (1, 2, 0) -> 2 (exactly half way counts); (2, 2, 2) -> nan;
    #   (-2, -2, -4) -> 2 (read against the weakest class); (0, 1, 0.4) -> 1;
    #   (0, 0, 1e-9) -> nan (a spread of 1e-9 is no spread)
    means = torch.tensor([[4.0, 1.0, 2.0, -2.0, 0.0, 0.0], [0.0, 2.0, 2.0, -2.0, 1.0, 0.0],
                          [0.0, 0.0, 2.0, -4.0, 0.4, 1e-9]])
    data = DigitData("stand-in", (0, 1, 2), _images(6, 100), torch.tensor([0, 0, 1, 1, 2, 2]),
                     _images(1), torch.tensor([0]))
    conv = torch.zeros(6, 1, 2, 2)
    conv[2:4, 0, 0, 0] = 4.0  # class 1 answers 1.0 on average over the map, the others 0
    out = count(_Units({"fc.hook": means.repeat_interleave(2, 0), "conv.hook": conv}), data)
    got = out["fc.hook"].tolist()
    assert got[:2] == [1.0, 2.0] and got[3:5] == [2.0, 1.0]
    assert math.isnan(got[2]) and math.isnan(got[5])
    assert out["fc.hook"].dtype == torch.float32 and out["conv.hook"].tolist() == [1.0]
