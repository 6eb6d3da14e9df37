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
# # Symbiosis under polysemantic conditions
#
# In the [normal condition](../symbiosis_normal/) the primary CNN has 152 hidden units for ten
# digits, and a symbiote can silence any one digit while costing the others under a point of
# accuracy. Does that survive a primary whose units each answer to several digits? Three
# other primaries ask it in three different ways, and they must be kept apart:
#
# * **polysemantic**: the normal CNN (same architecture, data, optimiser and epochs) trained
#   with one extra loss term: a penalty on its hidden units' *class selectivity*, the index
#   Leavitt and Morcos (2021) used to show that networks need few class-selective units. The
#   penalty's weight was chosen on validation images carved from the training split, by a
#   rule fixed before the run: the strongest of five weights (0, 0.1, 0.3, 1, 3) whose mean
#   validation accuracy over three seeds stays within half a point of the unpenalised
#   network's (`tools/choose_selectivity_penalty.py`; chosen: 0.3). So it is polysemantic by
#   a measured means, at matched accuracy, and nothing else about the network changes.
# * **mixed**: the normal CNN itself, same weights, read in a random orthonormal basis at
#   every hidden layer (`mix_basis`). Each unit the symbiote and the baselines can act on is
#   a mixture of all of that layer's units, yet the network computes exactly the same
#   function, so the accuracy matches image for image. It changes the units and nothing
#   else. It is not superposition, since the layer keeps as many directions as units.
# * **narrow**: a CNN with too few units (`cnn-poly`: 4 and 8 convolution channels and a
#   bottleneck of 8 hidden units, 20 in all). Elhage et al. ("Toy Models of Superposition",
#   2022) showed that networks short of units pack several features into each. It is the
#   analogue of superposition, but it is confounded with accuracy: over five seeds the
#   narrow CNN is about twenty points worse than the normal one on average, and fragile (the
#   table below gives every seed's accuracy).
#
# We measure how polysemantic each primary is, train the same symbiote on each, put every
# baseline beside it at its budget, and then try a symbiote that reads A.

# %%
import time
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import torch

import mechinterp as mi
from mechinterp.reporting import markdown_table, mean_std, show_markdown
from mechinterp.symbiote import (
    class_means,
    class_sharing,
    gate_variation,
    symbiote_for,
    unit_class_count,
    unit_class_entropy,
)
from mechinterp.symbiote.experiment import SELECTIVITY_PENALTY, primary_for
from mechinterp.symbiote.network import SymbioteConfig
from mechinterp.symbiote.seeds import SEEDS, per_digit_over_seeds, seed_rows, seed_summary

started = time.perf_counter()
data = mi.load_digits()
conditions = ("normal", "polysemantic", "mixed", "narrow")
primaries = {c: primary_for(c, data, seed=0) for c in conditions}
accuracy = {c: t.test_accuracy for c, t in primaries.items()}
# the mixed basis computes the normal primary's function; measure its accuracy, do not assume it
with torch.no_grad():
    accuracy["mixed"] = (primaries["mixed"].model(data.test_images).argmax(-1)
                         == data.test_labels).float().mean().item()
for name, primary in primaries.items():
    model = primary.model
    print(f"{name:13s} primary {primary.arch:16s} {model.n_parameters():7,d} parameters, "
          f"{sum(model.unit_counts().values()):4d} hidden units, test accuracy {accuracy[name]:.4f}")
print(f"selectivity penalty of the polysemantic primary: {SELECTIVITY_PENALTY}")

# %% [markdown]
# ## Measuring polysemanticity
#
# For each unit take its mean activation on the training images of each digit and measure
# every digit's mean from the smallest of the ten. The unit *answers to* a digit when that
# digit's mean is at least half way from the weakest digit to the strongest; a unit tuned to
# one digit answers to 1, a unit that answers to every digit alike to 9 (all but its weakest,
# which is the zero point; `unit_class_count`). Measuring from the weakest digit lets the count read units that take
# negative values, as mixed ones do. The second measure spreads the same means into a
# distribution over digits and takes its entropy, divided by log 10 (`unit_class_entropy`:
# 0 for one digit, 1 for all alike). Both are coarse proxies: a unit can answer to several
# digits through one shared feature, such as a vertical stroke. The histograms and layer
# tables are for seed 0's primaries; the mean over all units is given for every seed further
# down. The penalty acts on the hidden linear layer (`fc1`) only, so that is where the
# polysemantic primary should differ.

