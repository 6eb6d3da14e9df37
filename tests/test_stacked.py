"""Seeds trained together: the same models as seeds trained one by one, to float rounding."""

import pytest
import torch

from mechinterp.config import seed_everything
from mechinterp.errors import ConfigError, ShapeError
from mechinterp.models import build_model
from mechinterp.stacked import fit_stacked, train_classifiers_stacked
from mechinterp.train import TrainConfig, fit

CONFIG = TrainConfig(epochs=2, batch_size=64, lr=1e-3, weight_decay=1e-4)


def _separate(arch, seeds, x, y):
    out = []
    for s in seeds:
        generator = seed_everything(s)
        model = build_model(arch)
        out.append((model, fit(model, x, y, CONFIG, generator)))
    return out


def _fresh(arch, seeds):
    models, generators = [], []
    for s in seeds:
        generators.append(seed_everything(s))
        models.append(build_model(arch))
    return models, generators


def _largest_gap(a, b) -> float:
    return max((p - q).abs().max().item()
               for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.mark.parametrize("arch", ["simplenn", "cnn"])
def test_stacked_seeds_train_like_separate_ones(digits_5k, arch):
    x, y = digits_5k.train_images[:640], digits_5k.train_labels[:640]
    seeds = [3, 4]
    separate = _separate(arch, seeds, x, y)
    models, generators = _fresh(arch, seeds)
    histories = fit_stacked(models, x, y, CONFIG, generators)
    for (alone, history), together, history_together in zip(separate, models, histories,
                                                            strict=True):
        assert _largest_gap(alone, together) < 1e-4
        assert history_together[-1]["loss"] == pytest.approx(history[-1]["loss"], abs=1e-5)
        assert history_together[-1]["train_accuracy"] == history[-1]["train_accuracy"]
        assert not together.training
    # the check can fail: with the seeds' batch orders swapped, the copies train differently
    models, generators = _fresh(arch, seeds)
    fit_stacked(models, x, y, CONFIG, generators[::-1])
    assert _largest_gap(separate[0][0], models[0]) > 1e-3


def test_stacked_training_refuses_bad_inputs(digits_5k):
    x, y = digits_5k.train_images[:64], digits_5k.train_labels[:64]
    models, generators = _fresh("simplenn", [0, 1])
    with pytest.raises(ConfigError, match="one generator per model"):
        fit_stacked(models, x, y, CONFIG, generators[:1])
    with pytest.raises(ConfigError, match="at least one"):
        fit_stacked([], x, y, CONFIG, [])
    with pytest.raises(ShapeError, match="one architecture"):
        fit_stacked([build_model("simplenn"), build_model("megann")], x, y, CONFIG, generators)


def test_train_classifiers_stacked_caches_each_seed_apart(digits_5k):
    config = TrainConfig(epochs=2, batch_size=64, lr=1e-3)
    first = train_classifiers_stacked("simplenn", [5, 6], "0-3", data=digits_5k, config=config)
    assert [t.seed for t in first] == [5, 6] and not any(t.cached for t in first)
    assert first[0].meta["trainer"] == "stacked" and first[0].test_accuracy > 0.5  # chance is 0.25
    again = train_classifiers_stacked("simplenn", [6, 7], "0-3", data=digits_5k, config=config)
    assert again[0].cached and not again[1].cached
    assert torch.equal(again[0].model.fc1.weight, first[1].model.fc1.weight)
    with pytest.raises(ConfigError, match="distinct"):
        train_classifiers_stacked("simplenn", [1, 1], data=digits_5k, config=config)
    penalised = TrainConfig(epochs=2, batch_size=64, lr=1e-3, selectivity_penalty=0.3)
    with pytest.raises(ConfigError, match="selectivity_penalty"):
        train_classifiers_stacked("simplenn", [1, 2], data=digits_5k, config=penalised)


def test_a_stacked_seed_is_cached_apart_from_a_plain_one(digits_5k):
    from mechinterp.train import train_classifier

    config = TrainConfig(epochs=1, batch_size=64, lr=1e-3)
    plain = train_classifier("simplenn", "0-3", seed=9, data=digits_5k, config=config)
    stacked = train_classifiers_stacked("simplenn", [9], "0-3", data=digits_5k, config=config)[0]
    assert plain.meta["key"] != stacked.meta["key"] and not stacked.cached
    assert "trainer" not in plain.meta and stacked.meta["trainer"] == "stacked"
