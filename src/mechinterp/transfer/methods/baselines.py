"""Baselines every transfer method is read against.

* ``finetune_with_budget`` and ``oracle_retrain`` take gradient steps on the recipient, or
  retrain it: the strong and the oracle references for every surgery method.
* ``donor_ensemble`` and ``donor_readout`` bracket what a method imports from the donor: the
  first runs all of B beside A (the ceiling for any method that runs B at inference), the
  second reads one row of B's output layer off a linear stitch of A (the smallest import
  that can work).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mechinterp.config import seed_everything
from mechinterp.models import build_model
from mechinterp.train import TrainConfig, fit
from mechinterp.transfer.common import (
    Affine,
    features,
    override_concept,
    penultimate_hook,
    ridge_map,
)
from mechinterp.transfer.context import TransferContext
from mechinterp.transfer.methods.aligned import paired_images
from mechinterp.transfer.registry import register


@register("finetune_with_budget", title="Fine-tuning with the concept budget (strong baseline)",
          kind="baseline", changes="gradient", number=1)
def finetune_with_budget(ctx: TransferContext, epochs: int = 5, lr: float = 5e-4,
                         preservation_weight: float = 1.0) -> nn.Module:
    """Fine-tune A on its own images plus the budgeted concept images.

    The loss is cross-entropy on both, plus a preservation term: the KL divergence from the
    original A's predictions on its own images.
    """
    own_images, own_labels = ctx.own_data()
    concept_images, concept_labels = ctx.donor_data([ctx.protocol.concept])
    images = torch.cat([own_images, concept_images])
    labels = torch.cat([own_labels, concept_labels])
    is_own = torch.cat([torch.ones(len(own_labels)), torch.zeros(len(concept_labels))]).bool()
    with torch.no_grad():
        reference = F.log_softmax(ctx.original(images), -1)
    model = ctx.recipient
    generator = seed_everything(ctx.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(len(labels), generator=generator).to(images.device)
            for i in range(0, len(order), 64):
                idx = order[i: i + 64]
                log_probs = F.log_softmax(model(images[idx]), -1)
                loss = F.nll_loss(log_probs, labels[idx])
                own = is_own[idx.cpu()].to(images.device)
                if own.any():
                    kl = F.kl_div(log_probs[own], reference[idx][own], log_target=True,
                                  reduction="batchmean")
                    loss = loss + preservation_weight * kl
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    return model.eval()


@register("oracle_retrain", title="Oracle: A retrained on its digits plus the concept",
          kind="baseline", changes="gradient", number=2)
def oracle_retrain(ctx: TransferContext) -> nn.Module:
    """Train A's architecture from scratch on the recipient's digits and the concept."""
    own_images, own_labels = ctx.own_data()
    concept_images, concept_labels = ctx.donor_data([ctx.protocol.concept])
    generator = seed_everything(ctx.seed)
    model = build_model(ctx.recipient.arch).to(ctx.device)
    config = TrainConfig.from_profile()
    fit(model, torch.cat([own_images, concept_images]), torch.cat([own_labels, concept_labels]),
        config, generator, desc="oracle")
    return model.eval()


class _DonorMargin(nn.Module):
    """B's own concept score on the raw image: ``z_c - max_{d != c} z_d`` over donor digits."""

    def __init__(self, donor: nn.Module, concept: int, donor_digits: tuple[int, ...]) -> None:
        super().__init__()
        self.donor, self.concept = donor, concept
        self.others = [d for d in donor_digits if d != concept]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.donor(x)
        return logits[:, self.concept] - logits[:, self.others].max(1).values


@register("donor_ensemble", title="Donor ensemble: A plus B's own concept score (ceiling)",
          kind="baseline", changes="module", number=3)
def donor_ensemble(ctx: TransferContext) -> nn.Module:
    """Run B on the image and let its concept margin override A, calibrated like every
    method: the ceiling for any method that runs B inside the edited model."""
    scorer = _DonorMargin(ctx.donor, ctx.protocol.concept, ctx.protocol.donor_digits)
    return override_concept(ctx, scorer)


class _RowReadout(nn.Module):
    """One row of B's output layer (a view of B's own weights) read from a linear stitch of
    A's last hidden layer: ``w_c . relu(a W + b) + b_c``."""

    def __init__(self, recipient, hook: str, stitch: Affine, row: torch.Tensor,
                 bias: torch.Tensor) -> None:
        super().__init__()
        self.recipient, self.hook, self.stitch = recipient, hook, stitch
        self.register_buffer("row", row)
        self.register_buffer("row_bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, cache = self.recipient.run_with_cache(x, names_filter=self.hook)
        return self.stitch(cache[self.hook].flatten(1)).clamp_min(0) @ self.row + self.row_bias


@register("donor_readout", title="Donor readout: B's concept row on a stitch of A (smallest "
          "import)", kind="baseline", changes="module", number=4)
def donor_readout(ctx: TransferContext, ridge: float = 1e-2) -> nn.Module:
    """Map A's last hidden layer onto B's by ridge regression and read B's concept output row
    from it: the smallest import from B that can work (one row of B's weights)."""
    hook_a, hook_b = penultimate_hook(ctx.recipient), penultimate_hook(ctx.donor)
    images, _ = paired_images(ctx)
    weight, bias = ridge_map(features(ctx.recipient, images, hook_a),
                             features(ctx.donor, images, hook_b), ridge)
    out = ctx.donor.output_layer
    concept = ctx.protocol.concept
    scorer = _RowReadout(ctx.recipient, hook_a, Affine(weight, bias), out.weight[concept],
                         out.bias[concept:concept + 1])
    return override_concept(ctx, scorer)
