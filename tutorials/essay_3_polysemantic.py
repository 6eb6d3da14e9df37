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
# # 3. Polysemantic conditions
#
# *Part of the essay [Mechanistic interpretability through the lens of Symbiotic
# Networks](../). The method tutorial behind this section:
# [symbiosis under polysemantic conditions](../../tutorials/symbiosis_polysemantic/).*
#
# The symbiote of the [previous section](../essay_2_symbiote/) had an easy subject: a CNN with
# 152 hidden units for ten digits, enough for each digit to have units of its own. Real
# networks are rarely so generous. When a network has to represent more features than it has
# units, it packs several features into each unit, and a single unit then answers to several
# unrelated things. Olah and colleagues met such *polysemantic* neurons throughout their
# circuits work, and Elhage et al. (2022), "Toy Models of Superposition", showed how and when
# networks learn to overlap features this way. Polysemanticity is the main obstacle to
# reading a network one unit at a time.
#
# What does it do to an instrument that acts on units? To find out, the same symbiote is
# trained on a deliberately narrow primary: 4 and 8 convolution channels and a bottleneck of
# 8 hidden units, 20 units in all, against the normal CNN's 152. The narrow network is also
# less accurate, so a control sits beside it: the normal CNN read in a random orthonormal
# basis at every layer. It computes exactly the same function, at exactly the same accuracy,
# but every unit the symbiote can touch is a mixture of the original units.

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np

import mechinterp as mi
from mechinterp.essay import provenance_note, require_result
from mechinterp.reporting import markdown_table, mean_std, show_markdown
from mechinterp.symbiote import symbiote_for

record = require_result("symbiote-polysemantic", "symbiosis_polysemantic")
m = record["metrics"]
data = mi.load_digits()
symbiotes = {c: symbiote_for(c, data, seed=0) for c in ("normal", "polysemantic", "mixed")}
units = {c: t.symbiote.n_units for c, t in symbiotes.items()}

# %% [markdown]
# ## Measuring how shared the units are
#
# The obvious measure is per unit: how evenly a unit's mean activation spreads over the ten
# digits (an entropy, 0 for a unit that answers to one digit, 1 for one that answers to all
# alike). It barely separates the three networks, because even in the wide CNN a ReLU unit
# responds to strokes that many digits share, and a random mixture of units in a layer
# where the digits form separate clusters still points at a few of them. So this essay has
# no primary that is both as accurate as the normal one and clearly more polysemantic by a
# per-unit measure: the mixed basis matches the accuracy but barely moves the measure. The
# bottleneck's effect shows up at the level of the layer: how many digits are *not* the
# strongest response of any unit (they have no unit of their own), and how similar the two
# most alike digits' activation patterns are.

# %% tags=["hide-input"]
layers = ["conv1.hook_post", "conv2.hook_post", "fc1.hook_post"]
rows = []
for layer in layers:
    rows.append({"layer (seed 0)": layer.split(".")[0],
                 "entropy, normal": m[f"mean_entropy.normal.{layer}"],
                 "entropy, mixed": m[f"mean_entropy.mixed.{layer}"],
                 "entropy, narrow": m[f"mean_entropy.polysemantic.{layer}"],
                 "digits without a unit, normal":
                     m[f"sharing.normal.{layer}.classes_without_own_unit"],
                 "digits without a unit, narrow":
                     m[f"sharing.polysemantic.{layer}.classes_without_own_unit"],
                 "closest digit pair, normal": m[f"sharing.normal.{layer}.max_class_cosine"],
                 "closest digit pair, narrow":
                     m[f"sharing.polysemantic.{layer}.max_class_cosine"]})
show_markdown(markdown_table(rows, list(rows[0]), {
    "entropy, normal": ".3f", "entropy, mixed": ".3f", "entropy, narrow": ".3f",
    "digits without a unit, normal": ".0f", "digits without a unit, narrow": ".0f",
    "closest digit pair, normal": ".2f", "closest digit pair, narrow": ".2f"}))
