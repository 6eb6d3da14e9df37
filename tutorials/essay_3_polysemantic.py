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
# trained on three other primaries. The **polysemantic** one is the normal CNN, same
# architecture, data and training budget, trained with a penalty on its hidden units' class
# selectivity (the regulariser Leavitt and Morcos, 2021, used to ask whether networks need
# class-selective units), at a strength chosen on held-out training images so that accuracy
# stays within half a point. It is polysemantic by construction and matched in accuracy. The
# **mixed** one is the normal CNN read in a random orthonormal basis at every layer: exactly
# the same function, but every unit the symbiote can touch is a mixture of the original
# units. The **narrow** one has 4 and 8 convolution channels and a bottleneck of 8 hidden
# units, 20 units in all against 152: short of room, as in superposition, but also less
# accurate.

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np

import mechinterp as mi
from mechinterp.essay import provenance_note, require_result
from mechinterp.reporting import markdown_table, mean_std, show_markdown
from mechinterp.symbiote import primary_for

record = require_result("symbiote-polysemantic", "symbiosis_polysemantic")
m = record["metrics"]
data = mi.load_digits()
primaries = {c: primary_for(c, data, seed=0)
             for c in ("normal", "polysemantic", "mixed", "narrow")}
units = {c: sum(t.model.unit_counts().values()) for c, t in primaries.items()}  # B gates all

# %% [markdown]
# ## Measuring how shared the units are
#
# Per unit, the measure is how many digits a unit answers to: the digits whose mean
# activation on it is at least half way from its weakest digit to its strongest (1 for a unit
# tuned to one digit, 9 for one that answers to all alike, since its weakest digit is the
# zero point); a class entropy of the same
# means is reported beside it. Per layer, two more: how many digits are *not* the strongest
# response of any unit (they have no unit of their own), and how similar the two most alike
# digits' activation patterns are.

# %% tags=["hide-input"]
layers = ["conv1.hook_post", "conv2.hook_post", "fc1.hook_post"]
rows = []
names = {"normal": "wide CNN", "polysemantic": "polysemantic", "mixed": "mixed basis",
         "narrow": "narrow CNN"}
for layer in layers:
    rows.append({"layer (seed 0)": layer.split(".")[0],
                 **{f"digits per unit, {names[c]}": m[f"mean_count.{c}.{layer}"] for c in names},
                 **{f"digits without a unit, {names[c]}":
                    m[f"sharing.{c}.{layer}.classes_without_own_unit"]
                    for c in ("normal", "polysemantic", "narrow")},
                 **{f"closest digit pair, {names[c]}": m[f"sharing.{c}.{layer}.max_class_cosine"]
                    for c in ("normal", "polysemantic", "narrow")}})
show_markdown(markdown_table(rows, list(rows[0]), {
    k: ".1f" if k.startswith("digits per") else ".0f" if k.startswith("digits without")
    else ".2f" for k in rows[0] if k != "layer (seed 0)"}))
