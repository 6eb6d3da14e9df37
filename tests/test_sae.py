import pytest
import torch

from mechinterp.errors import ConfigError, ShapeError
from mechinterp.sae import (
    SAEConfig,
    SparseAutoencoder,
    feature_recovery,
    sae_metrics,
    spliced_accuracy,
    train_sae,
)
from mechinterp.train import TrainConfig, train_classifier


def planted(n=6000, d=24, n_features=32, active=3, seed=0):
    """Activations that are sparse non-negative mixtures of known unit directions."""
    g = torch.Generator().manual_seed(seed)
    directions = torch.randn(n_features, d, generator=g)
    directions = directions / directions.norm(dim=1, keepdim=True)
    codes = torch.zeros(n, n_features)
    for i in range(n):
        idx = torch.randperm(n_features, generator=g)[:active]
        codes[i, idx] = torch.rand(active, generator=g) + 0.5
    return codes @ directions, directions


@pytest.mark.parametrize("kind", ["topk", "relu"])
def test_sae_recovers_planted_features(kind):
    x, directions = planted()
    config = SAEConfig(n_latents=48, kind=kind, k=4, l1=0.1, steps=3000, lr=3e-3)
    sae = train_sae(x, config, seed=0)
    recovered = feature_recovery(sae, directions)
    assert (recovered > 0.9).float().mean() > 0.8, recovered
    metrics = sae_metrics(sae, x)
    assert metrics["explained_variance"] > 0.85
    assert metrics["l0"] < 10


def test_topk_codes_have_at_most_k_active():
    x, _ = planted(n=500)
    sae = train_sae(x, SAEConfig(n_latents=16, kind="topk", k=2, steps=50), seed=1)
    assert ((sae.encode(x) > 0).sum(1) <= 2).all()


def test_decoder_stays_unit_norm_and_bad_inputs():
    x, _ = planted(n=300)
    sae = train_sae(x, SAEConfig(n_latents=8, k=2, steps=20), seed=0)
    assert torch.allclose(sae.W_dec.norm(dim=0), torch.ones(8), atol=1e-5)
    with pytest.raises(ShapeError, match="expects inputs with 24 features"):
        sae.encode(torch.zeros(2, 5))
    with pytest.raises(ConfigError, match="kind"):
        SAEConfig(kind="gated")
    with pytest.raises(ConfigError, match="cannot exceed"):
        SAEConfig(n_latents=4, k=8)
    with pytest.raises(ShapeError):
        train_sae(torch.zeros(5))
    assert SparseAutoencoder(3, SAEConfig(n_latents=4, k=2)).W_dec.shape == (3, 4)


def test_spliced_accuracy_on_a_real_model(digits_5k):
    data = digits_5k.subset("0-3")
    model = train_classifier("simplenn", data=data, seed=0,
                             config=TrainConfig(epochs=2, batch_size=64, lr=1e-3)).model
    hook = "fc2.hook_post"
    _, cache = model.run_with_cache(data.train_images, names_filter=hook)
    sae = train_sae(cache[hook], SAEConfig(n_latents=64, k=8, steps=800), seed=0)
    base = (model(data.test_images).argmax(-1) == data.test_labels).float().mean().item()
    spliced = spliced_accuracy(model, sae, hook, data.test_images, data.test_labels)
    assert spliced > base - 0.1
    assert sae_metrics(sae, cache[hook])["dead_fraction"] < 0.5


def test_cached_sae_reuses_the_same_fit_and_keys_on_the_activations():
    from mechinterp.sae import cached_sae

    x = torch.randn(256, 16, generator=torch.Generator().manual_seed(0))
    config = SAEConfig(n_latents=8, kind="topk", k=2, steps=20, batch_size=64)
    first = cached_sae(x, config, seed=0)
    again = cached_sae(x.clone(), config, seed=0)
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name])
    other = cached_sae(x + 1.0, config, seed=0)  # different activations: a fresh fit
    assert not torch.equal(other.b_dec, first.b_dec)