fc = "fc1.hook_post"
show_markdown(
    f"In the hidden layer that feeds the output, "
    f"{m[f'sharing.normal.{fc}.classes_without_own_unit']:.0f} digit of the wide CNN lacks a "
    f"unit of its own, against {m[f'sharing.polysemantic.{fc}.classes_without_own_unit']:.0f} "
    f"in the bottleneck, and the closest pair of digits moves from cosine "
    f"{m[f'sharing.normal.{fc}.max_class_cosine']:.2f} to "
    f"{m[f'sharing.polysemantic.{fc}.max_class_cosine']:.2f} (seed 0). The narrow network "
    f"classifies {mean_std(m, 'primary_test_accuracy.polysemantic', '.1%')} of test digits "
    f"correctly over five seeds (wide: {mean_std(m, 'primary_test_accuracy.normal', '.1%')}; "
    f"narrow, seed by seed: "
    + ", ".join(f"{a:.1%}" for a in m["primary_test_accuracy_per_seed.polysemantic"])
    + "). Where it trains well it has not failed to learn the digits, it has learned them as "
    "overlapping patterns over shared units; with so few units some seeds train badly, and "
    "the spread of every narrow-CNN number below carries that.")

# %% [markdown]
# ## The same instrument, a different price
#
# The symbiote is trained on each primary exactly as on the wide one. Every baseline gets
# the symbiote's unit budget; the best ablation is chosen on the training images.

# %% tags=["hide-input"]
conditions = [("normal", "wide CNN"), ("mixed", "wide CNN, mixed basis"),
              ("polysemantic", "narrow CNN")]


def row_of(label: str, key: str, fraction: str) -> dict:
    """One table row: mean ± std over seeds of a method's means over the digits."""
    return {"primary": label,
            "target rate": mean_std(m, f"{key}.target_output_rate", ".2%"),
            "other digits, A": mean_std(m, f"{key}.baseline_nontarget_accuracy", ".1%"),
            "other digits, A+B": mean_std(m, f"{key}.nontarget_accuracy", ".1%"),
            "accuracy lost": mean_std(m, f"{key}.nontarget_accuracy_drop", "+.1%"),
            "units used": mean_std(m, f"{key}.{fraction}", ".0%")}


rows = [row_of(f"{label} ({units[c]} units)", c, "units_touched_fraction")
        for c, label in conditions]
choices = m["best_ablation_choices.polysemantic"]
for key, label in (("best_ablation", "best ablation (chosen per seed on the training images: "
                    + ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in choices.items()) + ")"),
                   ("trained_gates_attribution_units", "gates trained on attribution units"),
                   ("trained_gates_symbiote_units", "gates trained on the symbiote's units")):
    rows.append(row_of(f"narrow CNN, {label}", f"baseline.polysemantic.{key}",
                       "units_fraction"))
rows[0]["primary"] += f" (mean ± std over {len(record['seeds'])} seeds)"
show_markdown(markdown_table(rows, list(rows[0])))
best_at_budget = "best_ablation"

per_digit = {c: [{"nontarget_accuracy_drop": drop, "units_touched_fraction": used}
                 for drop, used in zip(m[f"per_digit.{c}.symbiote.nontarget_accuracy_drop"],
                                       m[f"per_digit.{c}.symbiote.units_touched_fraction"],
                                       strict=True)]
             for c, _ in conditions}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
digits = np.arange(10)
for i, (c, label) in enumerate(conditions):
    axes[0].bar(digits + (i - 1) * 0.27, [r["nontarget_accuracy_drop"] for r in per_digit[c]],
                0.27, label=label)
    axes[1].bar(digits + (i - 1) * 0.27, [r["units_touched_fraction"] for r in per_digit[c]],
                0.27, label=label)
axes[0].set_ylabel("other digits' accuracy lost")
axes[1].set_ylabel("share of A's units touched")
for ax, title in zip(axes, ("The collateral cost of silencing each digit (mean over seeds)",
                            "How much of A the symbiote has to touch (mean over seeds)"),
                     strict=True):
    ax.set_xticks(digits)
    ax.set_xlabel("digit silenced")
    ax.set_title(title)
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
costly = max(range(10), key=lambda d: per_digit["polysemantic"][d]["nontarget_accuracy_drop"])
cheap = min(range(10), key=lambda d: per_digit["polysemantic"][d]["nontarget_accuracy_drop"])
show_markdown(
    f"Averaged over the seeds, on the narrow CNN silencing {costly} costs the other digits "
    f"{per_digit['polysemantic'][costly]['nontarget_accuracy_drop']:.1%} of their accuracy; "
    f"silencing {cheap} costs {per_digit['polysemantic'][cheap]['nontarget_accuracy_drop']:.1%}. "
    f"On the wide CNN no digit costs more than "
    f"{max(r['nontarget_accuracy_drop'] for r in per_digit['normal']):.1%}.")

