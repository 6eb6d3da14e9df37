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
# digits, and a symbiote can silence any one digit while costing the others well under a
# point of accuracy. What if the primary has too few units to give each digit its own?
# Elhage et al. ("Toy Models of Superposition", 2022) showed that networks then pack several
# features into each unit. A symbiote that dims a unit to suppress one digit must then dim
# the other digits that unit carries.
#
# The polysemantic primary here is a narrow CNN (`cnn-poly`): 4 and 8 convolution channels and
# a bottleneck of 8 hidden units, 20 units in all. We first measure how polysemantic each
# primary's units are, then train the same kind of symbiote on it and compare.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import mechinterp as mi
from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.symbiote import (
    class_sharing,
    compare_all_digits,
    summarise,
    symbiote_for,
    unit_class_entropy,
)

started = time.perf_counter()
data = mi.load_digits()
normal = symbiote_for("normal", data, seed=0)
poly = symbiote_for("polysemantic", data, seed=0)
for name, trained in (("normal", normal), ("polysemantic", poly)):
    model = trained.primary.model
    print(f"{name:13s} primary {trained.primary.arch:9s} {model.n_parameters():7,d} parameters, "
          f"{sum(model.unit_counts().values()):4d} hidden units, "
          f"test accuracy {trained.primary.test_accuracy:.3f}")

# %% [markdown]
# ## Measuring polysemanticity
#
# For each unit take its mean activation on the training images of each digit and normalise
# these ten numbers into a distribution. Its entropy, divided by log 10, is near 0 for a unit
# that answers to one digit and 1 for a unit that answers to all digits alike. This is a
# coarse proxy (a unit can respond to several digits for one shared feature, such as a
# vertical stroke), but it ranks the two primaries clearly.

# %%
entropies = {name: unit_class_entropy(t.primary.model, data)
             for name, t in (("normal", normal), ("polysemantic", poly))}
layers = list(entropies["normal"])
fig, axes = plt.subplots(1, len(layers), figsize=(11, 3), sharey=False)
for ax, layer in zip(axes, layers, strict=True):
    for name, color in (("normal", "tab:blue"), ("polysemantic", "tab:orange")):
        values = entropies[name][layer]
        values = values[~torch.isnan(values)].numpy()
        ax.hist(values, bins=np.linspace(0, 1, 21), alpha=0.6, color=color, density=True,
                label=f"{name} ({len(values)} live units)")
    ax.set_title(layer)
    ax.set_xlabel("class entropy (0 = one digit, 1 = all)")
axes[0].set_ylabel("density")
axes[-1].legend(fontsize=8)
fig.suptitle("How many digits does each unit answer to?")
fig.tight_layout()
plt.show()

mean_entropy = {name: {layer: float(np.nanmean(v.numpy())) for layer, v in e.items()}
                for name, e in entropies.items()}
show_markdown(markdown_table(
    [{"layer": layer, "normal": mean_entropy["normal"][layer],
      "polysemantic": mean_entropy["polysemantic"][layer]} for layer in layers],
    ["layer", "normal", "polysemantic"], {"normal": ".3f", "polysemantic": ".3f"}))

# %% [markdown]
# By this measure the two primaries barely differ. Convolution channels respond to strokes
# that every digit uses, and even the normal CNN's hidden units each respond to several
# digits: a ReLU unit on MNIST is rarely a one-digit detector. Per-unit entropy misses what
# the bottleneck changes, which is not how many digits each unit answers to but whether each
# digit still has units *of its own*. Two layer-level measures show it: how many digits are not
# the strongest response of any unit, and how close the two most similar digits' mean
# activation patterns are (cosine similarity).

# %%
sharing = {name: class_sharing(t.primary.model, data)
           for name, t in (("normal", normal), ("polysemantic", poly))}
show_markdown(markdown_table(
    [{"layer": layer, **{f"{name}.{k}": v for name in sharing for k, v in sharing[name][layer].items()}}
     for layer in layers],
    {"layer": "layer",
     "normal.classes_without_own_unit": "digits without a unit (normal)",
     "polysemantic.classes_without_own_unit": "digits without a unit (narrow)",
     "normal.max_class_cosine": "closest digit pair, cosine (normal)",
     "polysemantic.max_class_cosine": "closest digit pair, cosine (narrow)"},
    {"normal.classes_without_own_unit": ".0f", "polysemantic.classes_without_own_unit": ".0f",
     "normal.max_class_cosine": ".2f", "polysemantic.max_class_cosine": ".2f"}))

# %% [markdown]
# In the layer that feeds the output, most digits of the normal CNN have at least one unit
# that fires hardest for them; in the bottleneck several digits have none, and the digits'
# activation patterns crowd closer together. Each digit is a pattern over shared units: the
# superposition regime of Elhage et al. in its simplest form.
#
# ## The same symbiosis on the narrow primary

