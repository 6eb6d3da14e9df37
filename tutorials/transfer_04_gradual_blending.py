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
# # Method 4: gradual blending
#
# Instead of copying a few units outright, every unit of every hidden layer is moved towards B
# in proportion to its importance for the concept: importance is the concept row's weight
# magnitude for the last hidden layer, pushed back through the absolute weights for earlier
# layers (a path-strength score). The most important unit becomes B's; unimportant ones stay
# A's; the rest are interpolated. The concept row is copied.

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
study = method_study("gradual_blending")

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
# Blending does make 4s appear, but it moves so many weights part-way that A's own computation
# breaks: preservation collapses. Interpolating between two networks that do not share
# coordinates produces a network that is neither.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
assert same["transfer_mean"] > 0.1
assert same["preservation_mean"] < same["baseline_preservation_mean"] - 0.2

record = study.write_record(started)
print(f"result record written to {record}")
