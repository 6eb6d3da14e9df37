"""The polysemantic condition: the selectivity index, the classes-per-unit measure, the
penalised primary, and refreshing a stored study's primary measures."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from mechinterp.data import DigitData, load_digits
from mechinterp.errors import ConfigError, StaleStudyError
from mechinterp.models import HookedMLP
from mechinterp.symbiote import experiment, seeds
from mechinterp.symbiote.experiment import SELECTIVITY_PENALTY, polysemanticity, primary_for
from mechinterp.symbiote.metrics import class_means, unit_class_count, unit_class_entropy
from mechinterp.train import TrainConfig, _penalised, fit, selectivity_index


def test_selectivity_index_by_hand():
    # unit 0: class means 1 and 1 -> 0; unit 1: means 3 and 1 -> (3 - 1) / (3 + 1) = 0.5
    acts = torch.tensor([[2.0, 4.0], [0.0, 2.0], [1.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert selectivity_index(acts, labels).tolist() == pytest.approx([0.0, 0.5], abs=1e-5)
    # three classes: means (6, 2, 0) -> top 6, rest mean 1 -> 5 / 7
    acts = torch.tensor([[6.0], [2.0], [0.0]])
    assert selectivity_index(acts, torch.tensor([4, 7, 9])).item() == pytest.approx(5 / 7)
    # conv maps are averaged over space first
    maps = torch.tensor([[[[2.0, 0.0]]], [[[0.0, 0.0]]]])
    assert selectivity_index(maps, torch.tensor([0, 1])).item() == pytest.approx(1.0, abs=1e-5)


def test_selectivity_index_refuses_what_it_cannot_measure():
    with pytest.raises(ConfigError, match="two classes"):
        selectivity_index(torch.ones(3, 2), torch.tensor([1, 1, 1]))
    with pytest.raises(ConfigError, match="3 activations but 2 labels"):
        selectivity_index(torch.ones(3, 2), torch.tensor([0, 1]))


def _one_pixel_data() -> DigitData:
    """Class c images are one bright pixel at index c, so a linear unit's class mean is its
    weight on that pixel (plus bias)."""
    images = torch.zeros(6, 1, 28, 28)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    for i, c in enumerate(labels.tolist()):
        images[i, 0, 0, c] = 1.0
    return DigitData("hand", (0, 1, 2), images, labels, images, labels)


def test_unit_class_count_by_hand():
    model = HookedMLP((5,), 3)
    with torch.no_grad():
        model.fc1.weight.zero_()
        model.fc1.bias.zero_()
        model.fc1.weight[0, :3] = torch.tensor([1.0, 0.0, 0.0])  # one class
        model.fc1.weight[1, :3] = torch.tensor([1.0, 0.6, 0.0])  # 0.6 >= half of 1: two
        model.fc1.weight[2, :3] = torch.tensor([1.0, 0.6, 0.5])  # from the weakest (0.5): one
        model.fc1.bias[3] = 1.0  # the same on every class: no answer to count
        model.fc1.weight[4, :3] = torch.tensor([1.0, 0.5, 0.0])  # exactly half way counts
    counts = unit_class_count(model, _one_pixel_data())["fc1.hook_post"]
    assert counts[[0, 1, 2, 4]].tolist() == [1.0, 2.0, 1.0, 2.0]
    assert math.isnan(counts[3])
    # class means computed once can be shared, and the shared ones are what is read
    means = class_means(model, _one_pixel_data())
    assert torch.equal(unit_class_count(model, _one_pixel_data(), means=means)["fc1.hook_post"]
                       .nan_to_num(-1), counts.nan_to_num(-1))
    flat = {name: torch.ones_like(m) for name, m in means.items()}
    assert unit_class_count(model, _one_pixel_data(), means=flat)["fc1.hook_post"].isnan().all()


def test_penalty_zero_is_plain_cross_entropy_and_positive_lowers_selectivity():
    data = load_digits("mnist-5k", device="cpu").subset("0-3")
    pick = torch.randperm(data.n_train, generator=torch.Generator().manual_seed(0))[:256]
    images, labels = data.train_images[pick], data.train_labels[pick]  # the split is sorted
    model = HookedMLP((16,), 10)
    logits, loss = _penalised(model, 0.0)(images, labels)
    assert torch.equal(loss, F.cross_entropy(model(images), labels))
    _, penalised = _penalised(model, 2.0)(images, labels)
    assert penalised > loss  # the penalty is added, not subtracted

    def mean_selectivity(penalty: float) -> float:
        torch.manual_seed(0)
        net = HookedMLP((16,), 10)
        fit(net, images, labels, TrainConfig(epochs=6, batch_size=32, lr=3e-3,
                                             selectivity_penalty=penalty),
            torch.Generator().manual_seed(0))
        _, cache = net.run_with_cache(images, names_filter="fc1.hook_post")
        return selectivity_index(cache["fc1.hook_post"], labels).mean().item()

    assert mean_selectivity(3.0) < mean_selectivity(0.0) - 0.05
    with pytest.raises(ConfigError, match="selectivity_penalty"):
        TrainConfig(epochs=1, batch_size=8, lr=1e-3, selectivity_penalty=-0.1)


def test_polysemantic_primary_is_the_penalised_cnn(idx_folder):
    data = load_digits(str(idx_folder), device="cpu")
    poly = primary_for("polysemantic", data)
    normal = primary_for("normal", data)
    assert poly.arch == "cnn+unselective" and normal.arch == "cnn"
    assert poly.meta["train"]["selectivity_penalty"] == SELECTIVITY_PENALTY > 0
    assert normal.meta["train"]["selectivity_penalty"] == 0
    assert sum(p.numel() for p in poly.model.parameters()) == \
        sum(p.numel() for p in normal.model.parameters())
    assert primary_for("narrow", data).arch == "cnn-poly"
    measures = polysemanticity(poly.model, data)
    assert set(measures) == {"polysemanticity", "class_entropy"}
    counts = torch.cat(list(unit_class_count(poly.model, data).values()))
    assert measures["polysemanticity"] == pytest.approx(float(counts.nanmean()))
    assert measures["class_entropy"] == pytest.approx(float(torch.cat(list(
        unit_class_entropy(poly.model, data).values())).nanmean()))


def test_refresh_primary_adds_measures_only_when_the_primary_reproduces(idx_folder, tmp_path,
                                                                        monkeypatch):
    data = load_digits(str(idx_folder), device="cpu")
    path = tmp_path / "normal.json"
    monkeypatch.setattr(seeds, "stored_study_path",
                        lambda condition, source: tmp_path / f"{condition}.json")
    accuracy = seeds.rounded_floats(seeds._accuracy(primary_for("normal", data).model, data))
    study = {"condition": "normal", "seeds": {"0": {"primary_test_accuracy": accuracy,
                                                    "rows": {"symbiote": []}}}}
    path.write_text(json.dumps(study))
    seeds.refresh_primary("normal", str(idx_folder))
    row = json.loads(path.read_text())["seeds"]["0"]
    expected = polysemanticity(primary_for("normal", data).model, data)
    assert row["polysemanticity"] == pytest.approx(expected["polysemanticity"], abs=1e-6)
    assert row["rows"] == {"symbiote": []}  # nothing about B is touched
    study["seeds"]["0"]["primary_test_accuracy"] = accuracy - 0.01
    path.write_text(json.dumps(study))
    with pytest.raises(StaleStudyError, match="rerun"):
        seeds.refresh_primary("normal", str(idx_folder))
    with pytest.raises(ConfigError, match="no stored study"):
        seeds.refresh_primary("mixed", str(idx_folder))


def test_every_condition_has_a_primary():
    assert set(experiment.CONDITIONS) == {"normal", "polysemantic", "mixed", "narrow"}
    with pytest.raises(ConfigError, match="unknown condition"):
        primary_for("wide", _one_pixel_data())


def test_cli_runs_every_condition_on_an_idx_folder(idx_folder, capsys):
    from mechinterp.cli import main

    for condition in ("polysemantic", "narrow"):
        assert main(["symbiote", "--digit", "1", "--condition", condition, "--source",
                     str(idx_folder), "--steps", "100", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["condition"] == condition
        assert out["primary_arch"] == experiment.CONDITIONS[condition]
        data = load_digits(str(idx_folder), device="cpu")
        assert out["polysemanticity"] == pytest.approx(  # the primary the run used, measured
            polysemanticity(primary_for(condition, data).model, data)["polysemanticity"])
        assert {"target_output_rate", "units_touched", "baselines"} <= out.keys()
    with pytest.raises(SystemExit):  # argparse names the choices
        main(["symbiote", "--digit", "1", "--condition", "wide", "--json"])
    assert "choose from 'normal', 'polysemantic', 'mixed', 'narrow'" in capsys.readouterr().err
