"""The sparse autoencoder by hand: its config checks, encoder and decoder on weights written
out here, the three metrics, the spliced accuracy, feature recovery, and a few training steps
against the training rule written out longhand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mechinterp import sae as sae_module
from mechinterp.errors import ConfigError, ShapeError
from mechinterp.sae import (
    SAEConfig,
    SparseAutoencoder,
    cached_sae,
    feature_recovery,
    sae_metrics,
    spliced_accuracy,
    train_sae,
)


def test_config_defaults_and_dict():
    assert SAEConfig().as_dict() == {"n_latents": 64, "kind": "topk", "l1": 0.1, "k": 8,
                                     "aux_k": 16, "aux_coeff": 1 / 32, "steps": 1500,
                                     "batch_size": 256, "lr": 2e-3}


def test_config_validation_messages():
    with pytest.raises(ConfigError) as error:
        SAEConfig(kind="gated")
    assert str(error.value) == "SAEConfig.kind must be 'relu' or 'topk', got 'gated'"
    for name in ("n_latents", "k", "aux_k", "steps", "batch_size"):
        for bad in (0, -1, 2.0, True):
            with pytest.raises(ConfigError) as error:
                SAEConfig(**{name: bad})
            assert str(error.value) == f"SAEConfig.{name} must be a positive integer, got {bad!r}"
    with pytest.raises(ConfigError) as error:
        SAEConfig(n_latents=4, k=5)
    assert str(error.value) == "SAEConfig.k (5) cannot exceed n_latents (4)"
    SAEConfig(n_latents=4, k=4)
    SAEConfig(n_latents=4, k=5, kind="relu")  # k only binds the topk kind
    SAEConfig(n_latents=1, k=1, aux_k=1, steps=1, batch_size=1, l1=0.0, aux_coeff=0.0)
    for bad in ({"l1": -0.1}, {"lr": 0.0}, {"lr": -1.0}, {"aux_coeff": -1e-3}):
        with pytest.raises(ConfigError) as error:
            SAEConfig(**bad)
        assert str(error.value) == "SAEConfig.l1 and aux_coeff must be >= 0 and lr > 0"


def _sae(kind="topk", k=2, d_in=3, n_latents=4):
    sae = SparseAutoencoder(d_in, SAEConfig(n_latents=n_latents, kind=kind, k=k))
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0],
                                      [1.0, 1.0, 0.0]]))
        sae.b_enc.copy_(torch.tensor([0.0, -1.0, 0.5, -2.0]))
        sae.W_dec.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.5], [0.0, 1.0, 0.0, 0.5],
                                      [0.0, 0.0, 1.0, 0.0]]))
        sae.b_dec.copy_(torch.tensor([0.5, 0.0, 0.0]))
    return sae


def test_initial_weights_are_tied_unit_directions():
    torch.manual_seed(0)
    sae = SparseAutoencoder(5, SAEConfig(n_latents=7, k=3))
    assert sae.d_in == 5 and sae.config.n_latents == 7
    assert sae.W_dec.shape == (5, 7) and sae.W_enc.shape == (7, 5)
    assert torch.allclose(sae.W_dec.norm(dim=0), torch.ones(7))
    assert torch.equal(sae.W_enc, sae.W_dec.T)
    assert sae.W_enc.data_ptr() != sae.W_dec.data_ptr()
    assert torch.equal(sae.b_enc, torch.zeros(7)) and torch.equal(sae.b_dec, torch.zeros(5))
    assert {n for n, _ in sae.named_parameters()} == {"W_dec", "W_enc", "b_enc", "b_dec"}


def test_encode_and_decode_by_hand():
    x = torch.tensor([[2.5, 3.0, -1.0], [0.5, 0.0, 1.0]])
    relu = _sae("relu")
    # x - b_dec = (2, 3, -1) and (0, 0, 1); pre = W_enc (x - b_dec) + b_enc
    pre = relu.pre_activation(x)
    assert pre.tolist() == [[2.0, 2.0, -0.5, 3.0], [0.0, -1.0, 1.5, -2.0]]
    assert relu.encode(x).tolist() == [[2.0, 2.0, 0.0, 3.0], [0.0, 0.0, 1.5, 0.0]]
    # top 2: row 0 keeps 3.0 and one of the 2.0s; row 1 keeps 1.5 and 0.0
    topk = _sae("topk", k=2)
    z = topk.encode(x)
    assert (z[0] > 0).sum() == 2 and z[0, 3] == 3.0 and z[0, 2] == 0.0
    assert z[1].tolist() == [0.0, 0.0, 1.5, 0.0]
    # leading axes are kept: a (1, 2, 3) batch is encoded row by row
    stacked = topk.encode(x[None])
    assert stacked.shape == (1, 2, 4) and torch.equal(stacked[0], z)
    assert torch.equal(relu.encode(x[None])[0], relu.encode(x))
    with pytest.raises(ShapeError) as error:
        relu.encode(torch.zeros(2, 3, 5))
    assert str(error.value) == "SAE expects inputs with 3 features, got 5"
    # a negative value among the top k is still cut to 0
    one = _sae("topk", k=1)
    assert one.encode(torch.tensor([[0.5, 0.0, -5.0]])).tolist() == [[0.0, 0.0, 0.0, 0.0]]
    # decode: z @ W_dec^T + b_dec
    codes = torch.tensor([[1.0, 0.0, 2.0, 2.0]])
    assert topk.decode(codes).tolist() == [[2.5, 1.0, 2.0]]
    recon, z = relu(x)
    assert torch.equal(z, relu.encode(x)) and torch.equal(recon, relu.decode(z))
    with pytest.raises(ShapeError) as error:
        relu.encode(torch.zeros(2, 4))
    assert str(error.value) == "SAE expects inputs with 3 features, got 4"


def test_normalise_decoder_keeps_directions_at_unit_norm():
    sae = _sae()
    with torch.no_grad():
        sae.W_dec.copy_(torch.tensor([[3.0, 0.0, 0.0, 1.0], [4.0, 0.5, 0.0, 1.0],
                                      [0.0, 0.0, 0.0, 1.0]]))
    sae.normalise_decoder()
    assert sae.W_dec[:, 0].tolist() == pytest.approx([0.6, 0.8, 0.0])
    assert sae.W_dec[:, 1].tolist() == [0.0, 1.0, 0.0]
    assert sae.W_dec[:, 2].tolist() == [0.0, 0.0, 0.0]  # a zero column stays zero
    assert sae.W_dec[:, 3].tolist() == pytest.approx([1 / math.sqrt(3)] * 3)
    assert sae.W_dec.grad is None


def test_sae_metrics_by_hand():
    sae = _sae("relu")
    x = torch.tensor([[2.5, 3.0, -1.0], [0.5, 0.0, 1.0]], dtype=torch.float64)
    with torch.no_grad():
        recon, z = sae(x.float())
    m = sae_metrics(sae, x)
    # codes (2, 2, 0, 3) and (0, 0, 1.5, 0): 3 and 1 active; latents 0, 1, 2, 3 all fire
    assert m["l0"] == 2.0 and m["dead_fraction"] == 0.0
    residual = ((x.float() - recon) ** 2).sum(1).mean()
    variance = ((x.float() - x.float().mean(0)) ** 2).sum(1).mean()
    assert m["explained_variance"] == pytest.approx(float(1 - residual / variance), rel=1e-6)
    assert set(m) == {"l0", "explained_variance", "dead_fraction"}
    # by hand: recon row 0 = (2 + 1.5 + 0.5, 2 + 1.5, 0) = (4, 3.5, 0); row 1 = (0.5, 0, 1.5)
    assert recon.tolist() == [[4.0, 3.5, 0.0], [0.5, 0.0, 1.5]]
    # residual (1.5² + 0.5² + 1 = 3.5, 0.25) mean 1.875; variance: half-differences
    # (1, 1.5, 1) -> 4.25 per row
    assert m["explained_variance"] == pytest.approx(1 - 1.875 / 4.25)
    # codes below 1 are active too: (0.5, 0, 0.5, 0)
    small = sae_metrics(sae, torch.tensor([[1.0, 0.5, 0.0], [1.0, 0.5, 0.0]]))
    assert small["l0"] == 2.0 and small["dead_fraction"] == 0.5
    only_second = sae_metrics(sae, x[1:].repeat(2, 1))
    assert only_second["dead_fraction"] == 0.75 and only_second["l0"] == 1.0
    # no variance in the data: the denominator is held at 1e-12
    assert only_second["explained_variance"] == pytest.approx(1 - 0.25 / 1e-12, rel=1e-4)


def test_feature_recovery_is_the_best_cosine_per_true_direction():
    sae = _sae()
    with torch.no_grad():
        sae.W_dec.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.6], [0.0, 1.0, 0.0, 0.8],
                                      [0.0, 0.0, 1.0, 0.0]]))
    truth = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 4.0], [-1.0, 0.0, 0.0]])
    got = feature_recovery(sae, truth)
    # row 0 meets column 0 at 1; row 1 (0, .6, .8): column 3 at .64, column 2 at .8;
    # row 2 points away from everything: the best is 0 (columns 1 and 2)
    assert got.tolist() == pytest.approx([1.0, 0.8, 0.0])


class _Spliced(torch.nn.Module):
    """A model whose activation at ``h`` is ``images`` reshaped to (batch, 3, 1) and whose
    logits are that activation after the hook."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def run_with_hooks(self, images, fwd_hooks):
        act = images.view(len(images), 3, 1)
        for name, fn in fwd_hooks:
            self.seen.append(name)
            act = fn(act, hook=None)
        return act.view(len(images), 3)