fc = "fc1.hook_post"
show_markdown(
    f"Over five seeds the polysemantic primary's units answer to "
    f"{mean_std(m, 'polysemanticity.polysemantic', '.2f')} digits on average against the wide "
    f"CNN's {mean_std(m, 'polysemanticity.normal', '.2f')} (class entropy "
    f"{mean_std(m, 'class_entropy.polysemantic', '.3f')} against "
    f"{mean_std(m, 'class_entropy.normal', '.3f')}), at a test accuracy of "
    f"{mean_std(m, 'primary_test_accuracy.polysemantic', '.1%')} against "
    f"{mean_std(m, 'primary_test_accuracy.normal', '.1%')}. "
    + ("Yet its digits keep units of their own and stay apart: "
       if m[f"sharing.polysemantic.{fc}.classes_without_own_unit"]
       <= m[f"sharing.normal.{fc}.classes_without_own_unit"] else
       "Its digits lose some units of their own: ")
    + "in the hidden layer that feeds the output "
    f"{m[f'sharing.polysemantic.{fc}.classes_without_own_unit']:.0f} digits lack a unit of "
    f"their own (wide: {m[f'sharing.normal.{fc}.classes_without_own_unit']:.0f}) and the "
    f"closest pair sits at cosine {m[f'sharing.polysemantic.{fc}.max_class_cosine']:.2f} "
    f"(wide: {m[f'sharing.normal.{fc}.max_class_cosine']:.2f}). The bottleneck is another "
    f"matter: {m[f'sharing.narrow.{fc}.classes_without_own_unit']:.0f} digits without a unit, "
    f"the closest pair at {m[f'sharing.narrow.{fc}.max_class_cosine']:.2f} (seed 0), and an "
    f"accuracy of {mean_std(m, 'primary_test_accuracy.narrow', '.1%')} (seed by seed: "
    + ", ".join(f"{a:.1%}" for a in m["primary_test_accuracy_per_seed.narrow"])
    + "). Where it trains well the narrow network has learned the digits as overlapping "
    "patterns over shared units; with so few units some seeds train badly, and the spread of "
    "every narrow-CNN number below carries that. Polysemantic units and a crowded layer are "
    "two different things, and the two primaries pull them apart.")

# %% [markdown]
# ## The same instrument, a different price
#
# The symbiote is trained on each primary exactly as on the wide one. Every baseline gets
# the symbiote's unit budget; the best ablation is chosen on the training images.

# %% tags=["hide-input"]
conditions = [("normal", "wide CNN"), ("polysemantic", "wide CNN, unselective units"),
              ("mixed", "wide CNN, mixed basis"), ("narrow", "narrow CNN")]


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
for c, primary in (("polysemantic", "unselective units"), ("narrow", "narrow CNN")):
    choices = m[f"best_ablation_choices.{c}"]
    for key, label in (("best_ablation", "best ablation (chosen per seed on the training "
                        "images: " + ", ".join(f"{k.replace('_', ' ')} {n}"
                                               for k, n in choices.items()) + ")"),
                       ("trained_gates_attribution_units", "gates trained on attribution units"),
                       ("trained_gates_symbiote_units", "gates trained on the symbiote's units")):
        rows.append(row_of(f"{primary}, {label}", f"baseline.{c}.{key}", "units_fraction"))
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
    axes[0].bar(digits + (i - 1.5) * 0.2, [r["nontarget_accuracy_drop"] for r in per_digit[c]],
                0.2, label=label)
    axes[1].bar(digits + (i - 1.5) * 0.2, [r["units_touched_fraction"] for r in per_digit[c]],
                0.2, label=label)
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
costly = max(range(10), key=lambda d: per_digit["narrow"][d]["nontarget_accuracy_drop"])
cheap = min(range(10), key=lambda d: per_digit["narrow"][d]["nontarget_accuracy_drop"])
show_markdown(
    f"Averaged over the seeds, on the narrow CNN silencing {costly} costs the other digits "
    f"{per_digit['narrow'][costly]['nontarget_accuracy_drop']:.1%} of their accuracy; "
    f"silencing {cheap} costs {per_digit['narrow'][cheap]['nontarget_accuracy_drop']:.1%}. "
    f"On the wide CNN no digit costs more than "
    f"{max(r['nontarget_accuracy_drop'] for r in per_digit['normal']):.1%}, and on the "
    f"polysemantic one no more than "
    f"{max(r['nontarget_accuracy_drop'] for r in per_digit['polysemantic']):.1%}, but there "
    f"the symbiote touches {m['polysemantic.units_touched_fraction']:.0%} of the units "
    f"against the wide CNN's {m['normal.units_touched_fraction']:.0%}. On the narrow CNN the "
    f"silenced digit also still comes out on {m['narrow.target_output_rate']:.1%} of the test "
    f"images (wide CNN: {m['normal.target_output_rate']:.2%}).")