# %%
# the normal primary's baselines are on the previous page; here only its symbiote is needed
rows = {name: compare_all_digits(t, data, trained_gates=name == "polysemantic")
        for name, t in (("normal", normal), ("polysemantic", poly))}
summary = {name: summarise(r["symbiote"]) for name, r in rows.items()}
show_markdown(markdown_table(
    [{"condition": name, **s} for name, s in summary.items()],
    {"condition": "condition (mean over digits)", "target_output_rate": "target output rate",
     "baseline_nontarget_accuracy": "other digits, A", "nontarget_accuracy": "other digits, A+B",
     "nontarget_accuracy_drop": "drop", "units_touched_fraction": "units touched"},
    {"target_output_rate": ".2%", "baseline_nontarget_accuracy": ".1%",
     "nontarget_accuracy": ".1%", "nontarget_accuracy_drop": "+.2%",
     "units_touched_fraction": ".0%"},
))

# %%
digits = list(data.classes)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
width = 0.38
for offset, name in ((-width / 2, "normal"), (width / 2, "polysemantic")):
    per_digit = rows[name]["symbiote"]
    axes[0].bar(np.array(digits) + offset, [100 * r["nontarget_accuracy_drop"] for r in per_digit],
                width, label=name)
    axes[1].bar(np.array(digits) + offset, [100 * r["units_touched_fraction"] for r in per_digit],
                width, label=name)
axes[0].set_ylabel("accuracy lost on other digits (points)")
axes[1].set_ylabel("units touched (%)")
for ax in axes:
    ax.set_xlabel("inhibited digit")
    ax.set_xticks(digits)
    ax.legend()
fig.suptitle("The price of inhibition, per digit")
fig.tight_layout()
plt.show()

# %% [markdown]
# The narrow primary still lets the symbiote keep the inhibited digit almost entirely out of
# its outputs, but the price is paid by the other digits: with every unit shared, there is no
# gate that dims one digit alone, so B has to change most of the network and accept
# collateral damage. The gap between the two conditions is the finding: how cheaply a
# symbiote can inhibit an output is a behavioural measure of how disentangled the primary's
# representation of that output is.
#
# The baselines tell the same story on the narrow network:

# %%
poly_summary = {m: summarise(r) for m, r in rows["polysemantic"].items()}
show_markdown(markdown_table(
    [{"method": m, **s, "units": s.get("units", s.get("units_touched"))}
     for m, s in poly_summary.items()],
    {"method": "method (polysemantic, mean over digits)", "target_output_rate":
     "target output rate", "nontarget_accuracy_drop": "drop", "units": "units used"},
    {"target_output_rate": ".2%", "nontarget_accuracy_drop": "+.2%", "units": ".1f"},
))

# %%
ablations = [m for m in poly_summary if m.split("_")[0] in ("selective", "attribution")]
best_at_budget = min(ablations, key=lambda m: poly_summary[m]["target_output_rate"]
                     + poly_summary[m]["nontarget_accuracy_drop"])
print(f"best ablation at the symbiote's budget on the narrow primary: {best_at_budget}")

# %% [markdown]
# ## Checks and record

# %%
last = layers[-1]
assert (sharing["polysemantic"][last]["classes_without_own_unit"]
        > sharing["normal"][last]["classes_without_own_unit"])
assert sharing["polysemantic"][last]["max_class_cosine"] > sharing["normal"][last]["max_class_cosine"]
assert abs(mean_entropy["polysemantic"][last] - mean_entropy["normal"][last]) < 0.1  # as stated
assert summary["polysemantic"]["target_output_rate"] <= 0.02, summary["polysemantic"]
assert (summary["polysemantic"]["nontarget_accuracy_drop"]
        > 3 * summary["normal"]["nontarget_accuracy_drop"])
assert (summary["polysemantic"]["units_touched_fraction"]
        > summary["normal"]["units_touched_fraction"])

record = mi.write_result(
    "symbiote-polysemantic",
    {f"{condition}.{key}": value for condition, s in summary.items() for key, value in s.items()}
    | {f"baseline.{m}.{k}": v for m, s in poly_summary.items() for k, v in s.items()
       if m != "symbiote"}
    | {f"mean_entropy.{c}.{layer}": v for c, e in mean_entropy.items() for layer, v in e.items()}
    | {f"sharing.{c}.{layer}.{k}": v for c, per in sharing.items() for layer, d in per.items()
       for k, v in d.items()}
    | {f"per_digit.{c}.{k}": [r[k] for r in rows[c]["symbiote"]] for c in rows
       for k in ("nontarget_accuracy_drop", "units_touched_fraction", "target_output_rate")}
    | {"best_ablation_at_budget": best_at_budget,
       "primary_test_accuracy.normal": normal.primary.test_accuracy,
       "primary_test_accuracy.polysemantic": poly.primary.test_accuracy},
    seeds=[0],
    data_source=data.source,
    title="SymbioteNet, polysemantic condition",
    config=poly.config.as_dict(),
    started=started,
)
print(f"result record written to {record}")
