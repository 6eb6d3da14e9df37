"""The nine SAE-free injection methods: sparse autoencoders shape the transfer offline, and the
edited recipient runs without any SAE at inference.

The shared mechanism: TopK SAEs are trained on the first fully connected layer of A (on A's
own images) and of B (on donor images). A map is fit, on images passed through both models,
from A's *linear* SAE encoding (the pre-activations, ``W_enc (h - b_dec) + b_enc``) to B's
sparse codes; B's decoder turns predicted codes back into B's features, and B's upper layers
judge them, as in aligned spatial transfer. Every step after the fit is linear, so the whole
path folds offline into a low-rank affine map from A's features to B's (two precomputed
matrices), or into the first and last layers of a small aligner network: no SAE encode, with
its TopK selection, runs at inference.
``benchmarks/bench_sae_free.py`` measures what that saves.

1. precomputed vector alignment: the folded low-rank map (a ridge fit in code space).
2. cross-architecture neural alignment: a small network between the code spaces, with the
   encoder and decoder folded into its first and last layers.
3. concept dimension scaling: method 1 with the dictionary size chosen on held-out training
   images from a sweep.
4. sparsity-based SAE optimisation: method 1 with the TopK sparsity chosen the same way.
5. hierarchical concept transfer: maps at two levels (first and last hidden layer), scores
   averaged.
6. multi-concept transfer: the concept and the specificity digit transferred together.
7. adversarial concept training: the code-space map fit on noisy images against clean
   targets, so it holds up under input noise.
8. universal architecture-agnostic concepts: one dictionary over both models' features.
9. continual concept learning: concepts added one after another (see
   :func:`continual_steps`), each calibrated on what is known at its step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from mechinterp.config import seed_everything
from mechinterp.sae import SAEConfig, SparseAutoencoder, cached_sae
from mechinterp.transfer.common import (
    Affine,
    calibrate_threshold,
    features,
    fit_regressor,
    gated,
    override_concept,
    penultimate_hook,
    ridge_map,
)
from mechinterp.transfer.context import ModelPair, TransferContext
from mechinterp.transfer.methods.aligned import DonorScore, first_fc_hook, paired_images
from mechinterp.transfer.protocol import transfer_metrics
from mechinterp.transfer.registry import register

__all__ = ["CodeMap", "fit_code_map", "fold_code_map", "sae_map_scorer", "code_map_transfer",
           "add_pixel_noise", "select_sae_config", "config_sweep", "dimension_configs", "sparsity_configs",
           "penultimate_scorer", "universal_dictionary", "continual_steps", "NOISE_STD"]

BASE_SAE = SAEConfig(n_latents=96, kind="topk", k=12, steps=500, batch_size=128)
"""Method 1's dictionaries (and the base of the sweeps of methods 3 and 4). The batch was
chosen on the validation split by the rule used for method 8's steps (the least compute whose
mean validation transfer, both pairs x 3 seeds, stays within one point): 256 -> 75.7%,
128 -> 76.4%, 64 -> 73.6%."""
NOISE_STD = 0.3
"""Pixel noise (standard deviation, images in [0, 1]) for method 7's training and tests."""


def _linear_encoding(sae: SparseAutoencoder) -> Affine:
    """The SAE's encoder before its non-linearity, as an affine map."""
    weight = sae.W_enc.detach().T
    return Affine(weight, sae.b_enc.detach() - sae.b_dec.detach() @ weight)


def _decoding(sae: SparseAutoencoder) -> Affine:
    return Affine(sae.W_dec.detach().T, sae.b_dec.detach())


def fold_code_map(sae_a: SparseAutoencoder, code_w: torch.Tensor, code_b: torch.Tensor,
                  sae_b: SparseAutoencoder) -> nn.Sequential:
    """Fold A's linear encoding, a code-space map and B's decoder into a low-rank affine map.

    The result is two precomputed matrices, ``d_A x n_codes`` and ``n_codes x d_B``: one dense
    ``d_A x d_B`` matrix would compute the same function with more arithmetic whenever the
    dictionary is smaller than the layers (measured in ``benchmarks/bench_sae_free.py``).
    """
    enc, dec = _linear_encoding(sae_a), _decoding(sae_b)
    first = Affine(enc.weight @ code_w, enc.bias @ code_w + code_b)
    return nn.Sequential(first, Affine(dec.weight, dec.bias)).eval()


