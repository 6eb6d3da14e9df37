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
# # Method 5: pathway transplant
#
# The pathway transplant copies whole units, layer by layer: in every hidden layer the top 10%
# of units by the path-strength importance of method 4 get B's incoming weights and biases,
# and the concept row is copied. The hope is that copying a complete pathway keeps its parts
# consistent with each other.

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
study = method_study("pathway_transplant")

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
# Copying 10% of each layer keeps A's computation mostly intact, but the copied pathway is
# still fed by A's units in the other 90% and does not reproduce B's response to a 4. Selecting
# by weight analysis alone does not find a pathway that can run inside A.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
assert same["transfer_mean"] < 0.1
assert same["preservation_mean"] > same["baseline_preservation_mean"] - 0.05

record = study.write_record(started)
print(f"result record written to {record}")