# %%
means = {name: class_means(t.model, data) for name, t in primaries.items()}  # one pass each
counts = {name: unit_class_count(t.model, data, means=means[name]) for name, t in primaries.items()}
entropies = {name: unit_class_entropy(t.model, data, means=means[name])
             for name, t in primaries.items()}
layers = list(counts["normal"])
colors = {"normal": "tab:blue", "polysemantic": "tab:red", "mixed": "tab:orange",
          "narrow": "tab:green"}
fig, axes = plt.subplots(1, len(layers), figsize=(11, 3), sharey=False)
for ax, layer in zip(axes, layers, strict=True):
    for name in conditions:
        values = counts[name][layer]
        values = values[~torch.isnan(values)].numpy()
        ax.hist(values, bins=np.arange(0.5, 11.5), alpha=0.45, color=colors[name],
                density=True, label=f"{name} ({len(values)} units)")
    ax.set_title(layer)
    ax.set_xlabel("digits a unit answers to")
    ax.set_xticks(range(1, 11))
axes[0].set_ylabel("share of units")
axes[-1].legend(fontsize=8)
fig.suptitle("How many digits does each unit answer to? (seed 0)")
fig.tight_layout()
plt.show()

mean_count = {name: {layer: float(np.nanmean(v.numpy())) for layer, v in e.items()}
              for name, e in counts.items()}
mean_entropy = {name: {layer: float(np.nanmean(v.numpy())) for layer, v in e.items()}
                for name, e in entropies.items()}
show_markdown(markdown_table(
    [{"layer": layer, **{f"count.{c}": mean_count[c][layer] for c in conditions},
      **{f"entropy.{c}": mean_entropy[c][layer] for c in conditions}} for layer in layers],
    {"layer": "layer (seed 0)"} | {f"count.{c}": f"digits per unit, {c}" for c in conditions}
    | {f"entropy.{c}": f"class entropy, {c}" for c in conditions},
    {f"count.{c}": ".2f" for c in conditions} | {f"entropy.{c}": ".3f" for c in conditions}))

# %%
fc = layers[-1]
show_markdown(
    f"The penalty does its work in the layer it acts on: seed 0's polysemantic primary has "
    f"hidden units (`{fc}`) that answer to {mean_count['polysemantic'][fc]:.1f} digits on "
    f"average, against {mean_count['normal'][fc]:.1f} in the normal CNN, while in the first "
    f"convolution, which the penalty does not act on directly, the counts are "
    f"{mean_count['polysemantic'][layers[0]]:.1f} and {mean_count['normal'][layers[0]]:.1f}. "
    f"The class entropy moves the same way but over a narrower range "
    f"({mean_entropy['normal'][fc]:.3f} to {mean_entropy['polysemantic'][fc]:.3f}): it is "
    f"pulled up by the small answers every unit gives to every digit. Reading the normal CNN "
    f"in a mixed basis raises the hidden layer's count to {mean_count['mixed'][fc]:.1f}, "
    f"{(mean_count['mixed'][fc] - mean_count['normal'][fc]) / (mean_count['polysemantic'][fc] - mean_count['normal'][fc]):.0%} "
    f"of the penalty's rise; the narrow CNN's eight hidden units answer to "
    f"{mean_count['narrow'][fc]:.1f} digits each.")

# %% [markdown]
# What a bottleneck changes is whether each digit still has units *of its own*. Two
# layer-level measures show it: how many digits are not the strongest response of any unit,
# and how close the two most similar digits' mean activation patterns are (cosine
# similarity).

# %%
sharing = {name: class_sharing(t.model, data, means=means[name]) for name, t in primaries.items()}
show_markdown(markdown_table(
    [{"layer": layer, **{f"{c}.{k}": v for c in conditions for k, v in sharing[c][layer].items()}}
     for layer in layers],
    {"layer": "layer"} | {f"{c}.classes_without_own_unit": f"digits without a unit ({c})"
                          for c in conditions}
    | {f"{c}.max_class_cosine": f"closest pair, cosine ({c})" for c in conditions},
    {f"{c}.{k}": f for c in conditions
     for k, f in (("classes_without_own_unit", ".0f"), ("max_class_cosine", ".2f"))}))

