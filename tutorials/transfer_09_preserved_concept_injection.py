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
# # Method 9: preserved concept injection
#
# The fix the seed project tried for method 8: inject the concept vector only in proportion to
# a concept detector's probability (the transported probe) and damp it by a preservation
# weight of 0.95, so that A's own features dominate. The concept row is method 2's calibrated
# row, calibrated before the injection is added: whatever the injection pushes over the
# threshold comes on top of the 0.5% that the calibration rule allows.

# %%
import time

import matplotlib.pyplot as plt

from mechinterp.reporting import show_markdown
from mechinterp.transfer.protocol import SEED_RESULTS
from mechinterp.transfer.report import method_study, show_injection_effect

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
study = method_study("preserved_concept_injection")

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
    "preserved_concept_injection",
    "the injected vector, damped to 5% and gated by the detector, "
    "is small next to A's features")

# %% [markdown]
# The same comparison on the summary numbers, method 9 against method 2 over the same seeds:

# %%
probe = method_study("procrustes_probe", show=False).summary
reported = SEED_RESULTS["preserved_concept_injection"]
on_concept = sum(r["changed_concept"] for r in effect) / len(effect)
show_markdown("\n".join(
    f"- {name}: transfer {s['transfer_mean']:.1%} against method 2's "
    f"{probe[name]['transfer_mean']:.1%} "
    f"({100 * (s['transfer_mean'] - probe[name]['transfer_mean']):+.1f} points), specificity "
    f"{s['specificity_mean']:.1%} against {probe[name]['specificity_mean']:.1%}, preservation "
    f"{s['preservation_mean']:.1%} against {probe[name]['preservation_mean']:.1%}."
    for name, s in study.summary.items())
    + f"\n\nOn the concept images the injection changes {on_concept:.1%} of the answers on "
    f"average. The seed project reported {reported['transfer']:.1%} transfer at "
    f"{reported['preservation']:.1%} preservation for its version.")

# %% [markdown]
# Damped to 5% and gated, the injection is small next to A's features, and the edited model
# answers almost exactly as method 2 does. The few answers it does change are worth at most a
# few points of transfer (and of specificity) over method 2: the method's numbers are method
# 2's, with a small nudge from a vector too weak to carry the concept by itself. That is also
# why the transfer here is far above the seed project's report: it comes from method 2's
# calibrated concept row, not from the injection.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
assert max(r["relative_size"] for r in effect) < 0.1  # small next to A's features
for name, s in summary.items():
    # the transfer is method 2's, give or take a few points
    assert abs(s["transfer_mean"] - probe[name]["transfer_mean"]) < 0.05
    # and A's own digits keep their accuracy
    assert s["preservation_mean"] > s["baseline_preservation_mean"] - 0.015
    assert s["transfer_mean"] > reported["transfer"] + 0.05  # far above the seed's report

record = study.write_record(started)
print(f"result record written to {record}")
