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
# # Baseline: the oracle
#
# The **oracle**: A's architecture trained from scratch on its own digits and the concept, with
# the profile's training settings. It is the best one could hope for from A's architecture and
# data with the concept known from the start; no transfer method should be expected to beat it
# on transfer and preservation.

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
study = method_study("oracle_retrain")

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
# The oracle recognises 4s about as well as B does and keeps A's digits, but like fine-tuning
# it has no idea what a 5 is, so its specificity is poor: a classifier of 0-4 must put a 5
# somewhere.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
for s in summary.values():
    assert s["transfer_mean"] > 0.9
    assert s["preservation_mean"] > 0.95

record = study.write_record(started)
print(f"result record written to {record}")