# %% [markdown]
# A rotation leaves the digits' activation patterns exactly as far apart as before (cosines
# do not depend on the basis).

# %%
last = layers[-1]
own = {c: sharing[c][last]["classes_without_own_unit"] for c in conditions}
closest = {c: sharing[c][last]["max_class_cosine"] for c in conditions}
crowded = own["polysemantic"] > own["normal"] or closest["polysemantic"] > closest["normal"] + 0.05
show_markdown(
    ("The selectivity penalty does not crowd them either: units that each answer to more "
     "digits can still, together, tell the digits apart. " if not crowded else
     "The selectivity penalty crowds them somewhat: ")
    + f"In `{last}` {own['polysemantic']:.0f} digits lack a hidden unit that answers to them "
    f"most (normal CNN: {own['normal']:.0f}) and the closest pair of digits sits at cosine "
    f"{closest['polysemantic']:.2f} (normal: {closest['normal']:.2f}). In the bottleneck "
    f"{own['narrow']:.0f} digits lose their own units and the closest pair comes to "
    f"{closest['narrow']:.2f}. So the two polysemantic primaries differ in kind: one has units "
    "that are individually unselective in a layer with room to spare, the other has too "
    "little room.")

# %% [markdown]
# ## The fixed symbiote and every baseline, per condition
#
# Each condition gets the full comparison of the normal page: B counted by the units it needs
# (`units_touched`, found on the training images), every ablation and both trained-gates
# baselines at that budget, the best ablation chosen on the training images, for five seeds
# of A and B (seed `s` trains the primary, both symbiotes and the trained gates). On the quick
# profile seeds 1 to 4 come from the stored seed study. The normal page recomputes seed 0's
# whole row and checks it against the study; here, for the polysemantic and narrow
# conditions, seed 0's primary and both symbiotes are retrained and evaluated on the units the
# study counted for them, and must match it too (the baselines' code is the same for every
# condition, so the normal page's full check covers it). The mixed condition is the normal
# primary, checked on the normal page, read through `mix_basis`, whose exactness the tests
# check; its stored rows are used as they are.

# %%
# five seeds of A and B per condition, seed 0 of the polysemantic and narrow conditions
# checked at depth "training" (A and both symbiotes recomputed, the stored baselines kept)
studies = {c: seed_rows(c, data, verify=(0,) if c in ("polysemantic", "narrow") else (),
                        depth="training") for c in conditions}
summary = {c: seed_summary(studies[c]) for c in conditions}
choices = {c: Counter(row["best_ablation_at_budget"] for row in studies[c].values())
           for c in conditions}


def cost(s: dict) -> float:
    """One number to rank inhibitors: target rate plus accuracy lost on the other digits."""
    return s["target_output_rate"] + s["nontarget_accuracy_drop"]


# %% [markdown]
# ## Four primaries, two symbiotes
#
# The table puts every primary beside the fixed symbiote and a second instrument, a symbiote
# that reads A. The fixed symbiote receives only the digit, so its edit is one table of gates
# applied to every image alike. The conditional symbiote also reads A's first convolution on the image at
# hand (average-pooled to 7 x 7 and scaled by each channel's typical activation) and returns
# gates for that image. It is trained with the same loss, batches and steps, and counted and
# evaluated the same way. It imports one thing more, a linear reader of A's activations, and
# its parameter count says how much.

# %%
parameters = {kind: {c: studies[c][0]["parameters"][kind] for c in conditions}
              for kind in ("symbiote", "conditional_symbiote")}
show_markdown(markdown_table(
    [{"condition": c, "accuracy": mean_std(summary[c]["primary"], "test_accuracy", ".3f"),
      "polysemanticity": mean_std(summary[c]["primary"], "polysemanticity", ".2f"),
      "class_entropy": mean_std(summary[c]["primary"], "class_entropy", ".3f"),
      **{f"{kind}.{k}": mean_std(summary[c][kind], k, f) for kind in parameters
         for k, f in (("target_output_rate", ".2%"), ("nontarget_accuracy_drop", "+.2%"),
                      ("units", ".1f"))},
      "fixed_params": parameters["symbiote"][c],
      "conditional_params": parameters["conditional_symbiote"][c]} for c in conditions],
    {"condition": "condition (mean ± std over 5 seeds)", "accuracy": "A's test accuracy",
     "polysemanticity": "digits per unit", "class_entropy": "class entropy",
     "symbiote.target_output_rate": "fixed B: rate", "symbiote.nontarget_accuracy_drop":
     "fixed B: drop", "symbiote.units": "fixed B: units", "fixed_params": "fixed B: params",
     "conditional_symbiote.target_output_rate": "conditional B: rate",
     "conditional_symbiote.nontarget_accuracy_drop": "conditional B: drop",
     "conditional_symbiote.units": "conditional B: units",
     "conditional_params": "conditional B: params"},
    {"fixed_params": ",d", "conditional_params": ",d"}))
