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
# # Method 3: importance-based neuron copy
#
# Copying the row alone failed because the row's inputs mean different things in A. This
# method also copies the inputs: the eight units of B's last hidden layer with the largest
# weights into the concept row have their incoming weights and biases copied into A at the
# same positions, together with the row.
#
# Those units now compute in A what they computed in B, if their own inputs meant the same
# thing, which, one layer further down, they again do not.

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
study = method_study("importance_neuron_copy")

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
# Transfer stays at zero: the copied units read A's previous layer with B's weights, so they
# no longer detect what they detected in B. Weight magnitude picks units that matter in B, not
# units that can work inside A.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
assert same["transfer_mean"] < 0.05
assert same["preservation_mean"] > same["baseline_preservation_mean"] - 0.03

record = study.write_record(started)
print(f"result record written to {record}")
