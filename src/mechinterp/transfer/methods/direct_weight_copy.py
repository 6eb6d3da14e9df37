"""Method 1, direct weight copy: the donor's concept output row pasted into the recipient."""

from __future__ import annotations

from torch import nn

from mechinterp.transfer.common import set_concept_row
from mechinterp.transfer.context import TransferContext
from mechinterp.transfer.registry import register


@register("direct_weight_copy", title="Direct weight copy (trivial baseline)", kind="surgery",
          changes="weights", requires="same-architecture", number=1)
def direct_weight_copy(ctx: TransferContext) -> nn.Module:
    """Copy B's output-layer row (weights and bias) for the concept into A.

    The row reads B's last hidden layer, but in A it reads A's units at the same positions,
    which encode different things: this is the trivial baseline, expected to transfer nothing.
    """
    concept = ctx.protocol.concept
    donor_row = ctx.donor.output_layer
    set_concept_row(ctx.recipient, concept, donor_row.weight[concept].detach().clone(),
                    donor_row.bias[concept].detach().clone())
    return ctx.recipient
