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

from mechinterp.reporting import show_markdown
from mechinterp.transfer.protocol import SEED_RESULTS
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

# %%
same = study.same
reported = SEED_RESULTS["importance_neuron_copy"]
show_markdown(
    f"The edited A calls {same['transfer_mean']:.1%} of the 4s a 4 and keeps "
    f"{same['preservation_mean']:.1%} on its own digits (A alone: "
    f"{same['baseline_preservation_mean']:.1%}); the seed project reported "
    f"{reported['transfer']:.0%} transfer at {reported['preservation']:.0%} preservation.")

# %% [markdown]
# Transfer stays at zero: the copied units read A's previous layer with B's weights, so they
# no longer detect what they detected in B. Eight units of a layer are too few to cost A much
# on its own digits. Weight magnitude picks units that matter in B, not units that can work
# inside A. The method sets no threshold, so the calibration rule plays no part here.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
assert same["transfer_mean"] < 0.05  # no transfer
assert same["preservation_mean"] > same["baseline_preservation_mean"] - 0.02  # A intact

record = study.write_record(started)
print(f"result record written to {record}")
