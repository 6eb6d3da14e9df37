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
# # Method 9: preserved concept injection
#
# The fix the seed project tried for method 8: inject the concept vector only in proportion to
# a concept detector's probability (the transported probe) and damp it by a preservation
# weight of 0.95, so that A's own features dominate. The concept row is method 2's calibrated
# row.

# %%
import time

import matplotlib.pyplot as plt

from mechinterp.transfer.report import method_study, show_injection_effect

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
study = method_study("preserved_concept_injection")

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
# ## What the injection adds
#
# The method is method 2 (the transported probe written into A's concept row) plus an
# injection. Applied to the same trained models, how many test decisions does the injection
# change, and how large is it next to A's features at the layer it is added to?

# %%
effect, inert = show_injection_effect(
    "preserved_concept_injection",
    "the injected vector, damped to 5% and gated by the detector, "
    "is small next to A's features")

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
probe = method_study("procrustes_probe", show=False).summary
for name, s in summary.items():
    if inert:  # then the transfer is method 2's, and the vector small, as the text says
        assert max(r["relative_size"] for r in effect) < 0.1
        assert abs(s["transfer_mean"] - probe[name]["transfer_mean"]) < 0.02

record = study.write_record(started)
print(f"result record written to {record}")