@dataclass
class CodeMap:
    """Method 1's fit: SAEs on both first fc layers and a ridge map between their code spaces.

    Attributes:
        sae_a: A's SAE; its *linear* encoding is the map's input.
        sae_b: B's SAE; its decoder turns predicted codes into B's features.
        code_w: ``(n_latents_A, n_latents_B)`` ridge weights; ``code_b``: the bias.
        hook_a: A's hook point; hook_b: B's.
    """

    sae_a: SparseAutoencoder
    sae_b: SparseAutoencoder
    code_w: torch.Tensor
    code_b: torch.Tensor
    hook_a: str
    hook_b: str

    def folded(self) -> nn.Sequential:
        """The SAE-free map A features -> B features (two precomputed matrices)."""
        return fold_code_map(self.sae_a, self.code_w, self.code_b, self.sae_b)

    @torch.no_grad()
    def through_saes(self, features_a: torch.Tensor) -> torch.Tensor:
        """The same function computed step by step through both SAEs' parameters."""
        codes = _linear_encoding(self.sae_a)(features_a) @ self.code_w + self.code_b
        return self.sae_b.decode(codes)


def fit_code_map(ctx: TransferContext, *, sae_config: SAEConfig = BASE_SAE, noise: float = 0.0,
                 images: torch.Tensor | None = None) -> CodeMap:
    """Fit method 1's code map on paired images (A's own and the donor's).

    Args:
        ctx: the transfer context.
        sae_config: both SAEs' config.
        noise: when positive, the map is also fit on noisy copies of the images (pixel noise
            of this standard deviation) against the clean images' codes (method 7).
        images: fit on these instead of all paired training images (model selection).
    """
    hook_a, hook_b = first_fc_hook(ctx.recipient), first_fc_hook(ctx.donor)
    if images is None:
        images, _ = paired_images(ctx)
    fa = features(ctx.recipient, images, hook_a)
    fb = features(ctx.donor, images, hook_b)
    sae_a = cached_sae(fa, sae_config, seed=ctx.seed)
    sae_b = cached_sae(fb, sae_config, seed=ctx.seed)
    source = images
    if noise > 0:  # fit on noisy inputs against the clean images' targets
        source = torch.cat([images, add_pixel_noise(images, noise, seed=ctx.seed)])
        fb = torch.cat([fb, fb])
    with torch.no_grad():
        pre_a = _linear_encoding(sae_a)(features(ctx.recipient, source, hook_a))
        codes_b = sae_b.encode(fb)
    code_w, code_b = ridge_map(pre_a, codes_b)
    return CodeMap(sae_a, sae_b, code_w, code_b, hook_a, hook_b)


def add_pixel_noise(images: torch.Tensor, std: float, *, seed: int = 0) -> torch.Tensor:
    """Images plus Gaussian pixel noise of standard deviation ``std``, clipped to [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=generator).to(images.device)
    return (images + std * noise).clamp(0, 1)


def sae_map_scorer(ctx: TransferContext, *, concept: int | None = None,
                   **fit_kwargs) -> DonorScore:
    """Method 1's scorer: B's upper layers judge the folded code map of A's features."""
    concept = ctx.protocol.concept if concept is None else concept
    code_map = fit_code_map(ctx, **fit_kwargs)
    return DonorScore(ctx.recipient, code_map.hook_a, ctx.donor, code_map.hook_b,
                      code_map.folded(), concept, ctx.protocol.donor_digits)


def code_map_transfer(ctx: TransferContext, **fit_kwargs) -> nn.Module:
    """A with a concept override scored by method 1's map (``fit_kwargs`` as for
    :func:`fit_code_map`), calibrated on the images that are not the concept."""
    return override_concept(ctx, sae_map_scorer(ctx, **fit_kwargs))


@register("precomputed_vector_alignment", title="Precomputed vector space alignment",
          kind="sae-free", changes="module", number=1)
def precomputed_vector_alignment(ctx: TransferContext) -> nn.Module:
    """Fold an SAE-space alignment of the first fc layers into one precomputed affine map."""
    return code_map_transfer(ctx)


