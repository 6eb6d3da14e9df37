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
# regression (fitted on the training images the two doors hand out, which hold no 5), and one
# row of B's output layer, its concept row, is read off the mapped features. The score
# overrides A's answer where it passes a threshold set by the rule every method uses (the
# open-set gate, then at most 0.5% of the calibration negatives let through). The edited model
# carries the map and one row of B (a view of B's own weights, so the import counter sees it
# as B's), nothing else of the donor.

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

# %%
summary, same, cross = study.summary, study.same, study.cross
ensemble = method_study("donor_ensemble", show=False).summary


def pct(key, rows=summary):
    return " and ".join(f"{rows[name][key]:.1%}" for name in summary)


show_markdown(
    f"On the two pairs ({' and '.join(summary)}) the readout recognises {pct('transfer_mean')} "
    f"of the 4s, against {pct('transfer_mean', ensemble)} for the ensemble, which runs all of "
    f"B. It calls {pct('specificity_mean')} of the 5s 4s, against "
    f"{pct('specificity_mean', ensemble)} for the ensemble: with the concept row alone, "
    "nothing weighs the 4 against B's 5, so a 5 that raises B's 4 logit passes however much "
    "more it would raise B's 5 logit.")

# %% [markdown]
# ## Checks and record

# %%
for s in summary.values():
    assert s["donor_params_executed"] <= 1025  # one row of B (weights and bias), at most
    assert s["donor_at_inference"] and s["params_changed"] == 0
for name, s in summary.items():
    assert s["transfer_mean"] < ensemble[name]["transfer_mean"]  # the floor sits below the ceiling
    # the row alone does not weigh the 4 against the 5, the full output layer does
    assert s["specificity_mean"] > ensemble[name]["specificity_mean"]

record = study.write_record(started)
print(f"result record written to {record}")
