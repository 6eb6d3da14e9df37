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
# # Method 12: aligned spatial transfer
#
# The seed project's best method aligned the two models' concept spaces and then placed the
# concept relative to anchor digits (2 and 3) in the aligned space. This implementation keeps
# the principle, alignment first, and moves it to where it works best: the **first** fully
# connected layer.
#
# 1. A ridge-regression **stitch** (Lenc & Vedaldi 2015; Bansal et al. 2021) maps A's first
#    hidden layer onto B's, fit on A's own images and the donor images passed through both.
#    Early layers of networks trained on the same kind of data are close to linearly related,
#    and they still carry what an image looks like, whether or not the network was trained on
#    its digit.
# 2. B's remaining layers run on the stitched features. They place the concept relative to the
#    shared digits exactly as B does, which is the "spatial relationship" the seed project
#    reconstructed by hand.
# 3. The score is B's concept logit minus its best other logit. The protocol's open-set gate
#    subtracts A's evidence for its own best digit (A's largest logit over 0-3, when
#    positive), and the concept wins in A where what is left passes a threshold set by the one
#    calibration rule: at most 0.5% of the calibration images (digits 0-3 from the
#    calibration split, which neither network was trained on), a cap fixed in advance from the
#    protocol's half-point preservation budget.
#
# It adds a module to A and takes no gradient step on A's weights.

# %%
import time

import matplotlib.pyplot as plt

from mechinterp.reporting import show_markdown
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
study = method_study("aligned_spatial")

# %% [markdown]
# ## What the edited recipient answers
#
# Each row is a true digit, each column an answer; the dashed lines mark the concept. Before
# the edit, A sends every 4 somewhere in 0-3; a working transfer fills the concept column's
# 4 row without spilling into the other rows.

# %%
fig = study.prediction_figure(seed=0)
plt.show()

# %%
ensemble = method_study("donor_ensemble", show=False).summary
finetune = method_study("finetune_with_budget", show=False).summary
reported = SEED_RESULTS["aligned_spatial"]
show_markdown("\n".join(
    f"- {name}: transfer {s['transfer_mean']:.1%} (standard deviation "
    f"{s['transfer_std']:.1%} over seeds; all of B run beside A, the donor ensemble: "
    f"{ensemble[name]['transfer_mean']:.1%}); preservation {s['preservation_mean']:.1%} (A "
    f"alone {s['baseline_preservation_mean']:.1%}); specificity {s['specificity_mean']:.1%} "
    f"(fine-tuning on the same concept images: {finetune[name]['specificity_mean']:.1%}); "
    f"{s['false_positive_rate_mean']:.1%} of all non-concept images called 4."
    for name, s in study.summary.items()))

# %% [markdown]
# Most 4s are now recognised, on the same-architecture and on the cross-architecture pair,
# while A's own digits keep nearly all their accuracy and few 5s are taken for 4s: B's upper
# layers know the difference between 4 and 5, and the stitch lets them see A's view of the
# image. That is close to what running all of B beside A achieves under the same calibration
# rule (the donor ensemble), so the stitch loses little of what B knows about the concept.
# Fine-tuning A on the same concept images catches more 4s but takes many more 5s for 4s.
#
# The share of all non-concept images called 4 is well above the 0.5% cap: the cap is set on
# the digits A or B knows, and the digits neither network knows (6-9), which are not among the
# calibration images, pass the threshold far more often.

# %% [markdown]
# ## Against the seed project's number

# %%
beats = [name for name, s in study.summary.items() if s["transfer_mean"] > reported["transfer"]]
alone = max(s["baseline_preservation_mean"] for s in study.summary.values())
ceiling = max(e["transfer_mean"] for e in ensemble.values())
show_markdown(
    f"The seed project reported {reported['transfer']:.1%} transfer at "
    f"{reported['preservation']:.1%} preservation and {reported['specificity']:.1%} "
    "specificity on its cross-architecture pair. "
    + (f"This method beats its transfer on {' and '.join(beats)}." if beats else
       "This method does not reach that transfer on either pair. The difference is mostly "
       "the protocol. Under its earlier version, which set the threshold on training images "
       "both networks had fit, the same method reached about 93%, but that threshold let "
       "through far more than 0.5% of unseen non-concept images. The threshold is now set on "
       "calibration images neither network was trained on, where a stitch fit on the training "
       "images is less sure of itself; the donor ensemble, which runs all of B under the same "
       f"rule, reaches {ceiling:.1%} at best"
       + (", so the ceiling itself sits below the seed project's number. "
          if ceiling < reported["transfer"] else ". ")
       + "The 5s are no longer among the calibration images either, so the calibration no "
       "longer holds them back. And the seed project's numbers come from its own models and "
       "splits.")
    + f" Here A alone reaches at most {alone:.1%} on its own digits"
    + (", below the seed project's preservation, so matching that number would mean "
       "improving on A itself; what matters is the gap to A alone."
       if alone < reported["preservation"] else "."))

# %% [markdown]
# The [leaderboard](../transfer_leaderboard/) compares it with everything else and names the
# best method by a rule applied to the validation split.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
for name, s in summary.items():
    assert s["transfer_mean"] > 0.6  # most 4s are recognised
    assert s["transfer_mean"] < finetune[name]["transfer_mean"]  # fine-tuning catches more
    # close to running all of B beside A
    assert s["transfer_mean"] > ensemble[name]["transfer_mean"] - 0.05
    # A's own digits keep nearly all their accuracy
    assert s["preservation_mean"] > s["baseline_preservation_mean"] - 0.015
    assert s["specificity_mean"] < 0.15  # few 5s are taken for 4s
    # many fewer than fine-tuning takes
    assert s["specificity_mean"] < 0.5 * finetune[name]["specificity_mean"]

record = study.write_record(started)
print(f"result record written to {record}")
