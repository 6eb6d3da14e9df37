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
# # Method 6: activation-based selection
#
# Weights say what a unit *could* do; activations say what it does. This method runs donor
# images through B and ranks units in each layer by how much more they fire on 4s than on the
# other donor digits; the top 10% per layer are copied, with the concept row. It is the first
# surgery method that consumes concept images.

# %%
import time

import matplotlib.pyplot as plt

import mechinterp as mi
from mechinterp.reporting import show_markdown
from mechinterp.transfer import apply_method, get_method, model_pair
from mechinterp.transfer.leaderboard import DEFAULT_PAIRS, run_grid, summarise_runs
from mechinterp.transfer.report import plot_prediction_profile, prediction_profile, summary_table

METHOD = "activation_selection"
started = time.perf_counter()
data = mi.load_digits()
spec = get_method(METHOD)
print(f"{spec.title}: changes {spec.changes}, handles {spec.requires} pairs")

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
rows = run_grid([METHOD])
summary = {s["pair"]: s for s in summarise_runs(rows)}
show_markdown(summary_table(list(summary.values())))
for name, s in summary.items():
    print(f"{name}: recipient alone preserves {s['baseline_preservation_mean']:.1%}, "
          f"donor alone recognises {s['donor_transfer_mean']:.1%} of the concept images")

# %% [markdown]
# ## What the edited recipient answers
#
# Each row is a true digit, each column an answer; the dashed lines mark the concept. Before
# the edit, A sends every 4 somewhere in 0-3; a working transfer fills the concept column's
# 4 row without spilling into the other rows.

# %%
a, b = next(p for p in DEFAULT_PAIRS if f"{p[0]} <- {p[1]}" in summary)
pair = model_pair(a, b, seed=0, data=data)
edited, ctx = apply_method(METHOD, pair)
fig = plot_prediction_profile(prediction_profile(pair.recipient.model, data),
                              prediction_profile(edited, data), pair.protocol.concept,
                              f"{spec.title}: {a} receives from {b}, seed 0")
plt.show()

# %% [markdown]
# Units that fire for 4s in B, transplanted into A, fire for something else: their inputs are
# A's. On these models the selection by response does no better than the selection by weight;
# the obstacle is the missing alignment, not the choice of units.

# %% [markdown]
# ## Checks and record

# %%
same = summary.get("megann <- megann")
cross = summary.get("widenn <- deepnn")
assert same["transfer_mean"] < 0.1
assert same["concept_images_used"] > 0

record = mi.write_result(
    f"transfer-{METHOD}",
    {f"{pair_name}.{key}": value for pair_name, s in summary.items()
     for key, value in s.items() if isinstance(value, float)},
    seeds=list(mi.get_profile().seeds),
    data_source=data.source,
    title=f"Concept transfer: {spec.title}",
    started=started,
)
print(f"result record written to {record}")
