import json
import warnings

import pytest
import torch

from mechinterp.checkpoints import checkpoint_paths
from mechinterp.config import seed_everything
from mechinterp.errors import ConfigError
from mechinterp.models import build_model
from mechinterp.train import (
    TrainConfig,
    _Resume,
    accuracy,
    accuracy_by_class,
    fit,
    train_classifier,
)

FAST = TrainConfig(epochs=2, batch_size=64, lr=1e-3)


@pytest.fixture(scope="module")
def small(digits_5k):
    return digits_5k.subset("0-3")


def test_training_learns_and_is_deterministic(small):
    a = train_classifier("simplenn", data=small, seed=1, config=FAST, retrain=True)
    b = train_classifier("simplenn", data=small, seed=1, config=FAST, retrain=True)
    assert a.test_accuracy > 0.9
    assert a.test_accuracy == b.test_accuracy
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items(),
                                  strict=True):
        assert ka == kb and torch.equal(va, vb)
    c = train_classifier("simplenn", data=small, seed=2, config=FAST, retrain=True)
    assert not torch.equal(a.model.fc1.weight, c.model.fc1.weight)


def test_cache_hit_and_miss(small):
    # a seed no other test trains with: the workers of a `pytest -n` run share one cache, so a
    # run another test also makes could already be there
    first = train_classifier("simplenn", data=small, seed=31, config=FAST)
    assert not first.cached
    second = train_classifier("simplenn", data=small, seed=31, config=FAST)
    assert second.cached
    assert second.test_accuracy == first.test_accuracy
    assert torch.equal(second.model.fc1.weight, first.model.fc1.weight)
    other = train_classifier("simplenn", data=small, seed=31,
                             config=TrainConfig(epochs=1, batch_size=64, lr=1e-3))
    assert not other.cached and other.checkpoint != first.checkpoint


def test_corrupt_checkpoint_is_retrained_with_warning(small):
    first = train_classifier("simplenn", data=small, seed=4, config=FAST)
    first.checkpoint.write_bytes(b"not a safetensors file")
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        again = train_classifier("simplenn", data=small, seed=4, config=FAST)
    assert not again.cached
    assert again.test_accuracy == first.test_accuracy  # same seed, same result
    # and the rebuilt entry is now a clean hit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert train_classifier("simplenn", data=small, seed=4, config=FAST).cached


def test_sidecar_with_wrong_key_is_not_loaded(small):
    first = train_classifier("simplenn", data=small, seed=5, config=FAST)
    sidecar = first.checkpoint.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    meta["key"] = "something-else"
    sidecar.write_text(json.dumps(meta))
    with pytest.warns(RuntimeWarning, match="key or format does not match"):
        assert not train_classifier("simplenn", data=small, seed=5, config=FAST).cached


class _InterruptError(Exception):
    pass


def test_interrupted_fit_resumes_to_the_same_weights(small):
    config = TrainConfig(epochs=3, batch_size=128, lr=1e-3)
    x, y = small.train_images, small.train_labels

    seed_everything(0)
    model = build_model("simplenn")
    reference_history = fit(model, x, y, config, seed_everything(0))
    reference = {k: v.clone() for k, v in model.state_dict().items()}

    resume = _Resume(*checkpoint_paths("partial", "resume-test"), "resume-test")
    seed_everything(0)
    victim = build_model("simplenn")
    calls = {"n": 0}
    batches_per_epoch = -(-len(y) // config.batch_size)
    original = victim.forward

    def forward_then_fail(inp):
        calls["n"] += 1
        if calls["n"] == batches_per_epoch * 2 + 3:  # part-way through epoch 3
            raise _InterruptError
        return original(inp)

    victim.forward = forward_then_fail
    with pytest.raises(_InterruptError):
        fit(victim, x, y, config, seed_everything(0), resume=resume)
    assert resume.sidecar.exists()
    assert json.loads(resume.sidecar.read_text())["epochs_done"] == 2

    seed_everything(123)  # a different fresh start: the partial checkpoint must win
    resumed = build_model("simplenn")
    history = fit(resumed, x, y, config, seed_everything(123), resume=resume)
    assert [h["loss"] for h in history] == [h["loss"] for h in reference_history]
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, reference[key]), key
    assert not resume.sidecar.exists()  # cleaned up after finishing


def test_accuracy_helpers(small):
    trained = train_classifier("simplenn", data=small, seed=3, config=FAST)
    per_class = accuracy_by_class(trained.model, small.test_images, small.test_labels)
    assert sorted(per_class) == [0, 1, 2, 3]
    overall = accuracy(trained.model, small.test_images, small.test_labels)
    assert abs(overall - sum(per_class.values()) / 4) < 1e-6  # balanced classes
    assert accuracy(trained.model, small.test_images[:0], small.test_labels[:0]) != 0.0


def test_train_config_validation():
    with pytest.raises(ConfigError, match="TrainConfig.epochs"):
        TrainConfig(epochs=0, batch_size=1, lr=1e-3)
    with pytest.raises(ConfigError, match="TrainConfig.lr"):
        TrainConfig(epochs=1, batch_size=1, lr=0)
    assert TrainConfig.from_profile(epochs=3).epochs == 3