@register("cross_architecture_alignment", title="Cross-architecture neural alignment",
          kind="sae-free", changes="module", number=2)
def cross_architecture_alignment(ctx: TransferContext, steps: int = 800) -> nn.Module:
    """Train a small network from A's SAE encoding to B's codes; fold the SAEs into it."""
    hook_a, hook_b = first_fc_hook(ctx.recipient), first_fc_hook(ctx.donor)
    images, _ = paired_images(ctx)
    fa, fb = features(ctx.recipient, images, hook_a), features(ctx.donor, images, hook_b)
    sae_a, sae_b = cached_sae(fa, BASE_SAE, seed=ctx.seed), cached_sae(fb, BASE_SAE, seed=ctx.seed)
    enc, dec = _linear_encoding(sae_a), _decoding(sae_b)
    with torch.no_grad():
        pre_a, codes_b = enc(fa), sae_b.encode(fb)
    scale = pre_a.std(0).clamp_min(1e-6)
    generator = seed_everything(ctx.seed)
    width = max(pre_a.shape[1], codes_b.shape[1])
    aligner = nn.Sequential(nn.Linear(pre_a.shape[1], width), nn.ReLU(),
                            nn.Linear(width, codes_b.shape[1])).to(ctx.device)
    fit_regressor(aligner, pre_a / scale, codes_b, generator, steps=steps, weight_decay=1e-4)
    first, last = aligner[0], aligner[2]
    with torch.no_grad():  # fold the encoder (and the scaling) into the first layer, the decoder into the last
        w1 = enc.weight / scale @ first.weight.T
        b1 = (enc.bias / scale) @ first.weight.T + first.bias
        w2 = last.weight.T @ dec.weight
        b2 = last.bias @ dec.weight + dec.bias
    mapper = nn.Sequential(Affine(w1, b1), nn.ReLU(), Affine(w2, b2)).eval()
    scorer = DonorScore(ctx.recipient, hook_a, ctx.donor, hook_b, mapper, ctx.protocol.concept,
                        ctx.protocol.donor_digits)
    return override_concept(ctx, scorer)


def _validation_score(ctx: TransferContext, scorer: DonorScore, val_images, val_labels) -> float:
    """Recall on held-out concept images minus false positives on held-out others."""
    concept = ctx.protocol.concept
    with torch.no_grad():
        scores = gated(ctx, scorer)(val_images)
    negatives = scores[val_labels != concept]
    threshold = calibrate_threshold(negatives)
    positives = scores[val_labels == concept]
    recall = (positives > threshold).float().mean().item() if len(positives) else 0.0
    return recall - (negatives > threshold).float().mean().item()


RANKING_STEPS_SHARE = 0.5
"""Share of a candidate's SAE steps used when methods 3 and 4 rank their candidates."""


def select_sae_config(ctx: TransferContext, configs: list[SAEConfig]
                      ) -> tuple[SAEConfig, list[float]]:
    """Pick the SAE config whose map scores best on held-out *training* images.

    The paired training images are split 80/20; each config is fit on the 80% and scored on
    the 20% by recall of the concept minus false positives at a threshold set on the held-out
    negatives. Test images are never seen. The ranking fits train their dictionaries for
    :data:`RANKING_STEPS_SHARE` of the config's steps (a ranking needs less than a final fit,
    and the sweep then costs about half as much); the chosen config is fit in full afterwards.
    Returns the best config and every config's score.
    """
    images, labels = paired_images(ctx)
    generator = torch.Generator().manual_seed(ctx.seed)
    order = torch.randperm(len(labels), generator=generator).to(images.device)
    cut = int(0.8 * len(order))
    fit_idx, val_idx = order[:cut], order[cut:]
    scores = []
    for config in configs:
        quick = replace(config, steps=max(1, round(config.steps * RANKING_STEPS_SHARE)))
        scorer = sae_map_scorer(ctx, sae_config=quick, images=images[fit_idx])
        scores.append(_validation_score(ctx, scorer, images[val_idx], labels[val_idx]))
    best = configs[max(range(len(configs)), key=lambda i: scores[i])]
    return best, scores


