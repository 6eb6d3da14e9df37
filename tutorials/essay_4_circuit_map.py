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
# # 4. Reading the circuit map
#
# *Part of the essay [Mechanistic interpretability through the lens of Symbiotic
# Networks](../). The method tutorial behind this section:
# [reading the circuit map and the weight inhibition](../../tutorials/symbiote_circuit_map/).*
#
# A trained symbiote is a record of experiments. For each digit it holds the edit of A that
# silenced that digit at the smallest cost its optimiser could find, written as one gate per
# unit. Read as a table, digits by units, that record is a **circuit map** of A: which units
# each digit's answer runs through, in which layer, and which units it shares with other
# digits. This section reads the map of the wide CNN of [section 2](../essay_2_symbiote/) and
# then asks the questions any instrument reading has to survive: is it causal, is it exact,
# and is it a property of A or of one training run of B?

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import torch
from scipy.stats import spearmanr

import mechinterp as mi
from mechinterp.essay import provenance_note, require_result
from mechinterp.plotting import heatmap
from mechinterp.reporting import mean_std, show_markdown
from mechinterp.symbiote import circuit_map, overlap_matrix, symbiote_for

record = require_result("symbiote-circuit-map", "symbiote_circuit_map")
m = record["metrics"]
data = mi.load_digits()
trained = symbiote_for("normal", data, seed=0)
A, B = trained.primary.model, trained.symbiote
digits = list(range(10))
gates = circuit_map(B, digits)
threshold = B.config.change_threshold

# %% [markdown]
# ## The map
#
# Each row is the digit being silenced, each column one of A's 128 hidden units in the layer
# that feeds the output (units B leaves alone for every digit are not shown). Blue: B dims the
# unit; red: B boosts it.

# %% tags=["hide-input"]
fc = gates["fc1.hook_post"]
columns = torch.nonzero(fc.abs().max(0).values > threshold).flatten()
order = columns[torch.argsort(fc[:, columns].argmin(0), stable=True)]  # group by digit dimmed
fig = heatmap(fc[:, order], row_labels=[str(d) for d in digits],
              col_labels=[str(int(i)) for i in order],
              xlabel="fc1 unit (grouped by the digit for which B dims it most)",
              ylabel="digit silenced", title="The circuit map: B's gate - 1 on A's last hidden layer",
              colorbar_label="gate - 1", figsize=(15, 4.2))
fig.axes[0].tick_params(axis="x", labelsize=5, labelrotation=90)
plt.show()
shares = {layer.split(".")[0]: (float((g < -threshold).float().mean()),
                                float((g > threshold).float().mean()))
          for layer, g in gates.items()}
show_markdown(
    "Share of (digit, unit) cells that B dims or boosts by more than "
    f"{threshold}, by layer: "
    + "; ".join(f"{layer}: {dim:.0%} dimmed, {boost:.0%} boosted"
                for layer, (dim, boost) in shares.items())
    + ". In the last hidden layer B "
    + ("dims more units than it boosts" if shares["fc1"][0] > shares["fc1"][1] + 0.02 else
       "dims about as many units as it boosts" if shares["fc1"][0] >= shares["fc1"][1] - 0.02
       else "boosts more units than it dims")
    + ", and at the same time it turns up many channels of the first convolution, which every "
    "digit uses; the map records that it does so, not why.")

# %% [markdown]
# ## Shared circuitry
#
# Two digits share circuitry, by this map, when B changes the same units to silence either of
# them. The overlap is the Jaccard index of the two sets of changed units.

# %% tags=["hide-input"]
overlap = overlap_matrix(B, digits)
fig = heatmap(overlap, row_labels=[str(d) for d in digits], col_labels=[str(d) for d in digits],
              title="Overlap of the units B changes for each pair of digits (Jaccard)",
              cmap="viridis", center=None, annotate=True, figsize=(7, 5.5))
plt.show()
hook = A.hidden_hooks[-1]
with torch.no_grad():
    _, cache = A.run_with_cache(data.train_images, names_filter=[hook])
means = torch.stack([cache[hook][data.train_labels == d].mean(0) for d in digits])
unit = torch.nn.functional.normalize(means, dim=1)
similarity = unit @ unit.T
upper = torch.triu_indices(10, 10, 1)
rho = spearmanr(overlap[upper[0], upper[1]].numpy(), similarity[upper[0], upper[1]].numpy())
pair = max(((i, j) for i in digits for j in digits if i < j), key=lambda p: overlap[p])
low = min(((i, j) for i in digits for j in digits if i < j), key=lambda p: overlap[p])
show_markdown(
    f"The most shared pair is {pair[0]} and {pair[1]} (overlap {overlap[pair]:.2f}), the least "
    f"shared {low[0]} and {low[1]} ({overlap[low]:.2f}). Across the 45 pairs, the overlap has a "
    f"rank correlation of {rho.statistic:+.2f} (p = {rho.pvalue:.2f}) with how similar the two "
    "digits' mean activation patterns are in the same layer.")

