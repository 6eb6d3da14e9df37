"""Methods 8-10: concept injection through sparse autoencoder (SAE) spaces.

Each trains a TopK SAE on the last hidden layer of both models (A on its own images, B on
donor images) and moves a "concept vector" from B's space into A's:

8.  SAE concept injection: B's mean concept code, decoded and mapped into A's space, is added
    to A's features for *every* input, and A's concept row reads it. The seed project reports
    this transfers everything and preserves nothing; it is kept to show that failure.
9.  Preserved concept injection: the same vector, injected only in proportion to a concept
    detector's probability and damped by a preservation weight of 0.95 (the seed's starting
    value), so A's own features dominate.
10. Vector-space aligned transfer: the two SAE code spaces are aligned by orthogonal
    Procrustes on the shared digits; the concept's aligned code is projected onto the "free"
    directions of A's code space (the right singular vectors A's own images use least), and
    that free-space vector is injected, gated by the detector.

All three use the transported probe of method 2 as the concept detector and as A's concept
row, so their differences come from the injected features alone.
"""

from __future__ import annotations

import torch
from torch import nn

from mechinterp.sae import SAEConfig, cached_sae
from mechinterp.transfer.common import features, penultimate_hook, ridge_map, set_concept_row
from mechinterp.transfer.context import TransferContext
from mechinterp.transfer.methods.procrustes_probe import procrustes_probe, transported_probe
from mechinterp.transfer.registry import register

__all__ = ["FeatureInjection"]

SAE_CONFIG = SAEConfig(n_latents=32, kind="topk", k=6, steps=800)


class FeatureInjection(nn.Module):
    """A recipient whose last hidden layer gets ``gate(h) * strength * vector`` added."""

    def __init__(self, recipient, hook: str, vector: torch.Tensor, strength: float,
                 probe: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        super().__init__()
        self.recipient, self.hook = recipient, hook
        self.register_buffer("vector", vector)
        self.strength = strength
        self.probe = probe

    def _inject(self, act: torch.Tensor, hook) -> torch.Tensor:
        gate = torch.ones(act.shape[0], 1, device=act.device)
        if self.probe is not None:
            w, b = self.probe
            gate = torch.sigmoid(act.flatten(1) @ w + b).unsqueeze(1)
        return act + gate * self.strength * self.vector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.recipient.run_with_hooks(x, fwd_hooks=[(self.hook, self._inject)])


def _concept_code(ctx: TransferContext, sae, fb: torch.Tensor, labels: torch.Tensor
                  ) -> torch.Tensor:
    """B's mean SAE code of the concept: over its concept images, or, with none (a budget of
    0), the code of B's features moved from the other donor digits' mean along B's own
    readout of the concept, by the typical distance between a digit's mean and the rest's."""
    p = ctx.protocol
    is_concept = labels == p.concept
    with torch.no_grad():
        if is_concept.any():
            return sae.encode(fb[is_concept]).mean(0)
        out = ctx.donor.output_layer
        others = [d for d in labels.unique().tolist() if d != p.concept]  # digits handed out
        readout = out.weight[p.concept] - out.weight[others].mean(0)
        means = torch.stack([fb[labels == d].mean(0) for d in others])
        step = (means - means.mean(0)).norm(dim=1).mean()
        estimate = means.mean(0) + step * readout / readout.norm().clamp_min(1e-8)
        return sae.encode(estimate.clamp_min(0)[None])[0]


def _concept_vector_in_a(ctx: TransferContext):
    """B's mean concept code, decoded, minus the other donor digits', mapped into A's space."""
    p = ctx.protocol
    hook_a, hook_b = penultimate_hook(ctx.recipient), penultimate_hook(ctx.donor)
    images, labels = ctx.donor_data()
    fb = features(ctx.donor, images, hook_b)
    sae_b = cached_sae(fb, SAE_CONFIG, seed=ctx.seed)
    with torch.no_grad():
        codes = sae_b.encode(fb)
        is_concept = labels == p.concept
        direction_b = sae_b.decode(_concept_code(ctx, sae_b, fb, labels)[None]) - sae_b.decode(
            codes[~is_concept].mean(0, keepdim=True))
    own_images, own_labels = ctx.own_data()
    shared = torch.isin(own_labels, torch.tensor(p.shared_digits, device=own_labels.device))
    m, _ = ridge_map(features(ctx.donor, own_images[shared], hook_b),
                     features(ctx.recipient, own_images[shared], hook_a))
    return (direction_b @ m)[0], sae_b


@register("sae_concept_injection", title="SAE concept injection", kind="surgery",
          changes="module", number=8)
def sae_concept_injection(ctx: TransferContext) -> nn.Module:
    """Add B's concept vector (through its SAE and an alignment) to A's features everywhere."""
    vector, _ = _concept_vector_in_a(ctx)
    w, b = transported_probe(ctx)
    set_concept_row(ctx.recipient, ctx.protocol.concept, w, b)
    return FeatureInjection(ctx.recipient, penultimate_hook(ctx.recipient), vector, 1.0, None)


@register("preserved_concept_injection", title="Preserved concept injection", kind="surgery",
          changes="module", number=9)
def preserved_concept_injection(ctx: TransferContext, preservation: float = 0.95
                                ) -> nn.Module:
    """Inject the concept vector only as far as a detector fires, damped for preservation."""
    vector, _ = _concept_vector_in_a(ctx)
    probe = transported_probe(ctx)
    edited = procrustes_probe(ctx)  # calibrated concept row
    return FeatureInjection(edited, penultimate_hook(edited), vector, 1 - preservation, probe)


@register("vector_space_aligned", title="Vector-space aligned transfer (Procrustes + SVD free space)",
          kind="surgery", changes="module", number=10)
def vector_space_aligned(ctx: TransferContext, n_free: int = 8) -> nn.Module:
    """Align SAE code spaces on shared digits; inject the concept into A's unused directions."""
    p = ctx.protocol
    hook_a, hook_b = penultimate_hook(ctx.recipient), penultimate_hook(ctx.donor)
    own_images, own_labels = ctx.own_data()
    fa_own = features(ctx.recipient, own_images, hook_a)
    sae_a = cached_sae(fa_own, SAE_CONFIG, seed=ctx.seed)
    images, labels = ctx.donor_data()
    fb = features(ctx.donor, images, hook_b)
    sae_b = cached_sae(fb, SAE_CONFIG, seed=ctx.seed)
    shared = torch.isin(own_labels, torch.tensor(p.shared_digits, device=own_labels.device))
    with torch.no_grad():
        codes_a = sae_a.encode(fa_own)
        codes_b_shared = sae_b.encode(features(ctx.donor, own_images[shared], hook_b))
        ca, cb = codes_a[shared], codes_b_shared
        rotation = torch.linalg.svd((cb - cb.mean(0)).T.double() @ (ca - ca.mean(0)).double())
        u, _, vh = rotation
        r = (u @ vh).float()  # codes_b @ r ~ codes_a
        concept_code = _concept_code(ctx, sae_b, fb, labels) @ r
        _, _, v = torch.linalg.svd(codes_a - codes_a.mean(0), full_matrices=True)
        free = v[-n_free:].T  # least-used directions of A's code space
        injection_code = free @ (free.T @ concept_code)
        vector = injection_code @ sae_a.W_dec.T
    probe = transported_probe(ctx)
    edited = procrustes_probe(ctx)
    return FeatureInjection(edited, hook_a, vector, 1.0, probe)
