"""Sparse autoencoders on activations: ReLU with an L1 penalty, and TopK.

An SAE writes each activation vector as a sparse, non-negative combination of learned
directions (the decoder's columns, kept at unit norm). Two variants:

* ``relu``: ``z = relu(W_enc (x - b_dec) + b_enc)`` with an L1 penalty on ``z`` (Bricken et
  al., "Towards Monosemanticity", 2023);
* ``topk``: keep the ``k`` largest pre-activations and zero the rest (Gao et al., 2024), with
  an auxiliary loss that lets dead latents learn to explain the residual error.

Metrics: ``l0`` (mean active latents per input), ``explained_variance`` (1 - residual
variance / variance) and ``dead_fraction`` (latents that never fire on the data given).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mechinterp.checkpoints import (
    cache_lock,
    checkpoint_key,
    checkpoint_paths,
    load_checkpoint,
    save_checkpoint,
    source_digest,
)
from mechinterp.config import seed_everything
from mechinterp.errors import ConfigError, ShapeError

__all__ = [
    "SAEConfig",
    "SparseAutoencoder",
    "train_sae",
    "cached_sae",
    "sae_metrics",
    "spliced_accuracy",
    "feature_recovery",
]


@dataclass(frozen=True)
class SAEConfig:
    """Settings of a sparse autoencoder and its training. Validated at construction.

    Attributes:
        n_latents: dictionary size.
        kind: ``"relu"`` or ``"topk"``.
        l1: L1 coefficient (``relu`` only); codes are measured relative to the data's root
            mean squared norm, so the value does not depend on the activations' scale.
        k: active latents per input (``topk`` only).
        aux_k: dead latents used by the auxiliary loss (``topk`` only).
        aux_coeff: weight of the auxiliary loss.
        steps: optimiser steps.
        batch_size: activations per step.
        lr: Adam learning rate.
    """

    n_latents: int = 64
    kind: str = "topk"
    l1: float = 0.1
    k: int = 8
    aux_k: int = 16
    aux_coeff: float = 1 / 32
    steps: int = 1500
    batch_size: int = 256
    lr: float = 2e-3

    def __post_init__(self) -> None:
        if self.kind not in ("relu", "topk"):
            raise ConfigError(f"SAEConfig.kind must be 'relu' or 'topk', got {self.kind!r}")
        for name in ("n_latents", "k", "aux_k", "steps", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"SAEConfig.{name} must be a positive integer, got {value!r}")
        if self.kind == "topk" and self.k > self.n_latents:
            raise ConfigError(f"SAEConfig.k ({self.k}) cannot exceed n_latents ({self.n_latents})")
        if self.l1 < 0 or self.lr <= 0 or self.aux_coeff < 0:
            raise ConfigError("SAEConfig.l1 and aux_coeff must be >= 0 and lr > 0")

    def as_dict(self) -> dict:
        """Plain dict, for cache keys and records."""
        return asdict(self)


class SparseAutoencoder(nn.Module):
    """``d_in -> n_latents -> d_in`` with unit-norm decoder directions."""

    def __init__(self, d_in: int, config: SAEConfig) -> None:
        super().__init__()
        self.config = config
        self.d_in = d_in
        decoder = torch.randn(d_in, config.n_latents)
        decoder = decoder / decoder.norm(dim=0, keepdim=True)
        self.W_dec = nn.Parameter(decoder)
        self.W_enc = nn.Parameter(decoder.T.clone())
        self.b_enc = nn.Parameter(torch.zeros(config.n_latents))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, d_in) -> (batch, n_latents)`` before the sparsifying non-linearity."""
        if x.shape[-1] != self.d_in:
            raise ShapeError(f"SAE expects inputs with {self.d_in} features, got {x.shape[-1]}")
        return (x - self.b_dec) @ self.W_enc.T + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Sparse codes ``(batch, n_latents)``."""
        pre = self.pre_activation(x)
        if self.config.kind == "relu":
            return F.relu(pre)
        top = pre.topk(self.config.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, F.relu(top.values))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(batch, n_latents) -> (batch, d_in)``."""
        return z @ self.W_dec.T + self.b_dec

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(reconstruction, codes)``."""
        z = self.encode(x)
        return self.decode(z), z

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        """Keep every decoder direction at unit norm."""
        self.W_dec.div_(self.W_dec.norm(dim=0, keepdim=True).clamp_min(1e-8))


def train_sae(activations: torch.Tensor, config: SAEConfig | None = None, *, seed: int = 0,
              progress: bool = False) -> SparseAutoencoder:
    """Fit an SAE to ``(n, d_in)`` activations (kept on their device)."""
    config = config or SAEConfig()
    if activations.dim() != 2 or len(activations) < 2:
        raise ShapeError(f"train_sae needs (n, d_in) activations, got {tuple(activations.shape)}")
    generator = seed_everything(seed)
    x = activations.detach().float()
    sae = SparseAutoencoder(x.shape[1], config).to(x.device)
    with torch.no_grad():
        sae.b_dec.copy_(x.median(0).values)
    optimizer = torch.optim.Adam(sae.parameters(), lr=config.lr)
    scale = x.pow(2).sum(1).mean()
    last_fired = torch.zeros(config.n_latents, device=x.device)
    for _ in tqdm(range(config.steps), disable=not progress, desc="SAE", leave=False):
        batch = x[torch.randint(0, len(x), (config.batch_size,), generator=generator).to(x.device)]
        recon, z = sae(batch)
        err = batch - recon
        loss = err.pow(2).sum(1).mean() / scale
        if config.kind == "relu":
            loss = loss + config.l1 * (z * sae.W_dec.norm(dim=0)).sum(1).mean() / scale.sqrt()
        else:
            last_fired = torch.where(z.sum(0) > 0, torch.zeros_like(last_fired), last_fired + 1)
            dead = last_fired > 100
            if dead.any() and config.aux_coeff > 0:
                pre = sae.pre_activation(batch).masked_fill(~dead, float("-inf"))
                k = min(config.aux_k, int(dead.sum()))
                top = pre.topk(k, dim=-1)
                z_aux = torch.zeros_like(pre).scatter(-1, top.indices, F.relu(top.values))
                aux = (err.detach() - z_aux @ sae.W_dec.T).pow(2).sum(1).mean() / scale
                loss = loss + config.aux_coeff * aux
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sae.normalise_decoder()
    return sae.eval()


def cached_sae(activations: torch.Tensor, config: SAEConfig | None = None, *,
               seed: int = 0) -> SparseAutoencoder:
    """:func:`train_sae`, stored in the cache under a hash of the activations themselves.

    Several transfer methods fit the same SAE to the same activations; the second finds
    it on disk. The key covers the exact activation values, the config, the seed and this
    module's source, so any change trains afresh.
    """
    config = config or SAEConfig()
    x = activations.detach().float().cpu().contiguous()
    spec = {"activations": hashlib.sha256(np.ascontiguousarray(x.numpy()).tobytes()).hexdigest(),
            "shape": list(x.shape), "config": asdict(config), "seed": seed,
            "source": source_digest("sae")}
    key = checkpoint_key(spec)
    with cache_lock("sae", key):
        weights, sidecar = checkpoint_paths("sae", key)
        sae = SparseAutoencoder(x.shape[1], config)
        shapes = {k: tuple(v.shape) for k, v in sae.state_dict().items()}
        found = load_checkpoint(weights, sidecar, key, shapes)
        if found is not None:
            sae.load_state_dict(found[0])
            return sae.to(activations.device).eval()
        sae = train_sae(activations, config, seed=seed)
        save_checkpoint(sae.state_dict(), {**spec, "key": key}, weights, sidecar)
        return sae


@torch.no_grad()
def sae_metrics(sae: SparseAutoencoder, activations: torch.Tensor) -> dict[str, float]:
    """``l0``, ``explained_variance`` and ``dead_fraction`` on ``activations``."""
    x = activations.float()
    recon, z = sae(x)
    residual = (x - recon).pow(2).sum(1).mean()
    variance = (x - x.mean(0)).pow(2).sum(1).mean()
    return {
        "l0": (z > 0).float().sum(1).mean().item(),
        "explained_variance": (1 - residual / variance.clamp_min(1e-12)).item(),
        "dead_fraction": ((z > 0).sum(0) == 0).float().mean().item(),
    }


@torch.no_grad()
def spliced_accuracy(model, sae: SparseAutoencoder, hook_name: str, images: torch.Tensor,
                     labels: torch.Tensor) -> float:
    """Accuracy of ``model`` when its activation at ``hook`` is replaced by the SAE's
    reconstruction (a direct test of whether the SAE keeps what the model uses)."""

    def splice(act: torch.Tensor, hook) -> torch.Tensor:
        return sae(act.flatten(1))[0].view_as(act)

    model.eval()
    preds = model.run_with_hooks(images, fwd_hooks=[(hook_name, splice)]).argmax(-1)
    return (preds == labels).float().mean().item()


@torch.no_grad()
def feature_recovery(sae: SparseAutoencoder, true_directions: torch.Tensor) -> torch.Tensor:
    """For each true feature direction ``(n_features, d_in)``, the best cosine similarity with
    any decoder direction: ``(n_features,)``. Near 1 means the SAE found that feature."""
    truth = true_directions / true_directions.norm(dim=1, keepdim=True)
    return (truth @ sae.W_dec).max(dim=1).values

