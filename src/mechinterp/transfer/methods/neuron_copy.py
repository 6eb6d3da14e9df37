"""Methods 3-7: weight surgery that copies or blends units from the donor into the recipient.

All five need the same architecture on both sides (units are matched by position) and work
on the fully connected layers. They differ in how they choose units:

3. importance-based neuron copy: the last hidden layer's units with the largest weights into
   the concept's output row;
4. gradual blending: every unit is interpolated towards the donor by its importance;
5. pathway transplant: the most important units of every layer, importance pushed back from
   the concept row through the weights;
6. activation-based selection: units whose *activation* in the donor is most specific to the
   concept, measured on donor images;
7. cascade transplant: from the concept row backwards, each chosen unit recruits its
   strongest inputs in the layer below (24, then 6, 4 and 3 per unit, as the seed project
   describes).

Every variant also copies the donor's concept output row.
"""

from __future__ import annotations

import torch
from torch import nn

from mechinterp.ablation import per_unit
from mechinterp.transfer.common import copy_units, importance_by_layer, set_concept_row
from mechinterp.transfer.context import TransferContext
from mechinterp.transfer.registry import register

__all__ = ["fc_layers"]


def fc_layers(model) -> list[str]:
    """Names of the hidden fully connected layers, input side first."""
    return [h.rsplit(".", 1)[0] for h in model.hidden_hooks if h.startswith("fc")]


def _copy_row(ctx: TransferContext) -> None:
    c = ctx.protocol.concept
    out = ctx.donor.output_layer
    set_concept_row(ctx.recipient, c, out.weight[c].detach().clone(), out.bias[c].detach().clone())


@register("importance_neuron_copy", title="Importance-based neuron copy", kind="surgery",
          changes="weights", number=3, requires="same-architecture")
def importance_neuron_copy(ctx: TransferContext, top_k: int = 8) -> nn.Module:
    """Copy the ``top_k`` last-layer units that B's concept row weights most, plus the row."""
    layer = fc_layers(ctx.donor)[-1]
    importance = ctx.donor.output_layer.weight[ctx.protocol.concept].abs()
    copy_units(ctx.recipient, ctx.donor, layer, importance.argsort(descending=True)[:top_k])
    _copy_row(ctx)
    return ctx.recipient


@register("gradual_blending", title="Gradual blending", kind="surgery", changes="weights", number=4,
          requires="same-architecture")
def gradual_blending(ctx: TransferContext) -> nn.Module:
    """Move every unit's incoming weights towards B's by its normalised importance."""
    scores = importance_by_layer(ctx.donor, ctx.protocol.concept)
    with torch.no_grad():
        for layer, score in scores.items():
            ratio = (score / score.max().clamp_min(1e-12)).unsqueeze(1)
            a, b = ctx.recipient.get_submodule(layer), ctx.donor.get_submodule(layer)
            a.weight.copy_((1 - ratio) * a.weight + ratio * b.weight)
            a.bias.copy_((1 - ratio[:, 0]) * a.bias + ratio[:, 0] * b.bias)
    _copy_row(ctx)
    return ctx.recipient


@register("pathway_transplant", title="Pathway transplant", kind="surgery", changes="weights", number=5,
          requires="same-architecture")
def pathway_transplant(ctx: TransferContext, share: float = 0.1) -> nn.Module:
    """Copy the top ``share`` of units of every layer by weight-path importance."""
    for layer, score in importance_by_layer(ctx.donor, ctx.protocol.concept).items():
        k = max(1, int(share * len(score)))
        copy_units(ctx.recipient, ctx.donor, layer, score.argsort(descending=True)[:k])
    _copy_row(ctx)
    return ctx.recipient


@register("activation_selection", title="Activation-based selection", kind="surgery",
          changes="weights", number=6, requires="same-architecture")
def activation_selection(ctx: TransferContext, share: float = 0.1) -> nn.Module:
    """Copy the top ``share`` of units per layer by how much more they fire on the concept."""
    images, labels = ctx.donor_data()
    concept = labels == ctx.protocol.concept
    hooks = [f"{layer}.hook_post" for layer in fc_layers(ctx.donor)]
    _, cache = ctx.donor.run_with_cache(images, names_filter=lambda n: n in hooks)
    for hook in hooks:
        act = per_unit(cache[hook])
        selectivity = act[concept].mean(0) - act[~concept].mean(0)
        k = max(1, int(share * len(selectivity)))
        copy_units(ctx.recipient, ctx.donor, hook.rsplit(".", 1)[0],
                   selectivity.argsort(descending=True)[:k])
    _copy_row(ctx)
    return ctx.recipient


@register("cascade_transplant", title="Cascade transplant", kind="surgery", changes="weights", number=7,
          requires="same-architecture")
def cascade_transplant(ctx: TransferContext, fan_in: tuple[int, ...] = (24, 6, 4, 3)
                       ) -> nn.Module:
    """Follow the concept row backwards, recruiting each unit's strongest inputs, and copy.

    ``fan_in[0]`` units of the last hidden layer are chosen by ``|w_out[concept]|``; each
    chosen unit then recruits its ``fan_in[i]`` strongest inputs in the layer below (the last
    value repeats for deeper networks). The incoming weights of every chosen unit are copied.
    """
    layers = fc_layers(ctx.donor)
    weights = ctx.donor.output_layer.weight[ctx.protocol.concept].abs()
    chosen = weights.argsort(descending=True)[: fan_in[0]]
    for depth, layer in enumerate(reversed(layers)):
        copy_units(ctx.recipient, ctx.donor, layer, chosen)
        if depth + 1 >= len(layers):
            break
        per_unit_k = fan_in[min(depth + 1, len(fan_in) - 1)]
        incoming = ctx.donor.get_submodule(layer).weight.abs()[chosen]
        chosen = torch.unique(incoming.argsort(dim=1, descending=True)[:, :per_unit_k])
    _copy_row(ctx)
    return ctx.recipient