print("A's test accuracy per seed:",
      {c: [round(row["primary_test_accuracy"], 3) for row in studies[c].values()]
       for c in conditions})

# %%
poly_seeds = [row["polysemanticity"] for row in studies["polysemantic"].values()]
normal_seeds = [row["polysemanticity"] for row in studies["normal"].values()]
gaps = [b["primary_test_accuracy"] - a["primary_test_accuracy"] for a, b in
        zip(studies["polysemantic"].values(), studies["normal"].values(), strict=True)]
accuracy_gap = (summary["normal"]["primary"]["test_accuracy"]
                - summary["polysemantic"]["primary"]["test_accuracy"])
matched = accuracy_gap <= 0.01
separated = min(poly_seeds) > max(normal_seeds)
late = sum(g > 0.01 for g in gaps)  # seeds more than a point below their normal twin
units_share = {c: summary[c]["symbiote"]["units_touched_fraction"] for c in conditions}
poly_cheaper = (summary["polysemantic"]["symbiote"]["nontarget_accuracy_drop"]
                <= summary["normal"]["symbiote"]["nontarget_accuracy_drop"])
show_markdown(
    ("**Matched accuracy, more polysemantic.** " if matched and separated else
     "**More polysemantic, accuracy not matched.** " if separated else
     "**Not clearly more polysemantic.** ")
    + f"Over the five seeds the polysemantic primary's test accuracy is "
    f"{100 * abs(accuracy_gap):.1f} points {'below' if accuracy_gap >= 0 else 'above'} the "
    "normal CNN's on average "
    + ("(within the point the comparison asks for" if matched else
       "(**more than the point the comparison asks for**")
    + f"; seed by seed {', '.join(f'{-100 * g:+.1f}' for g in gaps)} points"
    + (f"; {late} of {len(gaps)} seeds {'is' if late == 1 else 'are'} more than a point lower"
       if late else "")
    + "), and its units answer to "
    f"{mean_std(summary['polysemantic']['primary'], 'polysemanticity', '.2f')} digits "
    f"against {mean_std(summary['normal']['primary'], 'polysemanticity', '.2f')} "
    + ("(every seed of it above every seed of the normal CNN)." if separated else
       "(the two ranges overlap over seeds).")
    + " On it the fixed symbiote silences each digit "
    + ("at least as cheaply as" if poly_cheaper else "about as cheaply as")
    + " on the normal CNN (other digits lose "
    f"{mean_std(summary['polysemantic']['symbiote'], 'nontarget_accuracy_drop', '+.2%')}, "
    f"against {mean_std(summary['normal']['symbiote'], 'nontarget_accuracy_drop', '+.2%')}), "
    f"but it needs more of the network: {units_share['polysemantic']:.0%} of the units "
    f"against {units_share['normal']:.0%}.")
own_units_gap = {c: summary[c]["trained_gates_symbiote_units"]["nontarget_accuracy_drop"]
                 - summary[c]["symbiote"]["nontarget_accuracy_drop"]
                 for c in ("normal", "polysemantic")}
show_markdown(
    "So units that answer to many digits do not make one digit expensive to remove; they make "
    "it *spread out*. Each digit is carried by more units, each a little, and B has to gate "
    "more of them, but since the layer has room and the digits stay apart, the gates that "
    "remove one digit need not hurt the others. Gates trained by gradient on B's own units, "
    "the search without the symbiote, cost the other digits "
    f"{own_units_gap['polysemantic']:+.2%} of accuracy compared with B on this primary, "
    f"against {own_units_gap['normal']:+.2%} on the normal CNN (the tables below).")

