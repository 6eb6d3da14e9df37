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
# # Baseline: fine-tuning with the concept budget
#
# The **strong baseline**. It takes gradient steps on all of A's weights, which no surgery
# method does: five epochs of Adam on A's own images plus the concept images of the budget,
# with a preservation term (the KL divergence from the original A's predictions on its own
# images). Anything a surgery method achieves should be read against what plain training with
# the same concept images achieves.

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
study = method_study("finetune_with_budget")

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
# Fine-tuning learns 4s almost perfectly and keeps A's digits, but it has never seen a 5: many
# 5s become 4s. Its weakness is specificity, the one metric that rewards knowing what the
# concept is *not*, which B's layers bring to the alignment methods for free.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
for s in summary.values():
    assert s["transfer_mean"] > 0.9
    assert s["specificity_mean"] > 0.1

record = study.write_record(started)
print(f"result record written to {record}")
