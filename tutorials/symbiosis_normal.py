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
# # Symbiosis under normal conditions
#
# A *symbiote* is a second network B that lives alongside a trained primary network A and
# changes how A computes without touching A's weights. Here A is the small MNIST CNN from
# [Looking inside an MNIST CNN](../looking_inside_a_cnn/), and B is asked for one thing: given
# a digit, make A never output that digit while every other digit keeps A's original answer.
#
# B may only act *inside* A. For each hidden unit (each of the 8 + 16 convolution channels and
# each of the 128 hidden neurons) it outputs a multiplicative gate, applied through A's hook
# points after the ReLU, in the manner of FiLM conditioning (Perez et al., 2018). It never sees
# A's logits or final layer. A single B serves all ten digits: it takes the digit as a one-hot
# input, with an extra "none" input that leaves A exactly as it was.
#
# Because B is trained with a sparsity penalty, the units it chooses to gate for a digit are a
# cheap, causal sketch of where that digit lives in A. The
# [circuit-map tutorial](../symbiote_circuit_map/) reads that sketch; this one checks that the
# symbiosis works and compares it with simpler ways of silencing a digit.

# %%
import time
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import torch

import mechinterp as mi
from mechinterp.plotting import heatmap
from mechinterp.reporting import markdown_table, mean_std, show_markdown
from mechinterp.symbiote import NONE, ablation_budget_sweep, summarise, symbiote_for
from mechinterp.symbiote.seeds import SEEDS, per_digit_over_seeds, seed_rows, seed_summary

started = time.perf_counter()
data = mi.load_digits()
print(data.describe())

# %% [markdown]
# ## The primary and its symbiote
#
# `symbiote_for` trains (or loads from the cache) the primary CNN on all ten digits and then
# the symbiote against the frozen primary. Each training step pairs images with digits to
# inhibit: half the images must suppress their own label, the other half keep A's answer. The
# loss has a hinge that pushes the inhibited digit's logit below the best other logit by a
# margin, a cross-entropy that keeps A's original prediction on every other image, and an L1
# penalty on how far the gates move from 1.

# %%
trained = symbiote_for("normal", data, seed=0)
A, B = trained.primary.model, trained.symbiote
print(f"primary: {trained.primary.arch}, test accuracy {trained.primary.test_accuracy:.3f}")
print(f"symbiote: {sum(p.numel() for p in B.parameters()):,} parameters, "
      f"gates for {B.n_units} units, config {trained.config}")

history = trained.history
steps = [h["step"] for h in history]
fig, ax = plt.subplots(figsize=(7, 3))
for key in ("inhibition", "preservation", "sparsity"):
    ax.plot(steps, [h[key] for h in history], label=key)
ax.set_xlabel("training step")
ax.set_ylabel("loss term")
ax.set_yscale("log")
ax.legend()
ax.set_title("Training the symbiote")
fig.tight_layout()
plt.show()

# %% [markdown]
# The "none" input is the identity by construction, not by training: its gates are exactly 1.

# %%
with torch.no_grad():
    untouched = A.run_with_hooks(data.test_images,
                                 fwd_hooks=B.hooks(torch.full((data.n_test,), NONE)))
identity_gap = (untouched - A(data.test_images)).abs().max().item()
print(f"largest logit change with the 'none' input: {identity_gap}")

# %% [markdown]
# ## Inhibiting each digit, next to its baselines, at one budget
#
# A fair comparison needs B's budget counted the way B is evaluated. B moves every gate a
# little, so "units changed by more than 0.1" undercounts what it uses. Here B is counted by
# what it needs: its modulations are ranked by size, and `units_touched` keeps the fewest of
# the largest that reproduce B's effect (target rate and other digits' accuracy within a
# tenth of a point of full B), found on the *training* images. B is then evaluated with only
# those units, and every baseline gets exactly that many units for the same digit.
#
# * **logit mask**: set the digit's output logit to minus infinity. It acts at the output,
#   which B may not do; it is perfect by construction and shows what acting at the output
#   gets for free.
# * **ablations**: two rules choose the units, **selective** (the units whose mean activation
#   is most specific to the digit) and **attribution** (those whose replacement attribution
#   patching, Nanda 2023, predicts to lower the digit's logit margin most). Four values
#   replace them, each per position for a convolution channel: `mean` over all training
#   images, `mean_nontarget` over the images of the other digits (the value a unit takes when
#   the digit is absent; the overall mean *raises* the digit's own units on every other
#   image), `zero`, and `resample` (each test image gets another digit's activations).
# * **trained gates**: gates on exactly B's units, or on as many units chosen by attribution,
#   trained by gradient with B's own loss, batches and steps. They separate what B's learned
#   search adds from merely knowing the right units.
#
# * **conditional symbiote**: a second B that also reads A's first convolution (pooled to
#   7 x 7) and returns gates for each image, counted and evaluated like B. It imports a
#   reader of A's activations, so it has more parameters; the
#   [polysemantic page](../symbiosis_polysemantic/) shows where that matters.
#
# `target_output_rate` is the share of *all* test images classified as the inhibited digit
# (goal: 0). `nontarget_accuracy_drop` is the loss of accuracy on images of the other digits
# (goal: at most one point, for every digit).
#
# B's loss weighs its preservation term (cross-entropy towards A's own prediction on the
# images that keep their class) against the inhibition hinge. The weight,
# `SymbioteConfig.preservation` = 10, was chosen before any number on this page was computed,
# on a fifth of the training images held out from A and B, by the rule in
# `tools/choose_symbiote_preservation.py`: the smallest of 1, 3, 10 and 30 whose symbiote
# keeps every digit within 1% target rate and one point of collateral loss on three seeds.
# With 1 and 3 the digit "1" cost the others 1.5 points; 10 kept every digit within 0.55.

