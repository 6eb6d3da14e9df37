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
# # Method 4: gradual blending
#
# Instead of copying a few units outright, every unit of every hidden layer is moved towards B
# in proportion to its importance for the concept: importance is the concept row's weight
# magnitude for the last hidden layer, pushed back through the absolute weights for earlier
# layers (a path-strength score). The most important unit becomes B's; unimportant ones stay
# A's; the rest are interpolated. The concept row is copied.

# %%
import time

import matplotlib.pyplot as plt

from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.transfer.leaderboard import run_grid
from mechinterp.transfer.protocol import SEED_RESULTS
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
study = method_study("gradual_blending")

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
# Seed by seed, on the same-architecture pair:

# %%
same = study.same
reported = SEED_RESULTS["gradual_blending"]
rates = ("transfer", "preservation", "A alone", "specificity")
show_markdown(markdown_table(
    [{"seed": r["seed"], "transfer": r["transfer"], "preservation": r["preservation"],
      "A alone": r["baseline_preservation"], "specificity": r["specificity"]}
     for r in run_grid(["gradual_blending"])],
    ["seed", *rates], formats={k: ".1%" for k in rates}))
show_markdown(
    f"On average the edited A calls {same['transfer_mean']:.1%} of the 4s a 4 and keeps "
    f"{same['preservation_mean']:.1%} on its own digits (A alone: "
    f"{same['baseline_preservation_mean']:.1%}); the seed project reported "
    f"{reported['transfer']:.0%} transfer at {reported['preservation']:.0%} preservation.")

# %% [markdown]
# Blending does make 4s appear, but it moves so many weights part-way that A's own computation
# breaks: preservation falls to about half. The figure shows where A's digits go: the 0s and
# 1s, digits B never learned, are answered 2 or 3, and only the digits both networks know
# survive. The units that matter most for the concept are now in effect B's, and A's rows for
# 0 and 1 read units that no longer compute what those rows were trained on. The result is
# closer to a damaged copy of B than to A with one more digit, and how many 4s it catches
# changes a lot from seed to seed. Interpolating between two networks that do not share
# coordinates produces a network that is neither. The method sets no threshold, so the
# calibration rule plays no part here.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
assert same["transfer_mean"] > 0.25  # 4s do appear
# but A's own digits collapse
assert same["preservation_mean"] < same["baseline_preservation_mean"] - 0.2

record = study.write_record(started)
print(f"result record written to {record}")
