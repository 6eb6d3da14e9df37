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
# # Method 7: cascade transplant
#
# The seed project's best same-architecture surgery. It follows the concept's computation
# backwards from the output: the 24 last-layer units with the largest weights into the concept
# row are chosen, then each of them recruits its 6 strongest inputs in the layer below, those
# recruit 4 each, and so on (3 for deeper layers). Every recruited unit's incoming weights are
# copied from B, with the concept row: a connected sub-network of B, not isolated units.

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
study = method_study("cascade_transplant")

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
# Because the copied units now feed each other, part of B's concept pathway runs inside A and
# some 4s are recognised, as the seed project found. But the recruited units are many, and A's
# other rows still read them: preservation suffers much more than in the seed's report. The
# cascade is a real effect of connectivity, paid for with A's own skills.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
assert same["transfer_mean"] > 0.05
assert same["preservation_mean"] < same["baseline_preservation_mean"] - 0.1

record = study.write_record(started)
print(f"result record written to {record}")