# %% [markdown]
# Polysemantic units alone do not defeat the symbiote. On the primary whose units each
# answer to more digits, at the same accuracy, B silences each digit as cheaply as on the
# wide CNN; what it pays instead is reach: each digit is spread over more units, each a
# little, and B has to gate more of them. Mixing the wide network's units changes even less:
# B finds a gate pattern in the new basis. The narrow network is different. There the
# symbiote can no longer both silence the digit and spare the others, and the ablations,
# which worked badly on the wide network, fail outright: with every unit shared and the
# digits' patterns crowded together, there is no gate that dims one digit alone, so B has to
# change most of the network and trade the digit's removal against damage to the digits that
# share the units it dims.
#
# That price is the finding, and the polysemantic primary sharpens it. **How cheaply a
# symbiote can remove an output is a behavioural measure of how entangled the network's
# representation of that output is with the others**, and it has two readings: the share of
# units the symbiote had to touch says how *spread* an output is, the collateral damage says
# how *entangled* it is. Units that answer to many digits raise the first and not the
# second; a layer short of room raises both. It needs no definition of a feature, no
# dictionary and no human labelling: train the instrument, read off the two numbers. It also
# comes per output, so it says *which* digits are costly to separate from the rest. It is an
# upper bound on the cost of removing an output with gates: a better search could only find
# a cheaper edit, so the measure can overstate how entangled an output is, never understate
# it.
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
# On the narrow network reading A removes the collateral damage; where the fixed symbiote
# was already cheap, reading A adds nothing. It does so by
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
assert [units[c] for c in ("normal", "polysemantic", "mixed", "narrow")] == [152, 152, 152, 20]
assert abs(m["primary_test_accuracy.mixed"] - m["primary_test_accuracy.normal"]) <= 0.01
# the polysemantic primary: close in accuracy, clearly more polysemantic, digits still apart
assert m["primary_test_accuracy.normal"] - m["primary_test_accuracy.polysemantic"] < 0.03
assert m["polysemanticity.polysemantic"] > m["polysemanticity.normal"] + 0.5
assert m["class_entropy.polysemantic"] > m["class_entropy.normal"]
assert (m[f"sharing.narrow.{fc}.classes_without_own_unit"]
        > m[f"sharing.polysemantic.{fc}.classes_without_own_unit"])
assert (m[f"sharing.narrow.{fc}.max_class_cosine"]
        > max(m[f"sharing.{c}.{fc}.max_class_cosine"] for c in ("normal", "polysemantic")))
# "as cheaply as on the wide CNN" (within half a point), "has to gate more of them"
assert (m["polysemantic.nontarget_accuracy_drop"]
        < m["normal.nontarget_accuracy_drop"] + 0.005)
assert m["polysemantic.units_touched_fraction"] > m["normal.units_touched_fraction"]
assert m["mixed.nontarget_accuracy_drop"] < 0.015  # "changes even less"
assert (m["conditional.narrow.nontarget_accuracy_drop"]
        < 0.5 * m["narrow.nontarget_accuracy_drop"])
assert m["parameters.conditional_symbiote.narrow"] - m["parameters.symbiote.narrow"] \
    > primaries["narrow"].model.n_parameters()  # the reader outweighs A
assert (m["narrow.target_output_rate"] + m["narrow.nontarget_accuracy_drop"]
        > 5 * (m["normal.target_output_rate"] + m["normal.nontarget_accuracy_drop"]))
assert m["narrow.nontarget_accuracy_drop"] > 5 * m["normal.nontarget_accuracy_drop"]
assert m["narrow.units_touched_fraction"] > m["normal.units_touched_fraction"]
assert (m[f"baseline.narrow.{best_at_budget}.nontarget_accuracy_drop"]
        > 3 * m["narrow.nontarget_accuracy_drop"])
assert (per_digit["narrow"][costly]["nontarget_accuracy_drop"]
        > max(r["nontarget_accuracy_drop"] for r in per_digit["normal"]))
