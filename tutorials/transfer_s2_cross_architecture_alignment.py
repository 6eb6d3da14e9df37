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
# # SAE-free method 2: cross-architecture neural alignment
#
# Method 1 maps code spaces with a linear ridge fit. Here a small network (one hidden ReLU
# layer, as wide as the larger code space) learns the map from A's linear SAE encoding to B's
# sparse codes, so the alignment can bend where the two models carve up the images differently,
# which matters most between different architectures.

# The family shares one mechanism (see the [SAE-free overview](../transfer_s1_precomputed_vector_alignment/)):
# TopK sparse autoencoders (Gao et al., 2024) on the first fully connected layer of each model,
# a map between their code spaces fit on images passed through both, and B's upper layers
# judging the mapped features. After fitting, the encoder, map and decoder fold into plain
# matrices, so the edited recipient runs **without any SAE**.
#
# The encoder folds into the aligner's first layer and B's decoder into its last, so what runs
# at inference is a two-layer network between A's and B's features, without SAEs.

# %%
import time

import matplotlib.pyplot as plt
import torch

from mechinterp.reporting import show_markdown
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
from mechinterp.transfer.methods.aligned import DonorScore
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
study = method_study("cross_architecture_alignment")

# %% [markdown]
# The seed project reported its version on a cross-architecture pair, with its own models and
# splits (last column). Ours against it, against method 1 (the same SAEs with a linear map)
# and, for the specificity, against fine-tuning, which never saw a 5 either:

# %%
summary, same, cross = study.summary, study.same, study.cross
seed = SEED_RESULTS["cross_architecture_alignment"]
method1 = method_study("precomputed_vector_alignment", show=False).summary
finetune = method_study("finetune_with_budget", show=False).summary


def pct(key, rows=summary):
    return " and ".join(f"{rows[name][key]:.1%}" for name in summary)


lost = max(s["baseline_preservation_mean"] - s["preservation_mean"] for s in summary.values())
spec_note = (f"below its {seed['specificity']:.1%}."
             if cross["specificity_mean"] < seed["specificity"] else
             f"above its {seed['specificity']:.1%}: the threshold is now set on images neither "
             "network was trained on and the 5s are never calibration negatives, and the seed "
             "project's numbers come from its own models and splits.")
pres_note = ("" if cross["baseline_preservation_mean"] >= seed["preservation"] else
             f" Preservation cannot reach the seed project's {seed['preservation']:.1%}: our "
             f"unedited A preserves only {pct('baseline_preservation_mean')}.")
show_markdown(
    f"On the two pairs ({' and '.join(summary)}) the aligner recognises {pct('transfer_mean')} "
    f"of the 4s, against {pct('transfer_mean', method1)} for method 1's linear map and the "
    f"seed project's {seed['transfer']:.1%}. It loses at most {100 * lost:.1f} points of "
    f"accuracy on A's own digits and calls {pct('specificity_mean')} of the 5s 4s (fine-tuning: "
    f"{pct('specificity_mean', finetune)}). On the cross-architecture pair, the kind the seed "
    f"project reported, that is {spec_note}{pres_note}")

# %% [markdown]
# ## The aligner against the linear map
#
# The same SAEs, the same images: how much of B's code variance does each map explain on the
# test images? (Seed 0, WideNN receiving from DeepNN.)

# %%
pair = model_pair("widenn", "deepnn", seed=0)
ctx = TransferContext(pair, seed=0)
code_map = sae_free.fit_code_map(ctx)
edited, _ = apply_method("cross_architecture_alignment", pair)
test = pair.data.test_images
fa = features(pair.recipient.model, test, code_map.hook_a)
fb = features(pair.donor.model, test, code_map.hook_b)
with torch.no_grad():
    linear = code_map.folded()(fa)
    # the aligner inside the edited model's detector (behind the gate)
    neural = next(m for m in edited.modules() if isinstance(m, DonorScore)).mapper(fa)


def explained(pred, target):
    return 1 - (target - pred).pow(2).sum().item() / (target - target.mean(0)).pow(2).sum().item()


ev_linear, ev_neural = explained(linear, fb), explained(neural, fb)
print(f"variance of B's features explained on test images: linear map {ev_linear:.3f}, "
      f"aligner {ev_neural:.3f}")
gain = cross["transfer_mean"] - method1[cross["pair"]]["transfer_mean"]
show_markdown(
    f"Both maps reproduce most of B's first-layer features on this seed ({ev_linear:.1%} of the "
    f"variance for the linear map, {ev_neural:.1%} for the aligner). "
    + (f"The aligner's {100 * gain:.1f}-point gain in transfer on this pair (mean over seeds) "
       "does not come from reproducing more of B's features overall."
       if gain > 0 and ev_neural <= ev_linear else
       f"The aligner's transfer on this pair differs from method 1's by {100 * gain:+.1f} "
       "points (mean over seeds)."))

# %% [markdown]
# ## What the edited recipient answers

# %%
fig = study.prediction_figure(seed=0)
plt.show()

# %% [markdown]
# ## Checks and record

# %%
assert cross is not None
for name, s in summary.items():
    assert s["transfer_mean"] > seed["transfer"]  # above the seed project's 42.2%
    assert s["specificity_mean"] < finetune[name]["specificity_mean"] / 2  # far below fine-tuning
    assert s["preservation_mean"] > s["baseline_preservation_mean"] - 0.015
assert ev_neural > 0.5 and ev_linear > 0.5  # both maps reproduce most of B's features

record = study.write_record(started)
print(f"result record written to {record}")