# %% [markdown]
# Every number below is measured for five seeds: seed `s` trains A, B, the conditional B and
# the trained gates from scratch. `seed_rows` returns each seed's rows (seed 0 is computed in
# this build; on the quick profile the other four come from the stored seed study, which this
# build checks by recomputing seed 0 and comparing). The first table is seed 0 digit by digit.

# %%
study = seed_rows("normal", data)
rows = study[0]["rows"]
per_digit = rows["symbiote"]
show_markdown(markdown_table(
    per_digit,
    {"digit": "digit", "target_output_rate_before": "rate before", "target_output_rate":
     "rate after", "baseline_nontarget_accuracy": "other digits, A",
     "nontarget_accuracy": "other digits, A+B", "nontarget_accuracy_drop": "drop",
     "units_touched": "units touched", "touch_threshold": "smallest kept |gate - 1|",
     "units_changed": "units moved > 0.1"},
    {"target_output_rate_before": ".1%", "target_output_rate": ".1%",
     "baseline_nontarget_accuracy": ".1%", "nontarget_accuracy": ".1%",
     "nontarget_accuracy_drop": "+.2%", "touch_threshold": ".3f"},
))
unpruned_gap = max(abs(r["unpruned"][k] - r[k]) for row in study.values()
                   for r in row["rows"]["symbiote"]
                   for k in ("target_output_rate", "nontarget_accuracy"))
print("B as counted against full B on the test images, largest difference over digits and "
      f"seeds: {unpruned_gap:.2%}")

# %% [markdown]
# Over the five seeds, each method's mean over the ten digits (mean ± standard deviation over
# seeds). `best_ablation` is, in each seed, the ablation that seed chose on its *training*
# images (lowest target rate plus drop, each digit at B's budget), read on the test images.

# %%
summary = seed_summary(study)
methods = [m for m in summary if m != "primary"]
show_markdown(markdown_table(
    [{"method": m, "rate": mean_std(summary[m], "target_output_rate", ".2%"),
      "drop": mean_std(summary[m], "nontarget_accuracy_drop", "+.2%"),
      "units": mean_std(summary[m], "units", ".1f")} for m in methods],
    {"method": "method (mean over digits; mean ± std over 5 seeds)",
     "rate": "target output rate", "drop": "other digits' accuracy lost", "units": "units"},
))
ablations = [m for m in summary if m.split("_")[0] in ("selective", "attribution")]
choices = Counter(row["best_ablation_at_budget"] for row in study.values())
parameters = study[0]["parameters"]


def cost(s: dict) -> float:
    """One number to rank inhibitors: target rate plus accuracy lost on the other digits."""
    return s["target_output_rate"] + s["nontarget_accuracy_drop"]


def seed_costs(method: str) -> list[float]:
    """``cost`` of one method in each seed (mean over digits)."""
    return [cost(summarise(row["rows"][row["best_ablation_at_budget"]
                               if method == "best_ablation" else method]))
            for row in study.values()]


wins = {m: sum(a < b for a, b in zip(seed_costs("symbiote"), seed_costs(m), strict=True))
        for m in [*ablations, "trained_gates_symbiote_units", "trained_gates_attribution_units",
                  "conditional_symbiote"]}