# %% [markdown]
# Mixing the units does not defeat the fixed symbiote either: on the mixed primary it
# silences each digit about as cheaply as on the normal one, with a similar number of units.
# A gate per unit in a rotated basis is a different edit from one in the original basis, and
# B finds another that works, because each digit still has many directions to be reached
# through. The narrow primary is where a fixed edit fails: with every digit written over the
# same few units, any table of gates that removes one digit damages others, and B's
# preservation term then holds it back from removing the digit fully (the numbers follow).
# The conditional symbiote removes most of that damage: reading the image, it can dim the
# shared units on images of the inhibited digit and leave them alone on the others.
#
# Is the narrow result an artefact of the preservation weight, which was chosen on the normal
# CNN? The same rule on the narrow CNN's validation fifth
# (`tools/choose_symbiote_preservation.py --condition narrow`, three seeds, quick profile)
# says no: with weight 1 the worst digit still reaches a 7.9% target rate while costing the
# others up to 21.7 points; with 3, 10 and 30 the worst drop falls to 8.3, 2.6 and 2.5 points
# while the target rate rises to 36-38%. No weight keeps both within the goal, so the pages
# keep one weight for every condition.

# %%
fixed_n, cond_n = summary["narrow"]["symbiote"], summary["narrow"]["conditional_symbiote"]
show_markdown(
    f"On the narrow CNN the fixed symbiote leaves the digit on "
    f"{fixed_n['target_output_rate']:.1%} of the test images and costs the other digits "
    f"{fixed_n['nontarget_accuracy_drop']:+.1%} (normal CNN: "
    f"{summary['normal']['symbiote']['target_output_rate']:.2%} and "
    f"{summary['normal']['symbiote']['nontarget_accuracy_drop']:+.2%}); the conditional "
    f"symbiote leaves it on {cond_n['target_output_rate']:.1%} at "
    f"{cond_n['nontarget_accuracy_drop']:+.1%}"
    + ("." if cond_n["target_output_rate"] <= 0.01 else
       ", so neither reaches the 1% target on this primary."))

# %% [markdown]
# That is not free. To decide per image, B has to recognise the digit from A's first layer,
# which makes it a classifier in its own right; its reader alone has more parameters than
# the whole narrow primary. The comparison is between instruments that import different
# amounts, and the table counts them.
#
# The full tables, one per condition (the normal condition's baselines are on the
# [normal page](../symbiosis_normal/)):

# %%
labels = {"symbiote": "**fixed symbiote**", "conditional_symbiote": "**conditional symbiote**"}
for c in ("polysemantic", "mixed", "narrow"):
    order = ["symbiote", "conditional_symbiote"] + [m for m in summary[c]
                                                    if m not in labels and m != "primary"]
    show_markdown(f"**{c}** (A's test accuracy "
                  f"{mean_std(summary[c]['primary'], 'test_accuracy', '.3f')}; ablation chosen "
                  "on the training images: "
                  + ", ".join(f"`{m}` in {n} of {len(SEEDS)} seeds"
                              for m, n in choices[c].most_common()) + ")")
    show_markdown(markdown_table(
        [{"method": labels.get(m, m),
          **{k: mean_std(summary[c][m], k, f) for k, f in (
              ("target_output_rate", ".2%"), ("nontarget_accuracy_drop", "+.2%"),
              ("units", ".1f"))}} for m in order],
        {"method": f"method ({c}; mean over digits, mean ± std over seeds)",
         "target_output_rate": "target output rate", "nontarget_accuracy_drop": "drop",
         "units": "units used"},
    ))

# %%
digits = list(data.classes)
drops = {(c, kind): per_digit_over_seeds(studies[c], kind, "nontarget_accuracy_drop")[0]
         for c in conditions for kind in ("symbiote", "conditional_symbiote")}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
width = 0.2
for i, name in enumerate(conditions):
    offset = (i - 1.5) * width
    for ax, kind, label in ((axes[0], "symbiote", "fixed"),
                            (axes[1], "conditional_symbiote", "conditional")):
        ax.bar(np.array(digits) + offset, [100 * v for v in drops[name, kind]], width,
               label=f"{name}, {label}", color=colors[name])
axes[0].set_ylabel("accuracy lost on other digits\n(points, mean over seeds)")
axes[0].set_title("fixed symbiote")
axes[1].set_title("conditional symbiote")
for ax in axes:
    ax.set_xlabel("inhibited digit")
    ax.set_xticks(digits)
    ax.legend(fontsize=8)
