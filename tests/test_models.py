import pytest
import torch

from mechinterp.errors import ConfigError, ShapeError
from mechinterp.models import MODEL_REGISTRY, HookedCNN, HookedMLP, build_model, list_models


@pytest.mark.parametrize("name", list_models())
def test_every_model_has_hooks_on_every_hidden_activation(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.rand(5, 1, 28, 28)
    logits, cache = model.run_with_cache(x)
    assert logits.shape == (5, 10)
    assert torch.allclose(cache["hook_logits"], logits)
    counts = model.unit_counts()
    spec = MODEL_REGISTRY[name]
    assert len(counts) == len(spec.channels) + len(spec.hidden)
    for hook, n_units in counts.items():
        assert cache[hook].shape[:2] == (5, n_units)
        assert (cache[hook] >= 0).all()  # post-ReLU
        assert hook.replace("hook_post", "hook_pre") in cache


@pytest.mark.parametrize("name", list_models())
def test_run_with_hooks_changes_the_output(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.rand(4, 1, 28, 28)
    clean = model(x)
    first = model.hidden_hooks[0]
    zeroed = model.run_with_hooks(x, fwd_hooks=[(first, lambda act, hook: act * 0)])
    assert not torch.allclose(clean, zeroed)
    # hooks are removed afterwards
    assert torch.allclose(model(x), clean)


def test_registry_sizes_match_the_seed_architectures():
    mega = build_model("megann")
    assert isinstance(mega, HookedMLP)
    assert [layer.out_features for layer in mega.hidden_layers] == [512, 256, 128, 64]
    assert mega.output_layer.in_features == 64
    assert build_model("simplenn").hidden == (64, 32)
    cnn = build_model("cnn")
    assert isinstance(cnn, HookedCNN) and 100_000 < cnn.n_parameters() < 110_000


def test_inputs_of_other_shapes():
    model = build_model("simplenn").eval()
    flat = torch.rand(3, 784)
    assert torch.allclose(model(flat), model(flat.view(3, 1, 28, 28)))
    with pytest.raises(ShapeError, match=r"expects images of shape.*got \(3, 3, 28, 28\)"):
        model(torch.rand(3, 3, 28, 28))


def test_unknown_architecture():
    with pytest.raises(ConfigError, match=r"unknown architecture 'resnet'.*megann"):
        build_model("resnet")
    with pytest.raises(ConfigError, match="hidden widths"):
        HookedMLP(())


def test_run_in_chunks_matches_one_pass_with_per_image_hooks():
    from mechinterp.symbiote.baselines import gate_hooks

    torch.manual_seed(0)
    model = build_model("cnn").eval()
    images = torch.rand(37, 1, 28, 28)
    n_units = sum(model.unit_counts().values())
    gates = torch.rand(37, n_units) * 2  # a different gate for every image
    with torch.no_grad():
        whole = model.run_with_hooks(images, fwd_hooks=gate_hooks(model, gates))
        chunked = model.run_in_chunks(images, gate_hooks(model, gates), chunk=8)
        plain = model.run_in_chunks(images, chunk=8)
    assert torch.allclose(chunked, whole, atol=1e-5)
    assert not torch.allclose(chunked, plain, atol=1e-3)  # the hooks did act, chunk by chunk
    # each chunk must get its own images' gates: the first rows for every chunk would differ
    first_rows = gates[:8].repeat(5, 1)[:37]
    with torch.no_grad():
        wrong = model.run_with_hooks(images, fwd_hooks=gate_hooks(model, first_rows))
    assert not torch.allclose(chunked, wrong, atol=1e-3)


def test_run_in_chunks_rejects_per_image_values_of_another_size():
    from mechinterp.symbiote.baselines import gate_hooks

    model = build_model("cnn").eval()
    gates = torch.ones(30, sum(model.unit_counts().values()))
    with pytest.raises(ShapeError, match="30 inhibition targets"):
        model.run_in_chunks(torch.rand(37, 1, 28, 28), gate_hooks(model, gates), chunk=8)