show_markdown(
    f"Primary test accuracy {mean_std(summary['primary'], 'test_accuracy', '.4f')}. At B's "
    f"budget ({mean_std(summary['symbiote'], 'units', '.1f')} units, "
    f"{summary['symbiote']['units_touched_fraction']:.0%} of A's), the seeds chose "
    + ", ".join(f"`{m}` ({n} of {len(study)})" for m, n in choices.most_common())
    + f" on their training images; on the test images their choice has rate "
    f"{mean_std(summary['best_ablation'], 'target_output_rate', '.1%')} and drop "
    f"{mean_std(summary['best_ablation'], 'nontarget_accuracy_drop', '.1%')}. Gates trained "
    f"on B's own units reach rate "
    f"{mean_std(summary['trained_gates_symbiote_units'], 'target_output_rate', '.2%')} and "
    f"drop {mean_std(summary['trained_gates_symbiote_units'], 'nontarget_accuracy_drop', '.2%')}"
    f"; on the attribution units, "
    f"{mean_std(summary['trained_gates_attribution_units'], 'target_output_rate', '.2%')} and "
    f"{mean_std(summary['trained_gates_attribution_units'], 'nontarget_accuracy_drop', '.2%')};"
    f" B itself {mean_std(summary['symbiote'], 'target_output_rate', '.2%')} and "
    f"{mean_std(summary['symbiote'], 'nontarget_accuracy_drop', '.2%')}; the conditional B "
    f"{mean_std(summary['conditional_symbiote'], 'target_output_rate', '.2%')} and "
    f"{mean_std(summary['conditional_symbiote'], 'nontarget_accuracy_drop', '.2%')} with "
    f"{mean_std(summary['conditional_symbiote'], 'units', '.1f')} units and "
    f"{parameters['conditional_symbiote']:,} parameters against B's "
    f"{parameters['symbiote']:,}. Seeds in which B costs less (rate + drop) than the method: "
    + ", ".join(f"{m} {n}/{len(study)}" for m, n in wins.items()) + ".")

# %% [markdown]
# Ablating B's whole budget at once is far cruder than gating it: replacing a unit removes
# it outright, while B shades each gate by as much as it needs, and can also *open* gates
# (values above 1) to strengthen the competing digits. Whichever rule and replacement do
# best, they silence the digit only by taking a large share of the other digits' accuracy
# with it: the units that carry one digit carry the others too. Gates trained on B's own
# units come closest to B, yet lose more of the other digits than B does: with the same
# units, loss, batches and steps, a plain table of gates does not find as good an edit as
# B's small network, whose hidden layer is shared by all ten digits. Gates trained on the
# attribution units lose more still, so B's choice of units matters as well.
#
# Ablation may simply need fewer units. The sweep gives both rules every budget from one unit
# up, with the replacement that does not favour the digit (the mean over the other digits),
# and plots the trade-off each one reaches (seed 0; the symbiote and trained gates are
# plotted as their means over the seeds).

