# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # SAE-free method 1: precomputed vector space alignment
#
# The seed project's first SAE-free idea: do all the work with sparse autoencoders offline,
# precompute what is needed, and leave the recipient to run without them. This page also
# introduces the mechanism the nine SAE-free methods share.
#
# 1. A TopK SAE (Gao et al., 2024; the dictionary idea from Bricken et al., "Towards
#    Monosemanticity", 2023) is trained on A's first fully connected layer and another on B's,
#    both over the same images: A's digits and the concept images of the budget (no method is
#    handed an image of the specificity digit).
# 2. A ridge regression maps A's *linear* SAE encoding (the pre-activations, before the TopK
#    selection) to B's sparse codes, fit on the same images passed through both models.
# 3. B's decoder turns predicted codes into B's first-layer features; B's upper layers score
#    the concept against B's other digits. The protocol's open-set gate subtracts A's evidence
#    for its own best digit, and the concept wins in A where the result passes a threshold
#    that lets through at most 0.5% of the calibration negatives (images of the other digits A
#    or B knows, the specificity digit excluded, from a carve of the training split that
#    neither network was trained on).
#
# Steps 2 and 3 are linear from A's features to B's, so encoder, map and decoder **fold** into
# two precomputed matrices (a low-rank affine map). No SAE encode runs at inference.

# %%
import time

import matplotlib.pyplot as plt
import torch

from mechinterp.reporting import show_markdown
from mechinterp.sae import SparseAutoencoder
from mechinterp.transfer import (
    SEED_RESULTS,
    TransferContext,
    apply_method,
    model_pair,
)
from mechinterp.transfer.common import (
    features,
)
from mechinterp.transfer.methods import sae_free
from mechinterp.transfer.report import method_study

started = time.perf_counter()

# %% [markdown]
# ## Numbers
#
# Same [protocol](../../transfer/protocol/) as every transfer method: A knows 0-3, B knows
# 2-5, the concept is 4, the specificity digit is 5. Both leaderboard pairs (MegaNN receives
# from MegaNN; WideNN receives from DeepNN), every seed of the profile; mean and, in brackets,
# standard deviation over seeds.

# %%
study = method_study("precomputed_vector_alignment")

# %% [markdown]
# The seed project reported its version of this method on a same-architecture pair, with its
# own models and splits; its numbers are in the last column. Here is how ours compare, with
# fine-tuning (which never saw a 5 either) for the specificity.

# %%
summary, same, cross = study.summary, study.same, study.cross
seed = SEED_RESULTS["precomputed_vector_alignment"]
finetune = method_study("finetune_with_budget", show=False).summary


def pct(key, rows=summary):
    return " and ".join(f"{rows[name][key]:.1%}" for name in summary)


lost = max(s["baseline_preservation_mean"] - s["preservation_mean"] for s in summary.values())
above = all(s["transfer_mean"] > seed["transfer"] for s in summary.values())
spec_below = all(s["specificity_mean"] < seed["specificity"] for s in summary.values())
pres_above = all(s["preservation_mean"] >= seed["preservation"] for s in summary.values())
show_markdown(
    f"On the two pairs ({' and '.join(summary)}) method 1 recognises {pct('transfer_mean')} of "
    f"the 4s, {'above' if above else 'not above'} the {seed['transfer']:.1%} the seed project "
    f"reported. It loses at most {100 * lost:.1f} points of accuracy on A's own digits and calls "
    f"{pct('specificity_mean')} of the 5s 4s, far fewer than fine-tuning "
    f"({pct('specificity_mean', finetune)})."
    + ("" if spec_below and pres_above else
       " It does not reach the seed project's "
       + " or its ".join(x for x, miss in [
           (f"specificity of {seed['specificity']:.1%}", not spec_below),
           (f"preservation of {seed['preservation']:.1%} (our A alone preserves "
            + pct("baseline_preservation_mean") + ")", not pres_above)] if miss)
       + ". Part of the gap is the protocol: the threshold is set on images neither network "
       "was trained on, and the 5s are never calibration negatives, so nothing sets the bar "
       "against them directly; the seed project's numbers also come from its own models "
       "and splits."))

# %% [markdown]
# ## Does the folded map compute the SAE path?
#
# The folded map must equal the step-by-step path through both SAEs' parameters (linear
# encoding, code map, decoder). Here both run on A's first-layer features of the test images.

# %%
pair = model_pair("megann", "megann", seed=0)
ctx = TransferContext(pair, seed=0)
code_map = sae_free.fit_code_map(ctx)
feats = features(pair.recipient.model, pair.data.test_images, code_map.hook_a)
with torch.no_grad():
    folded = code_map.folded()(feats)
stepwise = code_map.through_saes(feats)
fold_gap = (folded - stepwise).abs().max().item()
n_folded = sum(p.numel() for p in code_map.folded().parameters()) + sum(
    b.numel() for b in code_map.folded().buffers())
n_saes = sum(p.numel() for p in code_map.sae_a.parameters()) + sum(
    p.numel() for p in code_map.sae_b.parameters())
print(f"largest difference between folded and step-by-step outputs: {fold_gap:.2e}")
print(f"numbers stored by the folded map: {n_folded:,}; by the two SAEs and the code map: "
      f"{n_saes + code_map.code_w.numel():,}")
edited, _ = apply_method("precomputed_vector_alignment", pair)
has_sae = any(isinstance(m, SparseAutoencoder) for m in edited.modules())
print(f"the edited recipient contains an SAE module: {has_sae}")

# %% [markdown]
# The difference is rounding error: folding changes nothing about what is computed. What it
# saves at inference is measured in `benchmarks/bench_sae_free.py` against the same map run
# with the SAEs in the loop (TopK encode, map, decode).
#
# ## What the edited recipient answers

# %%
fig = study.prediction_figure(seed=0)
plt.show()

# %% [markdown]
# ## Checks and record

# %%
assert fold_gap < 1e-3 and not has_sae
for name, s in summary.items():
    assert s["transfer_mean"] > seed["transfer"]  # above the seed project's 56.1%
    # far fewer 5s called 4 than after fine-tuning
    assert s["specificity_mean"] < finetune[name]["specificity_mean"] / 2
    # preservation stays within 1.5 points of the unedited recipient
    assert s["preservation_mean"] > s["baseline_preservation_mean"] - 0.015

record = study.write_record(started)
print(f"result record written to {record}")
