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
# on transfer and preservation. Like every method it is never handed an image of the
# specificity digit (5), so its specificity is measured on the same footing as theirs.

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
# ## Against B and against the methods that let B judge

# %%
summary, same, cross = study.summary, study.same, study.cross
method1 = method_study("precomputed_vector_alignment", show=False).summary


def pct(key, rows=summary):
    return " and ".join(f"{rows[name][key]:.1%}" for name in summary)


lost = max(s["baseline_preservation_mean"] - s["preservation_mean"] for s in summary.values())
show_markdown(
    f"On the two pairs ({' and '.join(summary)}), the oracle recognises {pct('transfer_mean')} "
    f"of the 4s, about as many as B itself ({pct('donor_transfer_mean')}), and loses at most "
    f"{100 * lost:.1f} points of accuracy on A's own digits. Like fine-tuning it has no idea "
    f"what a 5 is: a classifier of 0-4 must put a 5 somewhere, and it calls "
    f"{pct('specificity_mean')} of them 4s, where method 1, which lets B's layers judge, calls "
    f"{pct('specificity_mean', method1)} of them 4s without having seen a 5 either.")

# %% [markdown]
# ## Checks and record

# %%
for name, s in summary.items():
    assert s["transfer_mean"] > s["donor_transfer_mean"] - 0.05  # about as well as B
    assert s["preservation_mean"] > s["baseline_preservation_mean"] - 0.015  # keeps A's digits
    assert s["specificity_mean"] > 2 * method1[name]["specificity_mean"]  # no idea what a 5 is

record = study.write_record(started)
print(f"result record written to {record}")
