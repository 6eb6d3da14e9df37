"""Method 2, Procrustes + linear probe transport (any architecture pair)."""

from __future__ import annotations

import torch
from torch import nn

from mechinterp.transfer.common import (
    calibrate_threshold,
    features,
    logistic_probe,
    orthogonal_procrustes,
    penultimate_hook,
    ridge_map,
    set_concept_row,
)
from mechinterp.transfer.context import TransferContext
from mechinterp.transfer.registry import register


def transported_probe(ctx: TransferContext) -> tuple[torch.Tensor, torch.Tensor]:
    """A concept probe trained in B's feature space and carried into A's by an alignment.

    1. Fit a logistic probe for "concept vs. other donor digits" on B's last hidden layer,
       using donor images (this is where concept images are consumed). With no concept
       image (a budget of 0), the probe is B's own readout instead: its concept output row
       minus the mean of its other digits' rows.
    2. Align the two last hidden layers on images both models know (the shared digits, from
       A's own data): an orthogonal Procrustes rotation when the widths match, a ridge
       regression map otherwise.
    3. Carry the probe through the map: ``w_A = M @ w_B`` (plus the matching bias).

    Returns:
        ``(w, b)``: a probe on A's last hidden layer.
    """
    p = ctx.protocol
    hook_a, hook_b = penultimate_hook(ctx.recipient), penultimate_hook(ctx.donor)
    images, labels = ctx.donor_data()
    positive = labels == p.concept
    if positive.any():
        w_b, b_b = logistic_probe(features(ctx.donor, images, hook_b), positive)
    else:  # no concept image to fit on (a budget of 0): B's own readout of the concept
        out = ctx.donor.output_layer
        others = [d for d in p.donor_digits if d != p.concept]
        with torch.no_grad():
            w_b = out.weight[p.concept] - out.weight[others].mean(0)
            b_b = out.bias[p.concept] - out.bias[others].mean()
    own_images, own_labels = ctx.own_data()
    shared = torch.isin(own_labels, torch.tensor(p.shared_digits, device=own_labels.device))
    xa = features(ctx.recipient, own_images[shared], hook_a)
    xb = features(ctx.donor, own_images[shared], hook_b)
    if xa.shape[1] == xb.shape[1]:
        ma, mb = xa.mean(0), xb.mean(0)
        rotation = orthogonal_procrustes(xa - ma, xb - mb)  # x_a R ~ x_b
        w_a = rotation @ w_b
        b_a = b_b + (mb - ma @ rotation) @ w_b
    else:
        m, c = ridge_map(xa, xb)  # x_b ~ x_a m + c
        w_a = m @ w_b
        b_a = b_b + c @ w_b
    return w_a, b_a


@register("procrustes_probe", title="Procrustes + linear probe transport", kind="surgery",
          changes="weights", number=2)
def procrustes_probe(ctx: TransferContext) -> nn.Module:
    """Write a donor probe, carried into A's feature space, into A's concept output row.

    The row's scale and bias are set so that the concept logit beats A's other logits on at
    most the protocol's share of the calibration negatives (the one rule every method uses;
    no concept image is involved). The row is a linear logit, so the protocol's gate does not
    apply to it.
    """
    concept = ctx.protocol.concept
    w, b = transported_probe(ctx)
    negatives = ctx.calibration_negatives()
    feats = features(ctx.recipient, negatives, penultimate_hook(ctx.recipient))
    with torch.no_grad():
        logits = ctx.recipient(negatives)
        logits[:, concept] = float("-inf")
        best_other = logits.max(1).values
    score = feats @ w + b
    scale = best_other.std() / score.std().clamp_min(1e-6)
    margin = calibrate_threshold(scale * score - best_other)
    set_concept_row(ctx.recipient, concept, scale * w, scale * b - margin)
    return ctx.recipient