axes[1].set_ylim(axes[0].get_ylim())
fig.suptitle("The price of inhibition, per digit")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The conditional symbiote's map
#
# Where does the conditional symbiote use its freedom? For the digit the fixed symbiote finds
# costliest on the narrow primary (mean over seeds), the plot shows, for
# seed 0, each unit's gate averaged over the test images of that digit and over the other
# images, and how much the gate varies from image to image.

# %%
costliest = max(digits, key=lambda d: drops["narrow", "symbiote"][d])
variation = gate_variation(symbiote_for("narrow", data, seed=0, kind="conditional"), data,
                           costliest)
fig, axes = plt.subplots(1, len(variation), figsize=(11, 3.2),
                         gridspec_kw={"width_ratios": [len(v["std"]) for v in variation.values()]})
for ax, (layer, v) in zip(axes, variation.items(), strict=True):
    units = np.arange(len(v["std"]))
    ax.bar(units - 0.2, v["mean_target"].numpy(), 0.4, label=f"images of {costliest}")
    ax.bar(units + 0.2, v["mean_other"].numpy(), 0.4, label="other images")
    ax.errorbar(units + 0.2, v["mean_other"].numpy(), yerr=v["std"].numpy(), fmt="none",
                ecolor="black", capsize=2, label="std over all images")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_title(layer)
    ax.set_xlabel("unit")
axes[0].set_ylabel("gate")
axes[-1].legend(fontsize=7)
fig.suptitle(f"Conditional symbiote on the narrow primary, inhibiting {costliest}")
fig.tight_layout()
plt.show()
split = {layer: float((v["mean_target"] - v["mean_other"]).abs().max()) for layer, v in
         variation.items()}
print("largest gap between a unit's gate on the digit's images and on the others:",
      {k: round(v, 3) for k, v in split.items()})

# %% [markdown]
# The conditional symbiote closes shared units hard on images of the inhibited digit and
# keeps them near 1 elsewhere: the gap between the two bars is the per-image decision a
# fixed table cannot make.
#
# ## Checks and record

# %%
mixed, narrow, poly = summary["mixed"], summary["narrow"], summary["polysemantic"]
# the mixed basis has the normal CNN's accuracy seed by seed
assert all(abs(a["primary_test_accuracy"] - b["primary_test_accuracy"]) <= 0.01
           for a, b in zip(studies["mixed"].values(), studies["normal"].values(), strict=True))
# the penalty makes the hidden layer answer to more digits, and the whole primary measures
# more polysemantic on average over seeds, by both measures (the text states the accuracy gap
# and whether every seed separates)
assert mean_count["polysemantic"][last] > mean_count["normal"][last] + 0.5
assert poly["primary"]["polysemanticity"] > mixed["primary"]["polysemanticity"]
assert poly["primary"]["polysemanticity"] > summary["normal"]["primary"]["polysemanticity"] + 0.5
assert poly["primary"]["class_entropy"] > summary["normal"]["primary"]["class_entropy"]
assert accuracy_gap < 0.03  # far from the narrow CNN's twenty points, matched or not
# the bottleneck, not the penalty, takes digits' own units away and crowds their patterns
assert all(sharing["narrow"][last]["classes_without_own_unit"]
           > sharing[c][last]["classes_without_own_unit"] for c in ("normal", "polysemantic"))
assert sharing["narrow"][last]["max_class_cosine"] > sharing["normal"][last]["max_class_cosine"]
assert sharing["polysemantic"][last]["max_class_cosine"] < sharing["narrow"][last]["max_class_cosine"]
# on the polysemantic primary B needs more units but loses no more accuracy (within a point)
assert poly["symbiote"]["target_output_rate"] <= 0.01, poly["symbiote"]
assert (poly["symbiote"]["nontarget_accuracy_drop"]
        <= summary["normal"]["symbiote"]["nontarget_accuracy_drop"] + 0.01)
assert units_share["polysemantic"] > units_share["normal"]
# the fixed symbiote copes with mixed units and not with the bottleneck (means over seeds)
assert mixed["symbiote"]["target_output_rate"] <= 0.01, mixed["symbiote"]
assert mixed["symbiote"]["nontarget_accuracy_drop"] <= 0.015, mixed["symbiote"]
assert cost(narrow["symbiote"]) > 5 * cost(summary["normal"]["symbiote"])  # it fails here
assert (narrow["symbiote"]["nontarget_accuracy_drop"]
        > 3 * summary["normal"]["symbiote"]["nontarget_accuracy_drop"])
