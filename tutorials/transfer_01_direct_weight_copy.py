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
# # Method 1: direct weight copy
#
# The simplest possible surgery: B's output-layer row for digit 4 (its weights and bias) is
# pasted into A's output layer. It is the project's **trivial baseline** and the first method of
# the seed project.
#
# It should fail, and the reason is the point of every later method: the row is a readout of
# B's last hidden layer, but in A it reads A's units at the same positions, and unit 17 of A
# has nothing to do with unit 17 of B. Two networks trained from different seeds on different
# digits share no coordinate system.

# %%
import time

import matplotlib.pyplot as plt

from mechinterp.reporting import show_markdown
from mechinterp.transfer.report import method_study

started = time.perf_counter()

# %% [markdown]
# ## Numbers
#
# The [protocol](../../transfer/protocol/) is fixed: recipient A knows digits 0-3, donor B
# knows 2-5, the concept is 4 and the specificity digit is 5, whose images no method sees.
# Both networks are trained on the training split less two carves that neither of them ever
# sees: a validation split (10%), where methods are compared, and a calibration split (20%).
# Any threshold a method sets lets through at most 0.5% of the calibration split's images of
# the digits A or B knows other than 4 and 5. The method runs on the same-architecture pair
# (MegaNN receives from MegaNN) and, when it can, on the cross-architecture pair (WideNN
# receives from DeepNN), once per seed of the profile; the table gives the test-split mean
# and, in brackets, the standard deviation over seeds, next to the numbers the seed project
# reported for its version of the method on its own models and splits.

# %%
study = method_study("direct_weight_copy")

# %% [markdown]
# ## What the edited recipient answers
#
# Each row is a true digit, each column an answer; the dashed lines mark the concept. Before
# the edit, A sends every 4 somewhere in 0-3; a working transfer fills the concept column's
# 4 row without spilling into the other rows.

# %%
fig = study.prediction_figure(seed=0)
plt.show()

# %%
same = study.same
show_markdown(
    f"On the test split the edited A calls {same['transfer_mean']:.1%} of the 4s a 4, keeps "
    f"{same['preservation_mean']:.1%} accuracy on its own digits (A alone: "
    f"{same['baseline_preservation_mean']:.1%}) and calls {same['specificity_mean']:.1%} of "
    "the 5s a 4.")

# %% [markdown]
# The copied row almost never wins against A's own logits, so the recipient behaves as before:
# no transfer and no damage. The method sets no threshold, so the calibration rule plays no part
# here. Whatever a later method achieves, it has to come from making the two networks'
# coordinates meet.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
assert same["transfer_mean"] < 0.05  # the trivial baseline transfers nothing
assert same["preservation_mean"] > same["baseline_preservation_mean"] - 0.01  # nor breaks A

record = study.write_record(started)
print(f"result record written to {record}")
