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
# concept row is the transported probe of method 2 as it was fit, without method 2's
# calibration: this method sets no threshold, so whether a 4 wins depends on how the probe's
# output compares with A's other logits once the vector has been added.
#
# The seed project reports that its version recognised every 4 and destroyed everything else;
# unconditional injection is the reason, and this method is kept to show that failure mode.

# %%
import time

import matplotlib.pyplot as plt

from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.transfer.leaderboard import run_grid
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
# Seed by seed, with method 2 (the same concept row, calibrated, and no injection) beside it:

# %%
probe_runs = {(r["recipient_arch"], r["seed"]): r for r in run_grid(["procrustes_probe"])}
rates = ("transfer", "preservation", "A alone", "specificity", "method 2: transfer",
         "method 2: preservation", "method 2: specificity")
show_markdown(markdown_table(
    [{"pair": f"{r['recipient_arch']} <- {r['donor_arch']}", "seed": r["seed"],
      "transfer": r["transfer"], "preservation": r["preservation"],
      "A alone": r["baseline_preservation"], "specificity": r["specificity"],
      **{f"method 2: {k}": probe_runs[(r["recipient_arch"], r["seed"])][k]
         for k in ("transfer", "preservation", "specificity")}}
     for r in run_grid(["sae_concept_injection"])],
    ["pair", "seed", *rates], formats={k: ".1%" for k in rates}))

# %% [markdown]
# Adding the same vector to every image moves all of A's features, and what that does changes
# from seed to seed. On some seeds it catches fewer 4s than method 2 does; on others the push
# towards 4 takes most of them, and with them 5s and a share of A's own digits, so specificity
# swings as much as transfer does. On average preservation drops below the recipient's and
# below method 2's on both pairs. How badly depends on how large the mapped vector is in A's
# space; the seed's catastrophic version used a much stronger injection. In either form,
# injecting without a gate cannot separate 4s from the rest.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
probe = method_study("procrustes_probe", show=False).summary
for name, s in summary.items():
    assert s["preservation_mean"] < s["baseline_preservation_mean"] - 0.01  # A pays
    assert s["preservation_mean"] < probe[name]["preservation_mean"] - 0.01  # more than method 2

record = study.write_record(started)
print(f"result record written to {record}")
