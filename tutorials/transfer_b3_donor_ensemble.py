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
# # Baseline: the donor ensemble
#
# The **ceiling for any method that runs the donor**. The edited model is A with B run beside
# it on the same image: B's concept margin (its concept logit minus the largest of its other
# digits' logits) overrides A's answer where it passes a threshold set by the rule every method
# uses. The margin first goes through the protocol's open-set gate, which subtracts A's
# evidence for its own best digit (its largest logit over 0-3, when positive); the threshold
# then lets through at most 0.5% of the calibration negatives, images of the digits A or B
# knows other than the concept and the specificity digit, taken from a carve of the training
# split that neither network was trained on. No concept image is used and nothing is learned;
# the edited model simply carries all of B. A transfer method whose edited model runs B's
# layers is worth its complexity only if it imports less of B than this, or does better.

# %%
import dataclasses
import time
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import torch

from mechinterp import get_profile
from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.transfer import TransferProtocol, apply_method, model_pair
from mechinterp.transfer.leaderboard import run_grid, summarise_runs
from mechinterp.transfer.protocol import calibration_indices
from mechinterp.transfer.report import method_study

started = time.perf_counter()

# %% [markdown]
# ## Numbers
#
# The [protocol](../../transfer/protocol/) is fixed: recipient A knows digits 0-3, donor B
# knows 2-5, the concept is 4 and the specificity digit is 5. The baseline runs on the
# same-architecture pair (MegaNN receives from MegaNN) and the cross-architecture pair
# (WideNN receives from DeepNN), once per seed of the profile; the table gives the mean and,
# in brackets, the standard deviation over seeds. The column `from B` counts the entries of
# B's weights that take part in the edited model's output.

# %%
study = method_study("donor_ensemble")

# %% [markdown]
# ## What the edited recipient answers
#
# Each row is a true digit, each column an answer; the dashed lines mark the concept.

# %%
fig = study.prediction_figure(seed=0)
plt.show()

# %% [markdown]
# ## Why the ceiling sits below B
#
# B alone (its own answer, the largest logit) recognises most 4s, yet beside A it recognises
# fewer. Two things can take the difference: the threshold, and the gate. The table puts the
# baseline next to the same ensemble with the margin taken as it is (no gate), and next to B
# alone; mean over seeds. For each seed it also finds the calibration negatives that pass the
# baseline's threshold (the handful that set it) and A's evidence for its own best digit on
# the test 4s, which is what the gate subtracts from their score.

# %%
summary, same, cross = study.summary, study.same, study.cross
protocol = TransferProtocol()
closed = {s["pair"]: s for s in summarise_runs(run_grid(
    ["donor_ensemble"], protocol=dataclasses.replace(protocol, gate="closed-set")))}
negative_digits = sorted((set(protocol.recipient_digits) | set(protocol.donor_digits))
                         - {protocol.concept, protocol.specificity_digit})
setters, evidence = {}, {}
for name in summary:
    a, b = name.split(" <- ")
    setters[name], evidence[name] = Counter(), []
    for seed in get_profile().seeds:
        pair = model_pair(a, b, seed=seed, data=study.data)
        edited, _ = apply_method("donor_ensemble", pair)
        cal = calibration_indices(pair.data)
        labels = pair.data.train_labels[cal]
        keep = torch.isin(labels, torch.tensor(negative_digits, device=labels.device))
        test4 = pair.data.test_images[pair.data.test_labels == protocol.concept]
        with torch.no_grad():
            passed = edited.scorer(pair.data.train_images[cal][keep]) > edited.threshold
            own = pair.recipient.model(test4)[:, list(protocol.recipient_digits)].max(1).values
        setters[name].update(labels[keep][passed].tolist())
        evidence[name].append(own.clamp_min(0).median().item())
rows = [{"pair": name, "B alone": s["donor_transfer_mean"],
         "without the gate": closed[name]["transfer_mean"],
         "with the gate (baseline)": s["transfer_mean"],
         "specificity without": closed[name]["specificity_mean"],
         "specificity with": s["specificity_mean"]} for name, s in summary.items()]
show_markdown(markdown_table(rows, list(rows[0]), {k: ".1%" for k in rows[0] if k != "pair"}))
for name in summary:
    print(f"{name}: calibration negatives passing the threshold, by digit (all seeds): "
          f"{dict(sorted(setters[name].items()))}; median A evidence on test 4s: "
          f"{np.mean(evidence[name]):.1f}")

# %%
ensemble_t = " and ".join(f"{s['transfer_mean']:.1%}" for s in summary.values())
donor_t = " and ".join(f"{s['donor_transfer_mean']:.1%}" for s in summary.values())
closed_t = " and ".join(f"{closed[n]['transfer_mean']:.1%}" for n in summary)
gate_cost = np.mean([closed[n]["transfer_mean"] - s["transfer_mean"] for n, s in summary.items()])
top = Counter()
for counts in setters.values():
    top.update(counts)
top_digit, top_count = top.most_common(1)[0]
who_sets = ("a digit B knows, yet a few of its images (which neither network was trained on) "
            "score as 4-like and set the bar" if top_digit in protocol.donor_digits else
            "a digit B never saw, on which its margin means little, so they set the bar")
spec_with = " and ".join(f"{s['specificity_mean']:.1%}" for s in summary.values())
spec_without = " and ".join(f"{closed[n]['specificity_mean']:.1%}" for n in summary)
show_markdown(
    f"B alone recognises {donor_t} of the 4s; beside A it recognises {ensemble_t}. The "
    f"threshold is set by the few calibration negatives with the highest scores, and "
    f"{top_count} of the {sum(top.values())} that pass it over all seeds and both pairs are "
    f"{top_digit}s, {who_sets}; any 4 whose score falls below them is lost. Without the gate "
    f"{closed_t} of the 4s pass. The gate "
    + (f"costs {100 * gate_cost:.1f} points on average on this concept: A has never seen a 4, "
       f"yet answers most 4s with a confident logit for one of its own digits (median "
       f"{np.mean([np.mean(v) for v in evidence.values()]):.1f}), and the gate subtracts it. "
       "It was chosen on the validation split over three protocol variants because it rescues "
       "the concept 5, whose transfer collapses without it (see the "
       "[variants page](../transfer_variants/)); on the concept 4 it costs this ceiling, and "
       "every method measured against it goes through the same gate."
       if gate_cost > 0 else f"changes the transfer by {100 * -gate_cost:+.1f} points on "
       "average on this concept.")
    + f" B knows both 4s and 5s, so its margin keeps the 5s out (specificity {spec_with} with "
    f"the gate, {spec_without} without), although no 5 ever took part in calibration.")

# %% [markdown]
# ## Checks and record

# %%
finetune = method_study("finetune_with_budget", show=False).summary
for name, s in summary.items():
    assert s["concept_images_used"] == 0 and s["donor_at_inference"]
    assert s["transfer_mean"] < s["donor_transfer_mean"]  # the threshold costs B's recognition
    assert s["preservation_mean"] > s["baseline_preservation_mean"] - 0.015
    # B knows the 5: far fewer 5s become 4s than after fine-tuning, which never saw one
    assert s["specificity_mean"] < finetune[name]["specificity_mean"] / 2

record = study.write_record(started)
print(f"result record written to {record}")
