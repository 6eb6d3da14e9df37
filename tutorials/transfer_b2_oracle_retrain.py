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
# # Baseline: the oracle
#
# The **oracle**: A's architecture trained from scratch on its own digits and the concept, with
# the profile's training settings. It is the best one could hope for from A's architecture and
# data with the concept known from the start; no transfer method should be expected to beat it
# on transfer and preservation.

# %%
import time

import matplotlib.pyplot as plt

import mechinterp as mi
from mechinterp.reporting import show_markdown
from mechinterp.transfer import apply_method, get_method, model_pair
from mechinterp.transfer.leaderboard import DEFAULT_PAIRS, run_grid, summarise_runs
from mechinterp.transfer.report import plot_prediction_profile, prediction_profile, summary_table

METHOD = "oracle_retrain"
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
# The oracle recognises 4s about as well as B does and keeps A's digits, but like fine-tuning
# it has no idea what a 5 is, so its specificity is poor: a classifier of 0-4 must put a 5
# somewhere.

# %% [markdown]
# ## Checks and record

# %%
same = summary.get("megann <- megann")
cross = summary.get("widenn <- deepnn")
for s in summary.values():
    assert s["transfer_mean"] > 0.9
    assert s["preservation_mean"] > 0.95

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