# %%
budgets = [1, 2, 4, 8, 16, 32]
sweep = ablation_budget_sweep(trained, data, budgets)
fig, ax = plt.subplots(figsize=(6.5, 4))
for method, points in sweep.items():
    ax.plot([p["nontarget_accuracy_drop"] for p in points],
            [p["target_output_rate"] for p in points], "o-", label=method.replace("_", " "))
    for p in points:
        ax.annotate(str(p["budget"]), (p["nontarget_accuracy_drop"], p["target_output_rate"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=7)
for method, marker in (("symbiote", "*"), ("trained_gates_symbiote_units", "P"),
                       ("trained_gates_attribution_units", "X")):
    ax.plot(summary[method]["nontarget_accuracy_drop"], summary[method]["target_output_rate"],
            marker, markersize=14 if marker == "*" else 9, label=method.replace("_", " "))
ax.set_xscale("symlog", linthresh=0.01)
ax.set_xlabel("accuracy lost on the other digits (mean over digits)")
ax.set_ylabel("target output rate")
ax.set_title("Silencing a digit: ablation budgets (numbers), trained gates, the symbiote")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# picked on the test images, which favours the ablation: the symbiote is held to the harder bar
best_ablation = min((dict(p, method=m) for m, points in sweep.items() for p in points),
                    key=cost)
print("best ablation setting on the test images (lowest rate + drop):", best_ablation)

# %% [markdown]
# No ablation budget comes close: removing the few units most tied to a digit barely moves
# its output rate, and removing enough to silence it wrecks the other digits. What B finds is
# not a small set of "digit units" but a pattern of small, graded changes spread over many
# units, some of them amplifications.
#
# ## Where do the inhibited digits go?
#
# Images of the inhibited digit must be classified as *something*. The rows below show where
# they land; they mostly move to the digit that shares the most strokes with them.

# %%
confusion = np.zeros((10, 10))
for row in per_digit:  # seed 0
    for target, share in row["confusion"].items():
        confusion[row["digit"], int(target)] = share
fig = heatmap(confusion, xlabel="A+B's answer", ylabel="inhibited digit (true label)",
              title="Where the images of the inhibited digit go", cmap="Blues", center=None,
              colorbar_label="share of the digit's test images", annotate=True,
              figsize=(8, 6.5))
plt.show()

# %% [markdown]
# ## Checks and record

# %%
sym, mask = summary["symbiote"], summary["logit_mask"]
rate_by_digit, worst_rate = per_digit_over_seeds(study, "symbiote", "target_output_rate")
drop_by_digit, worst_drop = per_digit_over_seeds(study, "symbiote", "nontarget_accuracy_drop")
print("per digit, mean over seeds: rate", [f"{v:.2%}" for v in rate_by_digit])
print("per digit, mean over seeds: drop", [f"{v:.2%}" for v in drop_by_digit])
print(f"worst digit in any seed: rate {max(worst_rate):.2%}, drop {max(worst_drop):.2%}")
over = [d for d, v in zip(data.classes, drop_by_digit, strict=True) if v > 0.01]
if over:
    verdict = ("is missed for the accuracy: " + ", ".join(
        f"digit {d} costs the others {drop_by_digit[d]:.2%}" for d in over)
        + " (means over seeds). B's loss averages over the digits, so it can pay more on the "
        "digits that share the most strokes with others: the goal is met on average, not "
        "digit by digit")
else:
    verdict = "holds for the accuracy as well: no digit costs the others more than a point"
show_markdown(
    "The goal of at most 1% target rate and at most one point lost *for every digit* holds "
    f"for the rate (largest mean over seeds {max(rate_by_digit):.2%}) and {verdict}. The "
    f"worst single seed loses {max(worst_drop):.2%} on one digit.")
assert identity_gap == 0.0
assert sym["target_output_rate"] <= 0.01, sym
assert sym["nontarget_accuracy_drop"] <= 0.01, sym
assert max(rate_by_digit) <= 0.01  # every digit silenced (mean over the seeds)
assert max(drop_by_digit) <= 0.02  # ... at under two points each (the text lists any over one)
assert mask["target_output_rate"] == 0.0
# few of a digit's own images keep its label (seed 0): the rate goal, 1% of all test images,
# is about a tenth of one digit's images
assert confusion.diagonal().max() <= 0.1, confusion.diagonal()
assert unpruned_gap <= 0.01  # counted on the training images, it holds on the test ones
for row in study.values():  # one budget: every ablation gets B's units, digit by digit
    assert all(r["units"] == b["units_touched"] for m in ablations
               for r, b in zip(row["rows"][m], row["rows"]["symbiote"], strict=True))
# the symbiote beats every ablation at its budget and at every smaller one, on the combined
# cost, and the gates trained on the attribution units (means over the seeds)
assert all(cost(sym) < cost(summary[m]) for m in [*ablations, "best_ablation"])
assert cost(sym) < cost(best_ablation)
assert cost(sym) < cost(summary["trained_gates_attribution_units"])

record = mi.write_result(
    "symbiote-normal",
    {f"{method}.{key}": value for method, s in summary.items() if method != "primary"
     for key, value in s.items()}
    | {"per_digit_target_output_rate": rate_by_digit,
       "per_digit_nontarget_accuracy_drop": drop_by_digit,
       "per_digit_worst_target_output_rate": worst_rate,
       "per_digit_worst_nontarget_accuracy_drop": worst_drop,
       "digits_over_one_point": over,
       "per_digit_target_output_rate_before": [r["target_output_rate_before"]
                                               for r in per_digit],
       "per_digit_confusion": [r["confusion"] for r in per_digit],
       "primary_test_accuracy": summary["primary"]["test_accuracy"],
       "primary_test_accuracy_std": summary["primary"]["test_accuracy_std"],
       "best_ablation": best_ablation, "best_ablation_at_budget": choices.most_common(1)[0][0],
       "best_ablation_choices": dict(choices), "seed_wins": wins,
       "parameters.symbiote": parameters["symbiote"],
       "parameters.conditional_symbiote": parameters["conditional_symbiote"],
       "unpruned_gap": unpruned_gap},
    seeds=list(SEEDS),
    data_source=data.source,
    title="SymbioteNet, normal condition",
    config=trained.config.as_dict(),
    started=started,
)
print(f"result record written to {record}")
