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
# # Method 12: aligned spatial transfer
#
# The seed project's best method aligned the two models' concept spaces and then placed the
# concept relative to anchor digits (2 and 3) in the aligned space. This implementation keeps
# the principle, alignment first, and moves it to where it works best: the **first** fully
# connected layer.
#
# 1. A ridge-regression **stitch** (Lenc & Vedaldi 2015; Bansal et al. 2021) maps A's first
#    hidden layer onto B's, fit on A's own images and the donor images passed through both.
#    Early layers of networks trained on the same kind of data are close to linearly related,
#    and they still carry what an image looks like, whether or not the network was trained on
#    its digit.
# 2. B's remaining layers run on the stitched features. They place the concept relative to the
#    shared digits exactly as B does, which is the "spatial relationship" the seed project
#    reconstructed by hand.
# 3. The concept wins in A when B's concept logit beats B's other known digits by a margin
#    calibrated on non-concept training images to at most 0.5% false positives, a cap fixed in
#    advance from the protocol's half-point preservation budget.
#
# It adds a module to A and takes no gradient step on A's weights.

# %%
import time

import matplotlib.pyplot as plt

from mechinterp.transfer.report import method_study

started = time.perf_counter()

# %% [markdown]
# ## Numbers
#
# The [protocol](../../transfer/protocol/) is fixed: recipient A knows digits 0-3, donor B
# knows 2-5, the concept is 4 and the specificity digit is 5. The method runs on the
# same-architecture pair (MegaNN receives from MegaNN) and, when it can, on the
# cross-architecture pair (WideNN receives from DeepNN), once per seed of the profile; the
# table gives the mean and, in brackets, the standard deviation over seeds, next to the
# number the seed project reported for its version of the method.

# %%
study = method_study("aligned_spatial")

# %% [markdown]
# ## What the edited recipient answers
#
# Each row is a true digit, each column an answer; the dashed lines mark the concept. Before
# the edit, A sends every 4 somewhere in 0-3; a working transfer fills the concept column's
# 4 row without spilling into the other rows.

# %%
fig = study.prediction_figure(seed=0)
plt.show()

# %% [markdown]
# Almost every 4 is now recognised, on the same-architecture and on the cross-architecture
# pair, while A's own digits keep their accuracy and few 5s are taken for 4s: B's upper layers
# know the difference between 4 and 5, and the stitch lets them see A's view of the image.
# The [leaderboard](../transfer_leaderboard/) compares it with everything else.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
for s in summary.values():
    assert s["transfer_mean"] > 0.874  # the seed project's best transfer
    assert s["preservation_mean"] > s["baseline_preservation_mean"] - 0.01
    assert s["specificity_mean"] < 0.1
assert cross is not None and cross["preservation_mean"] > 0.972

record = study.write_record(started)
print(f"result record written to {record}")