def config_sweep(pair: ModelPair, configs: list[SAEConfig], *, seed: int = 0
                 ) -> tuple[SAEConfig, list[dict[str, float]]]:
    """The config :func:`select_sae_config` picks, and for every candidate its validation score
    and the test metrics of method 1 fit with it (for display: the choice never sees them)."""
    best, scores = select_sae_config(TransferContext(pair, seed=seed), configs)
    rows = []
    for config, score in zip(configs, scores, strict=True):
        edited = code_map_transfer(TransferContext(pair, seed=seed), sae_config=config)
        rows.append({"n_latents": config.n_latents, "k": config.k, "validation score": score,
                     **transfer_metrics(edited, pair.data, pair.protocol)})
    return best, rows


DIMENSION_SWEEP = (32, 96, 192)
SPARSITY_SWEEP = (4, 12, 32)


def dimension_configs() -> list[SAEConfig]:
    """Method 3's candidates: dictionary sizes of :data:`DIMENSION_SWEEP`."""
    return [replace(BASE_SAE, n_latents=n, k=min(BASE_SAE.k, n // 2)) for n in DIMENSION_SWEEP]


def sparsity_configs() -> list[SAEConfig]:
    """Method 4's candidates: TopK sparsities of :data:`SPARSITY_SWEEP`."""
    return [replace(BASE_SAE, k=k) for k in SPARSITY_SWEEP]


@register("concept_dimension_scaling", title="Concept dimension scaling", kind="sae-free",
          changes="module", number=3)
def concept_dimension_scaling(ctx: TransferContext) -> nn.Module:
    """Method 1 with the SAE dictionary size picked on held-out training images."""
    configs = dimension_configs()
    best, _ = select_sae_config(ctx, configs)
    return code_map_transfer(ctx, sae_config=best)


@register("sparsity_sae_optimisation", title="Sparsity-based SAE optimisation", kind="sae-free",
          changes="module", number=4)
def sparsity_sae_optimisation(ctx: TransferContext) -> nn.Module:
    """Method 1 with the TopK sparsity picked on held-out training images."""
    configs = sparsity_configs()
    best, _ = select_sae_config(ctx, configs)
    return code_map_transfer(ctx, sae_config=best)


class _MeanScore(nn.Module):
    """The mean of several scores, each divided by its spread, then put back in the scores'
    own units (times the mean spread), so that a gate in logit units weighs it fairly."""

    def __init__(self, scorers: list[nn.Module], scales: list[float]) -> None:
        super().__init__()
        self.scorers = nn.ModuleList(scorers)
        self.scales = scales

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = sum(s(x) / c for s, c in zip(self.scorers, self.scales, strict=True))
        return total / len(self.scales) * (sum(self.scales) / len(self.scales))


def penultimate_scorer(ctx: TransferContext) -> DonorScore:
    """The higher level of method 5: a ridge map between the last hidden layers."""
    images, _ = paired_images(ctx)
    hook_a, hook_b = penultimate_hook(ctx.recipient), penultimate_hook(ctx.donor)
    weight, bias = ridge_map(features(ctx.recipient, images, hook_a),
                             features(ctx.donor, images, hook_b))
    return DonorScore(ctx.recipient, hook_a, ctx.donor, hook_b, Affine(weight, bias),
                      ctx.protocol.concept, ctx.protocol.donor_digits)


@register("hierarchical_concept_transfer", title="Hierarchical concept transfer",
          kind="sae-free", changes="module", number=5)
def hierarchical_concept_transfer(ctx: TransferContext) -> nn.Module:
    """Align both the first and the last hidden layers; average the two donor scores."""
    low, high = sae_map_scorer(ctx), penultimate_scorer(ctx)
    negatives = ctx.calibration_negatives()
    with torch.no_grad():
        scales = [s(negatives).std().clamp_min(1e-6).item() for s in (low, high)]
    return override_concept(ctx, _MeanScore([low, high], scales), negatives=negatives)


def _extra_concept(ctx: TransferContext) -> int:
    return ctx.protocol.specificity_digit


@register("multi_concept_transfer", title="Multi-concept transfer (concept and specificity digit)",
          kind="sae-free", changes="module", number=6, teaches_specificity=True)
def multi_concept_transfer(ctx: TransferContext) -> nn.Module:
    """Transfer the concept and the specificity digit together, one override each."""
    concepts = (ctx.protocol.concept, _extra_concept(ctx))
    negatives = ctx.calibration_negatives(concepts)
    model: nn.Module = ctx.recipient
    for concept in concepts:
        model = override_concept(ctx, sae_map_scorer(ctx, concept=concept), concept=concept,
                                 recipient=model, negatives=negatives)
    return model


@register("adversarial_concept_training", title="Adversarial concept training (noise-robust map)",
          kind="sae-free", changes="module", number=7)
def adversarial_concept_training(ctx: TransferContext) -> nn.Module:
    """Method 1 with the code map fit on noisy images against clean targets."""
    return code_map_transfer(ctx, noise=NOISE_STD)


UNIVERSAL_SAE = SAEConfig(n_latents=192, kind="topk", k=24, steps=180)
"""Method 8's dictionary. Steps were chosen on the validation split by a rule fixed first (the
fewest steps whose mean validation transfer, both pairs x 3 seeds, stays within one point of
600 steps): 600 -> 83.3%, 300 -> 83.0%, 180 -> 83.3%. Method 1's 500 steps stay, since 250
lost 1.4 points (75.7% -> 74.3%)."""


def universal_dictionary(ctx: TransferContext
                         ) -> tuple[SparseAutoencoder, torch.Tensor, torch.Tensor]:
    """Method 8's shared SAE over ``[A's features / std, B's features / std]`` on paired images.

    Returns the SAE and the two models' raw features ``(n, d_A)``, ``(n, d_B)``.
    """
    images, _ = paired_images(ctx)
    fa = features(ctx.recipient, images, first_fc_hook(ctx.recipient))
    fb = features(ctx.donor, images, first_fc_hook(ctx.donor))
    joint = torch.cat([fa / fa.std(0).clamp_min(1e-6), fb / fb.std(0).clamp_min(1e-6)], dim=1)
    return cached_sae(joint, UNIVERSAL_SAE, seed=ctx.seed), fa, fb


@register("universal_concepts", title="Universal architecture-agnostic concepts",
          kind="sae-free", changes="module", number=8)
def universal_concepts(ctx: TransferContext) -> nn.Module:
    """One TopK dictionary over both models' (standardised) features; A reaches it linearly."""
    hook_a, hook_b = first_fc_hook(ctx.recipient), first_fc_hook(ctx.donor)
    sae, fa, fb = universal_dictionary(ctx)
    sa, sb = fa.std(0).clamp_min(1e-6), fb.std(0).clamp_min(1e-6)
    joint = torch.cat([fa / sa, fb / sb], dim=1)
    with torch.no_grad():
        codes = sae.encode(joint)
    enc_w, enc_b = ridge_map(fa, codes)  # A alone predicts the shared code
    d_a = fa.shape[1]
    dec_w = sae.W_dec.detach()[d_a:].T * sb  # the B half of the shared dictionary
    dec_b = sae.b_dec.detach()[d_a:] * sb
    mapper = Affine(enc_w @ dec_w, enc_b @ dec_w + dec_b)
    scorer = DonorScore(ctx.recipient, hook_a, ctx.donor, hook_b, mapper, ctx.protocol.concept,
                        ctx.protocol.donor_digits)
    return override_concept(ctx, scorer)


def continual_steps(ctx: TransferContext, concepts: tuple[int, ...] | None = None
                    ) -> list[nn.Module]:
    """Add concepts one at a time; return the model after each step.

    Step ``i`` calibrates its threshold on the calibration negatives of the concepts learned
    so far (the calibration carve's images of every other known digit, the specificity digit
    always excluded), so it knows nothing of concepts that come later.
    """
    concepts = concepts or (ctx.protocol.concept, _extra_concept(ctx))
    model: nn.Module = ctx.recipient
    steps = []
    for i, concept in enumerate(concepts):
        model = override_concept(ctx, sae_map_scorer(ctx, concept=concept), concept=concept,
                                 recipient=model,
                                 negatives=ctx.calibration_negatives(concepts[: i + 1]))
        steps.append(model)
    return steps


@register("continual_concept_learning", title="Continual concept learning", kind="sae-free",
          changes="module", number=9, teaches_specificity=True)
def continual_concept_learning(ctx: TransferContext) -> nn.Module:
    """Add the concept, then the specificity digit, as two successive transfers."""
    return continual_steps(ctx)[-1]