def test_spliced_accuracy_runs_the_reconstruction_in_place_of_the_activation():
    sae = _sae("relu")
    images = torch.tensor([[2.5, 3.0, -1.0], [0.5, 0.0, 1.0], [0.5, 0.0, 1.0],
                           [2.5, 3.0, -1.0]])
    # reconstructions (4, 3.5, 0) and (0.5, 0, 1.5): argmax 0 and 2
    model = _Spliced()
    model.train()
    acc = spliced_accuracy(model, sae, "blocks.h", images, torch.tensor([0, 2, 1, 0]))
    assert acc == pytest.approx(3 / 4) and type(acc) is float
    assert model.seen == ["blocks.h"] and not model.training
    # the raw images would have been right on the first row only
    assert spliced_accuracy(model, sae, "blocks.h", images[:1], torch.tensor([1])) == 0.0


def _train_reference(x, config, seed):
    """``train_sae`` written out longhand."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    sae = SparseAutoencoder(x.shape[1], config)
    with torch.no_grad():
        sae.b_dec.copy_(x.median(0).values)
    opt = torch.optim.Adam(sae.parameters(), lr=config.lr)
    scale = (x ** 2).sum(1).mean()
    last_fired = torch.zeros(config.n_latents)
    for _ in range(config.steps):
        batch = x[torch.randint(0, len(x), (config.batch_size,), generator=generator)]
        recon, z = sae(batch)
        err = batch - recon
        loss = (err ** 2).sum(1).mean() / scale
        if config.kind == "relu":
            loss = loss + config.l1 * (z * sae.W_dec.norm(dim=0)).sum(1).mean() / scale.sqrt()
        else:
            fired = z.sum(0) > 0
            last_fired = torch.where(fired, torch.zeros_like(last_fired), last_fired + 1)
            dead = last_fired > 100
            if dead.any() and config.aux_coeff > 0:
                pre = sae.pre_activation(batch).masked_fill(~dead, float("-inf"))
                top = pre.topk(min(config.aux_k, int(dead.sum())), dim=-1)
                z_aux = torch.zeros_like(pre).scatter(-1, top.indices, F.relu(top.values))
                aux = ((err.detach() - z_aux @ sae.W_dec.T) ** 2).sum(1).mean() / scale
                loss = loss + config.aux_coeff * aux
        opt.zero_grad()
        loss.backward()
        opt.step()
        sae.normalise_decoder()
    return sae


def _planted(n=40, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(n, d, generator=g)) + 0.1 * torch.randn(n, d, generator=g)


@pytest.mark.parametrize("config", [
    SAEConfig(n_latents=6, kind="relu", l1=0.3, steps=4, batch_size=8, lr=0.05),
    SAEConfig(n_latents=6, kind="topk", k=2, steps=4, batch_size=8, lr=0.05),
    # enough steps for latents to die, so the auxiliary loss runs (with aux_k above and
    # below the number of dead latents)
    SAEConfig(n_latents=12, kind="topk", k=1, aux_k=2, aux_coeff=0.5, steps=110, batch_size=4,
              lr=0.02),
    SAEConfig(n_latents=12, kind="topk", k=1, aux_k=12, aux_coeff=0.5, steps=110, batch_size=4,
              lr=0.02),
    SAEConfig(n_latents=12, kind="topk", k=1, aux_coeff=0.0, steps=105, batch_size=4,
              lr=0.02),
])
def test_train_sae_follows_its_training_rule(config):
    x = _planted()
    got = train_sae(x, config, seed=3)
    want = _train_reference(x, config, seed=3)
    assert not got.training and got.config == config
    for name, value in want.state_dict().items():
        assert torch.allclose(got.state_dict()[name], value, atol=1e-5), name


def test_train_sae_defaults_and_bad_inputs(monkeypatch):
    small = SAEConfig(n_latents=4, k=2, steps=3, batch_size=5)
    monkeypatch.setattr(sae_module, "SAEConfig", lambda: small)
    x = _planted()
    got = train_sae(x)  # the default config and seed 0
    want = _train_reference(x, small, seed=0)
    assert torch.allclose(got.W_dec, want.W_dec, atol=1e-6)
    for bad in (torch.zeros(5), torch.zeros(1, 3), torch.zeros(2, 3, 1)):
        with pytest.raises(ShapeError) as error:
            train_sae(bad, small)
        assert str(error.value) == (f"train_sae needs (n, d_in) activations, got "
                                    f"{tuple(bad.shape)}")
    train_sae(torch.randn(2, 3), small)  # two rows are enough


def test_cached_sae_trains_once_and_keys_on_the_values(tmp_path, monkeypatch):
    monkeypatch.setenv("MECHINTERP_CACHE", str(tmp_path))
    calls = []
    real = sae_module.train_sae

    def counting(*args, **kwargs):
        calls.append(kwargs.get("seed"))
        return real(*args, **kwargs)

    monkeypatch.setattr(sae_module, "train_sae", counting)
    config = SAEConfig(n_latents=4, k=2, steps=3, batch_size=5)
    x = _planted()
    first = cached_sae(x, config, seed=2)
    again = cached_sae(x.clone(), config, seed=2)
    assert calls == [2]
    assert not again.training
    for name, value in first.state_dict().items():
        assert torch.equal(again.state_dict()[name], value)
    assert torch.equal(first.W_dec, _train_reference(x, config, seed=2).W_dec)
    cached_sae(x, config, seed=3)
    changed = x.clone()
    changed[0, 0] += 1e-3
    cached_sae(changed, config, seed=2)
    cached_sae(x, SAEConfig(n_latents=4, k=1, steps=3, batch_size=5), seed=2)
    assert calls == [2, 3, 2, 2]
    cached_sae(x, config, seed=3)  # each entry is kept beside the others
    assert calls == [2, 3, 2, 2]
    # an entry whose tensors have the wrong shapes is refused and trained again
    from safetensors.torch import save_file

    stale = cached_sae(x, config, seed=3)
    bad = {k: torch.zeros(1) for k in stale.state_dict()}
    for path in (tmp_path / "checkpoints" / "sae").glob("*.safetensors"):
        save_file(bad, str(path))
    with pytest.warns(RuntimeWarning, match="do not fit the model"):
        again = cached_sae(x, config, seed=3)
    assert calls == [2, 3, 2, 2, 3] and torch.equal(again.W_dec, stale.W_dec)
    # the entry's layout and record: a weights file and a sidecar naming what it was fit on
    import hashlib
    import json
    from dataclasses import asdict

    import numpy as np

    from mechinterp.checkpoints import checkpoint_key, source_digest

    spec = {"activations": hashlib.sha256(np.ascontiguousarray(x.numpy()).tobytes()).hexdigest(),
            "shape": [40, 4], "config": asdict(config), "seed": 2, "source": source_digest("sae")}
    key = checkpoint_key(spec)
    folder = tmp_path / "checkpoints" / "sae"
    assert (folder / f"{key}.safetensors").is_file()
    record = json.loads((folder / f"{key}.json").read_text())
    assert {k: record[k] for k in (*spec, "key")} == {**json.loads(json.dumps(spec)), "key": key}
    assert (tmp_path / "locks" / "sae" / f"{key}.lock").is_file()
    monkeypatch.setattr(sae_module, "SAEConfig", lambda: config)
    cached_sae(x)
    assert calls == [2, 3, 2, 2, 3, 0]