# reading A mends most of the narrow primary's collateral damage, at a lower total cost
assert cost(narrow["conditional_symbiote"]) < cost(narrow["symbiote"])
assert (narrow["conditional_symbiote"]["nontarget_accuracy_drop"]
        < 0.5 * narrow["symbiote"]["nontarget_accuracy_drop"])
assert max(split.values()) > 0.1
# every ablation at the budget costs more than the fixed symbiote where it works; gates
# trained on the same units are reported, not asserted (on the polysemantic primary the ones
# on B's own units come out slightly ahead)
for c in ("polysemantic", "mixed"):
    assert all(cost(summary[c]["symbiote"]) < cost(summary[c][m]) for m in summary[c]
               if m not in ("symbiote", "conditional_symbiote", "logit_mask", "primary")
               and not m.startswith("trained_gates")), c
ahead = {c: [m for m in summary[c] if m.startswith("trained_gates")
             and cost(summary[c][m]) < cost(summary[c]["symbiote"])]
         for c in ("polysemantic", "mixed", "narrow")}
show_markdown(
    "Gates trained by gradient with B's loss cost less (target rate plus accuracy lost, means "
    "over seeds) than the fixed symbiote on: "
    + ("; ".join(f"the {c} primary ({', '.join(f'`{m}`' for m in ms)})"
                 for c, ms in ahead.items() if ms) or "no primary")
    + ". Where they do, what B's search adds over knowing the units is nothing on this "
    "measure: the units are the finding, the gates on them can be fitted directly.")

record = mi.write_result(
    "symbiote-polysemantic",
    {f"{c}.{key}": value for c in conditions for key, value in summary[c]["symbiote"].items()}
    | {f"conditional.{c}.{key}": value for c in conditions
       for key, value in summary[c]["conditional_symbiote"].items()}
    | {f"baseline.{c}.{m}.{k}": v for c in conditions for m, s in summary[c].items()
       for k, v in s.items() if m not in ("symbiote", "conditional_symbiote", "primary")}
    | {f"mean_entropy.{c}.{layer}": v for c, e in mean_entropy.items() for layer, v in e.items()}
    | {f"mean_count.{c}.{layer}": v for c, e in mean_count.items() for layer, v in e.items()}
    | {f"{measure}.{c}{tail}": summary[c]["primary"][f"{measure}{tail}"]
       for measure in ("polysemanticity", "class_entropy") for c in conditions
       for tail in ("", "_std")}
    | {f"polysemanticity_per_seed.{c}": [row["polysemanticity"] for row in studies[c].values()]
       for c in conditions}
    | {"selectivity_penalty": SELECTIVITY_PENALTY}
    | {f"sharing.{c}.{layer}.{k}": v for c, per in sharing.items() for layer, d in per.items()
       for k, v in d.items()}
    | {f"per_digit.{c}.{kind}.{k}": per_digit_over_seeds(studies[c], kind, k)[0]
       for c in conditions for kind in ("symbiote", "conditional_symbiote")
       for k in ("nontarget_accuracy_drop", "units_touched_fraction", "target_output_rate")}
    | {f"best_ablation_at_budget.{c}": choices[c].most_common(1)[0][0] for c in conditions}
    | {f"best_ablation_choices.{c}": dict(choices[c]) for c in conditions}
    | {f"primary_test_accuracy.{c}{tail}": summary[c]["primary"][f"test_accuracy{tail}"]
       for c in conditions for tail in ("", "_std")}
    | {f"primary_test_accuracy_per_seed.{c}": [row["primary_test_accuracy"]
                                               for row in studies[c].values()]
       for c in conditions}
    | {f"parameters.{kind}.{c}": n for kind, per in parameters.items() for c, n in per.items()}
    | {"conditional_gate_gap": max(split.values()), "conditional_map_digit": costliest},
    seeds=list(SEEDS),
    data_source=data.source,
    title="SymbioteNet, polysemantic, mixed-basis and narrow conditions",
    config=SymbioteConfig().as_dict(),
    started=started,
)
print(f"result record written to {record}")
