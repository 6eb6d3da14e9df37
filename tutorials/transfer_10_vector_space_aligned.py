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
# # Method 10: vector-space aligned transfer
#
# Both models get a TopK SAE on their last hidden layer. The two code spaces are aligned by an
# orthogonal Procrustes rotation fit on the shared digits, the mean code of B's 4s is rotated
# into A's code space, and it is projected onto A's **free space**: the directions of A's code
# space that A's own images use least (the smallest singular directions). The projected vector,
# decoded into A's features, is injected in proportion to the transported probe's probability,
# and A's concept row is method 2's row.
#
# The free-space idea is sound: writing the concept where A keeps nothing should not disturb
# A's digits.

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
study = method_study("vector_space_aligned")

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
    "vector_space_aligned",
    "the injected vector lives in the directions A's own images use least, "
    "which the concept row (method 2's) does not read")

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
probe = method_study("procrustes_probe", show=False).summary
for name, s in summary.items():
    if inert:  # then the transfer is method 2's, as the text above says
        assert abs(s["transfer_mean"] - probe[name]["transfer_mean"]) < 0.02
    assert s["preservation_mean"] > s["baseline_preservation_mean"] - 0.03

record = study.write_record(started)
print(f"result record written to {record}")
