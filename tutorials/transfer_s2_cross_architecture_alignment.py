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
study = method_study("cross_architecture_alignment")

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
    neural = edited.scorer.mapper(fa)


def explained(pred, target):
    return 1 - (target - pred).pow(2).sum().item() / (target - target.mean(0)).pow(2).sum().item()


ev_linear, ev_neural = explained(linear, fb), explained(neural, fb)
print(f"variance of B's features explained on test images: linear map {ev_linear:.3f}, "
      f"aligner {ev_neural:.3f}")

# %% [markdown]
# ## What the edited recipient answers

# %%
fig = study.prediction_figure(seed=0)
plt.show()

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
seed = SEED_RESULTS["cross_architecture_alignment"]
assert cross is not None
for s in summary.values():
    assert s["transfer_mean"] > seed["transfer"]  # the seed project's 42.2%
    assert s["specificity_mean"] < seed["specificity"]  # and its 5.1%
    assert s["preservation_mean"] > s["baseline_preservation_mean"] - 0.015
assert ev_neural > 0.5 and ev_linear > 0.5

record = study.write_record(started)
print(f"result record written to {record}")