# %% [markdown]
# Mixing the wide network's units changes little: B silences each digit about as cheaply as
# before, because it can still find a gate pattern in the new basis. The symbiote still does
# its job on the narrow network too: the silenced digit almost never comes out. The
# ablations, which worked badly on the wide network, now fail outright. But the symbiote pays
# for its success. With every unit shared, there is no gate that dims one digit alone, so B
# has to change most of the network and accept damage to the digits that share the units it
# dims.
#
# That price is the finding. **How cheaply a symbiote can remove an output is a behavioural
# measure of how disentangled the network's representation of that output is.** It needs no
# definition of a feature, no dictionary and no human labelling: train the instrument, read
# off the collateral damage and the share of units it had to touch. It also comes per output,
# so it says *which* digits are costly to separate from the rest. It is an upper bound on
# the cost of removing an output with gates: a better search could only find a cheaper
# edit, so the measure can overstate how entangled an output is, never understate it.
#
# ## A symbiote that reads the network
#
# The symbiote so far receives only the name of the digit, so its edit is the same for every
# image. Give it A's first layer as well, and it can decide per image: dim the shared units
# on images of the digit to silence, and leave them alone on the others.

# %% tags=["hide-input"]
rows = [{"primary": label,
         "fixed B: accuracy lost": mean_std(m, f"{c}.nontarget_accuracy_drop", "+.1%"),
         "conditional B: target rate": mean_std(m, f"conditional.{c}.target_output_rate", ".2%"),
         "conditional B: accuracy lost": mean_std(m, f"conditional.{c}.nontarget_accuracy_drop",
                                                  "+.1%"),
         "fixed B: parameters": m[f"parameters.symbiote.{c}"],
         "conditional B: parameters": m[f"parameters.conditional_symbiote.{c}"]}
        for c, label in conditions]
show_markdown(markdown_table(rows, list(rows[0]), {
    "fixed B: parameters": ",d", "conditional B: parameters": ",d"}))

# %% [markdown]
# On the narrow network reading A removes the collateral damage. It does so by
# recognising the digit, which makes the conditional symbiote a classifier of its own; its
# reader has more parameters than the narrow primary. It is a more capable instrument, and a
# less readable one: its gates change per image, so they no longer fold into one weight edit
# or draw one map. The cost a fixed symbiote pays remains the measure of entanglement; the
# conditional one shows how much of that cost a per-image decision can buy back.
#
# Where exactly does the fixed symbiote cut, and is the cut causal? That is what the record
# of its gates, [the circuit map](../essay_4_circuit_map/), shows.

# %% tags=["hide-input"]
show_markdown(provenance_note(record))
assert (units["normal"], units["polysemantic"], units["mixed"]) == (152, 20, 152)  # as stated
assert abs(m["primary_test_accuracy.mixed"] - m["primary_test_accuracy.normal"]) <= 0.01
assert all(abs(m[f"polysemanticity.{c}"] - m["polysemanticity.normal"]) < 0.1
           for c in ("mixed", "polysemantic"))  # "barely separates the three networks"
assert m["mixed.nontarget_accuracy_drop"] < 0.015  # "changes little"
assert (m["conditional.polysemantic.nontarget_accuracy_drop"]
        < 0.5 * m["polysemantic.nontarget_accuracy_drop"])
assert m["parameters.conditional_symbiote.polysemantic"] - m["parameters.symbiote.polysemantic"] \
    > symbiotes["polysemantic"].primary.model.n_parameters()  # the reader outweighs A
assert (m[f"sharing.polysemantic.{fc}.classes_without_own_unit"]
        > m[f"sharing.normal.{fc}.classes_without_own_unit"])
assert (m[f"sharing.polysemantic.{fc}.max_class_cosine"]
        > m[f"sharing.normal.{fc}.max_class_cosine"])
assert abs(m[f"mean_entropy.polysemantic.{fc}"] - m[f"mean_entropy.normal.{fc}"]) < 0.1
assert m["polysemantic.target_output_rate"] < 0.02
assert m["polysemantic.nontarget_accuracy_drop"] > 5 * m["normal.nontarget_accuracy_drop"]
assert m["polysemantic.units_touched_fraction"] > m["normal.units_touched_fraction"]
assert (m[f"baseline.polysemantic.{best_at_budget}.nontarget_accuracy_drop"]
        > 3 * m["polysemantic.nontarget_accuracy_drop"])
assert (per_digit["polysemantic"][costly]["nontarget_accuracy_drop"]
        > max(r["nontarget_accuracy_drop"] for r in per_digit["normal"]))
