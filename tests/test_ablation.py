import pytest
import torch

from mechinterp.ablation import (
    ablation_hook,
    accuracy_per_class_with_hooks,
    single_unit_ablation,
    unit_means,
)
from mechinterp.errors import ConfigError, ShapeError
from mechinterp.models import build_model
from mechinterp.train import TrainConfig, train_classifier


@pytest.fixture(scope="module")
def trained(digits_5k):
    return train_classifier("cnn", data=digits_5k.subset("0-3"), seed=0,
                            config=TrainConfig(epochs=3, batch_size=64, lr=1e-3))


def test_mean_and_zero_hooks_write_the_right_values():
    act = torch.rand(2, 4, 3, 3)
    means = torch.tensor([10.0, 20.0, 30.0, 40.0])
    out = ablation_hook([1, 3], "mean", means)(act, None)
    assert torch.all(out[:, 1] == 20.0) and torch.all(out[:, 3] == 40.0)
    assert torch.equal(out[:, 0], act[:, 0])
    zero = ablation_hook([0], "zero")(act, None)
    assert torch.all(zero[:, 0] == 0) and torch.equal(zero[:, 2], act[:, 2])


def test_ablating_every_channel_destroys_accuracy(trained, digits_5k):
    data = digits_5k.subset("0-3")
    model = trained.model
    base = accuracy_per_class_with_hooks(model, data.test_images, data.test_labels, [], [0, 1, 2, 3])
    dead = accuracy_per_class_with_hooks(
        model, data.test_images, data.test_labels,
        [("conv2.hook_post", ablation_hook(range(16), "zero"))], [0, 1, 2, 3])
    assert base.mean() > 0.85
    assert dead.mean() < 0.5


def test_single_unit_ablation_shape_and_sign(trained, digits_5k):
    data = digits_5k.subset("0-3")
    drops = single_unit_ablation(trained.model, "conv1.hook_post", data.test_images,
                                 data.test_labels, [0, 1, 2, 3], mode="mean")
    assert drops.shape == (8, 4)
    assert drops.max() > 0  # at least one channel matters for some digit
    means = unit_means(trained.model, "conv1.hook_post", data.test_images)
    assert means.shape == (8,) and (means >= 0).all()


def test_bad_ablation_inputs():
    model = build_model("simplenn")
    with pytest.raises(ConfigError, match="'zero' or 'mean'"):
        ablation_hook([0], "max")
    with pytest.raises(ConfigError, match="needs the units' means"):
        ablation_hook([0], "mean")
    with pytest.raises(ShapeError, match="out of range"):
        model.run_with_hooks(torch.rand(2, 784),
                             fwd_hooks=[("fc2.hook_post", ablation_hook([40], "zero"))])
    with pytest.raises(ConfigError, match="unknown hidden hook"):
        single_unit_ablation(model, "fc9.hook_post", torch.rand(2, 784), torch.zeros(2), [0])
