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
# # Method 2: Procrustes + linear probe transport
#
# This method follows the recipe of representation-surgery papers: learn what the concept
# looks like in the donor, then carry that knowledge into the recipient's coordinates.
#
# 1. A logistic-regression **probe** on B's last hidden layer separates 4 from the other donor
#    digits (this is where the method consumes concept images).
# 2. The two last hidden layers are **aligned** on images both models know, the shared digits
#    2 and 3 from A's own data: an orthogonal Procrustes rotation when the layers have the
#    same width, a ridge-regression map otherwise (so it handles any pair).
# 3. The probe is carried through the map and written into A's concept row, scaled and offset
#    so that it fires on at most 1% of A's own training images.
#
# The alignment is fit on two digits only, and A's last layer was trained to separate 0-3:
# nothing guarantees that what distinguishes a 4 in B survives in A's last layer at all.

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
study = method_study("procrustes_probe")

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
# Some 4s are caught, far from all. The last hidden layer of a network trained on 0-3 has
# little room for a digit it never saw, and a map fit on 2s and 3s extrapolates poorly to 4s.
# Later methods either align earlier layers or let B's own layers do the judging.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
for s in summary.values():
    assert s["transfer_mean"] < 0.6
    assert s["preservation_mean"] > s["baseline_preservation_mean"] - 0.05

record = study.write_record(started)
print(f"result record written to {record}")
