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
# # Method 8: SAE concept injection
#
# Sparse autoencoders (Bricken et al., 2023) give each model a dictionary of sparse features.
# Here a TopK SAE is trained on B's last hidden layer; the concept vector is the decoded mean
# code of 4s minus that of the other donor digits, carried into A's last layer by a ridge map
# fit on the shared digits. The vector is added to A's features for **every** input, and A's
# concept row is the transported probe of method 2.
#
# The seed project reports that its version recognised every 4 and destroyed everything else;
# unconditional injection is the reason, and this method is kept to show that failure mode.

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
study = method_study("sae_concept_injection")

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
# Adding the concept vector to every image pushes some of A's own digits towards 4 and shifts
# their features: preservation drops below the recipient's, while transfer stays modest. How
# badly depends on how large the mapped vector is in A's space; the seed's catastrophic version
# used a much stronger injection. In either form, injecting without a gate cannot separate 4s
# from the rest.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
for s in summary.values():
    assert s["preservation_mean"] < s["baseline_preservation_mean"]

record = study.write_record(started)
print(f"result record written to {record}")