# %% [markdown]
# That last number is a warning against reading the map too quickly. The overlap between two
# digits' edits is *not* a restatement of how similar A's representations of them are, and
# there is a reason not to expect it to be: to silence one digit without hurting its
# look-alike, B has to avoid the units the look-alike relies on, so digits that A confuses can end up with edits that share
# little. The map answers a causal question (which units can be changed to remove this digit
# and nothing else) and that question has a different answer from the correlational one
# (which digits look alike inside A).

# %% [markdown]
# ## Is the map causal, exact, and stable?
#
# Three checks, each computed in the method tutorial.
#
# * **Causal.** With B switched off, mean-ablate only the units B *dims* for a digit, and
#   compare with ablating as many randomly chosen units.
# * **Exact.** A gate $g \ge 0$ on a unit after its ReLU can be moved into the weights $w$ and
#   bias $b$ that produce the unit, since
#   $g \, \mathrm{relu}(w^\top x + b) = \mathrm{relu}\big((g w)^\top x + g b\big)$.
#   Folding B's gates for one digit into a copy of A gives a plain network, with no symbiote
#   and no hooks, that should behave exactly like A with B.
# * **Stable.** Train B again from other seeds and compare the unit sets it changes.

# %% tags=["hide-input"]
changed = m["weights_changed_over_10pct"]
show_markdown(
    f"**Causal:** ablating B's dimmed units lowers the accuracy on the digit from "
    f"{m['causal.digit_accuracy_before']:.1%} (one A) to "
    f"{mean_std(m, 'causal.digit_accuracy_ablated', '.1%')}, against "
    f"{mean_std(m, 'causal.digit_accuracy_random', '.1%')} for as many random units (mean over "
    f"digits; mean ± std over {len(record['seeds'])} seeds of B on one A). **Exact:** the folded networks reproduce A with B to within "
    f"{m['fold.max_logit_gap']:.1e} in every logit; each digit's edit changes between "
    f"{min(changed):.0%} and {max(changed):.0%} of A's weights by more than a tenth of their "
    f"size. **Stable:** across seeds, each digit's set of changed units overlaps at Jaccard "
    f"{m['stability.mean_jaccard']:.2f} on average, while the inhibition itself is reproduced "
    f"(largest target rate over seeds {m['stability.target_output_rate_max']:.2%}, mean "
    f"accuracy lost {m['stability.nontarget_drop_mean']:.2%}).")

# %% [markdown]
# The checks come out the way an honest instrument reading should: positive, and partial.
# The units B dims matter to their digit far more than random units do, but ablating them does
# not silence the digit. B's effect also comes from the units it boosts and from small
# shadings below the threshold, and a gate that dims a unit by a third is a gentler tool than
# an ablation that replaces it. So the dimmed set is a *sketch* of the digit's pathway, not a
# complete circuit, and it should be reported as such.
#
# The fold is the strongest result of the three, and it changes what the symbiote is. Since
# B's edit can be written into A's weights exactly, B is a **generator of weight edits**: a
# network whose outputs are diffs of A, each specific to one behaviour and each small. The
# "weight-inhibition" pictures of the [method tutorial](../../tutorials/symbiote_circuit_map/)
# show these diffs kernel by kernel. And the map is mostly a property of A rather than of B's
# seed: most of each digit's changed units recur when B is trained again from another seed.
#
# The symbiote reads a network by acting on it from outside. The next instrument is grafted
# *into* the network instead: [networks that report on themselves](../essay_5_self_report/).

# %% tags=["hide-input"]
show_markdown(provenance_note(record))
assert m["causal.digit_accuracy_ablated"] < m["causal.digit_accuracy_random"] - 0.05
assert m["causal.digit_accuracy_ablated"] > 0.5  # ablating the dimmed units alone does not silence
assert m["fold.max_logit_gap"] < 1e-4
assert m["stability.mean_jaccard"] > 0.5  # "most of each digit's changed units recur"
assert m["stability.target_output_rate_max"] < 0.01
assert shares["conv1"][1] > 0.5 > shares["conv1"][0]  # the first convolution: mostly boosted
assert abs(rho.statistic) < 0.5
