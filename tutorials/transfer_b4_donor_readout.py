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
# # Baseline: the donor readout
#
# The **smallest import that can work**. A's last hidden layer is mapped onto B's by ridge
# regression (fitted on the training images both doors hand out), and one row of B's output
# layer, its concept row, is read off the mapped features. The score overrides A's answer
# where it passes a threshold calibrated by the rule every method uses. The edited model
# carries the map and one row of B (a view of B's own weights, so the import counter sees it
# as B's), nothing else of the donor.

# %%
import time

import matplotlib.pyplot as plt

from mechinterp.transfer.report import method_study

started = time.perf_counter()

# %% [markdown]
# ## Numbers
#
# The [protocol](../../transfer/protocol/) is fixed: recipient A knows digits 0-3, donor B
# knows 2-5, the concept is 4 and the specificity digit is 5. The baseline runs on the
# same-architecture pair (MegaNN receives from MegaNN) and the cross-architecture pair
# (WideNN receives from DeepNN), once per seed of the profile; the table gives the mean and,
# in brackets, the standard deviation over seeds.

# %%
study = method_study("donor_readout")

# %% [markdown]
# ## What the edited recipient answers
#
# Each row is a true digit, each column an answer; the dashed lines mark the concept.

# %%
fig = study.prediction_figure(seed=0)
plt.show()

# %% [markdown]
# One row of B read off a linear map of A's last layer is a weak detector: the map is fitted
# mostly on digits that are not the concept, and B's concept row alone does not compare the
# concept with B's other digits the way B's full output layer does. The methods between this
# floor and the [donor ensemble](../transfer_b3_donor_ensemble/) show how much of B a transfer
# needs.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
for s in summary.values():
    assert s["donor_params_executed"] <= 1025  # one row of B (weights and bias), at most
    assert s["donor_at_inference"] and s["params_changed"] == 0
ensemble = method_study("donor_ensemble", show=False).summary
for name, s in summary.items():
    assert s["transfer_mean"] < ensemble[name]["transfer_mean"]  # the floor sits below the ceiling

record = study.write_record(started)
print(f"result record written to {record}")
