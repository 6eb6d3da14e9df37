"""Baselines that take gradient steps on the recipient, or retrain it: the strong and the
oracle references for every surgery method.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mechinterp.config import seed_everything
from mechinterp.models import build_model
from mechinterp.train import TrainConfig, fit
from mechinterp.transfer.context import TransferContext
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
