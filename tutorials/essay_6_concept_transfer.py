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
# # 6. Moving concepts between networks
#
# *Part of the essay [Mechanistic interpretability through the lens of Symbiotic
# Networks](../). The pages behind this section: [the protocol](../../transfer/protocol/),
# [the leaderboard](../../tutorials/transfer_leaderboard/), and one tutorial per method (the
# twelve surgery methods start at [direct weight copy](../../tutorials/transfer_01_direct_weight_copy/),
# the nine SAE-free ones at
# [precomputed vector alignment](../../tutorials/transfer_s1_precomputed_vector_alignment/)).*
#
# The symbiote and the report head each study one network. The instruments of this section sit
# *between* two. Network A has learned the digits 0 to 3; network B has learned 2 to 5. Can
# the concept "4", which B knows and A has never seen, be moved from B into A without
# retraining A on fours, so that A recognises fours afterwards, still recognises its own
# digits, and does not start calling fives fours?
#
# The question is a test of representations, not only an engineering trick. If a concept can
# be carried across by a small map between the two networks' activations, then the two
# networks represent it, and the digits they share, in ways that are translatable into each
# other. Model stitching (Lenc and Vedaldi, 2015; Bansal et al., 2021) and latent-space
# translation (Maiorca et al., 2023) ask the same question by gluing networks together;
# representation-similarity measures such as CKA (Kornblith et al., 2019) ask it without
# moving anything. Transfer asks it with a concept that only one of the two networks has,
# which is the case where a translation could fail.
#
# Every method runs under one [protocol](../../transfer/protocol/): it sees only training
# images, counts every concept image it uses, and is scored on test images for **transfer**
# (share of fours the edited A calls four), **preservation** (A's accuracy on its own digits)
# and **specificity error** (share of fives called four, lower is better). Two reference
# points frame the scores: **fine-tuning** A on the concept images (the strong, gradient-based
# baseline) and the **oracle**, A retrained with fours from the start.

# %% tags=["hide-input"]
import matplotlib.pyplot as plt

from mechinterp.essay import provenance_note, require_result
from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.transfer.leaderboard import pick_best
from mechinterp.transfer.protocol import SEED_RESULTS
from mechinterp.transfer.registry import get_method, list_methods
from mechinterp.transfer.report import plot_budget_curve

record = require_result("transfer-leaderboard", "transfer_leaderboard")
board = record["metrics"]
pairs = sorted({k.split("|")[1] for k in board if k.count("|") == 2})
same = next(p for p in pairs if p.split(" <- ")[0] == p.split(" <- ")[1])
cross_pair = next(p for p in pairs if p != same)


def score(method, pair, metric):
    return board.get(f"{method}|{pair}|{metric}_mean")


methods = [m for m in list_methods() if score(m, pairs[0], "transfer") is not None
           or score(m, pairs[-1], "transfer") is not None]
kinds = {m: get_method(m).kind for m in methods}

# %% [markdown]
# ## Twenty-one methods, two pairs of networks
#
# The same-architecture pair gives both networks the same shape (MegaNN receives from
# MegaNN); the cross-architecture pair does not (WideNN receives from DeepNN), so nothing that
# relies on matching weights or units can work there. Each point is one method on one pair,
# averaged over three seeds.

# %% tags=["hide-input"]
colours = {"surgery": "tab:blue", "sae-free": "tab:green", "baseline": "tab:red"}
markers = {same: "s", cross_pair: "o"}
fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.6))
for pair in pairs:
    for m in methods:
        t, p, s = (score(m, pair, k) for k in ("transfer", "preservation", "specificity"))
        if t is None:
            continue
        axes[0].scatter(p, t, color=colours[kinds[m]], marker=markers[pair], s=36, alpha=0.8)
        axes[1].scatter(s, t, color=colours[kinds[m]], marker=markers[pair], s=36, alpha=0.8)
for seed in SEED_RESULTS.values():
    if "transfer" in seed:
        axes[0].scatter(seed["preservation"], seed["transfer"], marker="x", color="gray", s=30)
for kind, colour in colours.items():
    axes[0].scatter([], [], color=colour, label=f"{kind} methods" if kind != "baseline"
                    else "fine-tuning and oracle")
for pair, marker in markers.items():
    axes[0].scatter([], [], color="black", marker=marker, label=pair)
axes[0].scatter([], [], color="gray", marker="x", label="reported by the seed project")
axes[0].set_xlabel("preservation (A's own digits)")
axes[0].set_ylabel("transfer (fours recognised)")
axes[0].set_title("Transfer against preservation")
axes[0].legend(fontsize=7, loc="lower left")
axes[0].set_xlim(0.45, 1.0)
axes[1].set_xlabel("specificity error (fives called four, lower is better)")
axes[1].set_title("Transfer against specificity error")
for ax in axes:
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()


def best_of(kind):
    """The leaderboard's rule (:func:`~mechinterp.transfer.leaderboard.pick_best`), applied
    to one family on the validation split (never on test numbers)."""
    rows = [{"method": m, "pair": pair, "kind": kinds[m], "changes": get_method(m).changes,
             **{k: board[f"{m}|{pair}|{k}"] for k in (
                 "validation_transfer_mean", "validation_preservation_mean",
                 "baseline_validation_preservation_mean")}}
            for m in methods if kinds[m] == kind for pair in pairs
            if score(m, pair, "transfer") is not None]
    return pick_best(rows)


rows = []
for pair in pairs:
    for kind, label in (("surgery", "best surgery method"), ("sae-free", "best SAE-free method")):
        m = best_of(kind)
        rows.append({"pair": pair, "method": f"{label}: `{m}`",
                     **{k: score(m, pair, k) for k in ("transfer", "preservation", "specificity")}})
    for m in ("finetune_with_budget", "oracle_retrain"):
        rows.append({"pair": pair, "method": get_method(m).title,
                     **{k: score(m, pair, k) for k in ("transfer", "preservation", "specificity")}})
show_markdown(markdown_table(rows, ["pair", "method", "transfer", "preservation", "specificity"],
                             {"transfer": ".1%", "preservation": ".1%", "specificity": ".1%"}))
anchor = SEED_RESULTS["aligned_spatial"]
ours = {k: score("aligned_spatial", cross_pair, k) for k in ("transfer", "preservation")}
show_markdown(
    f"The best result the seed project reported was {anchor['transfer']:.1%} transfer at "
    f"{anchor['preservation']:.1%} preservation, for aligned spatial transfer across "
    f"architectures. The same method under this protocol reaches {ours['transfer']:.1%} at "
    f"{ours['preservation']:.1%} on the cross-architecture pair (the seed's numbers come from "
    "its own models and splits, so the comparison is for orientation).")

# %% [markdown]
# Three things stand out.
#
# **Copying weights does not move concepts.** The methods that copy or blend the donor's
# weights into the recipient (direct copy, importance-ranked neuron copy, pathway transplant,
# gradual blending) transfer almost nothing, or transfer something only by wrecking the
# recipient. Two networks trained separately have no common basis: unit 17 of one has
# nothing to do with unit 17 of the other, even with identical architectures. This is the
# permutation problem that weight-matching methods such as Git Re-Basin address, and it is
# why these methods cannot even run on the cross-architecture pair.
#
# **Aligning activations does, by running the donor.** The methods at the top of both pairs
# learn a map between the two networks' activations, fitted on images of the digits both know
# and, up to the concept budget, on the donor's images of the four, and then let the donor's
# own upper layers decide. What they import is counted below: the edited recipient carries a
# large part of the donor, and the plain donor ensemble, which runs all of the donor beside
# the recipient, is as good as any of them. That a map carries the four at all when it was
# fitted on *no* four (the budget-0 point of the curve below, and a column of the
# leaderboard) is the representational finding: the networks' spaces are related by a
# transformation simple enough to learn from other digits, and it extends, in part, to a
# concept only one of them has.
#
# **Surgery is more specific than training.** Fine-tuning and the oracle recognise the most
# fours, and also call the most fives fours. A gradient step on concept images moves every
# boundary near the four, including the one with its nearest unseen neighbour; a transplanted
# detector fires only where the donor's representation says "four", and the donor knows
# fives. This is not a difference in data: the protocol holds the five out from every method
# and baseline alike (no fitting, no calibration), so every row meets it for the first time
# on the test split.
#
# Every threshold in these rows is set by one rule, on images that neither network was
# trained on. That rule costs numbers: set on the training images, as in an earlier version
# of this protocol, the same methods scored well above these numbers, because a map fit on the
# images it is calibrated on is surer of them than of new ones.

# %% tags=["hide-input"]
curve = {k.split("|")[1]: v for k, v in board.items() if k.startswith("budget_curve|")}
fig = plot_budget_curve(curve, f"How many fours it takes ({same})")
plt.show()
zero = {m: pts[0] for m, pts in curve.items()}  # no concept image in any fit
few = {m: pts[1] for m, pts in curve.items()}  # ten
leader = board["best_method"]  # chosen by the leaderboard on the validation split
show_markdown("With no image of the concept in any fit: "
              + ", ".join(f"`{m}` {p[1]:.1%}" for m, p in zero.items())
              + "; with ten: " + ", ".join(f"`{m}` {p[1]:.1%}" for m, p in few.items())
              + ". The aligners learn most of their map from the digits both networks know "
              "and borrow the rest from the donor's layers; fine-tuning has nothing else to "
              "learn from.")
imports = {m: (board[f"{m}|{same}|transfer_mean"], board[f"{m}|{same}|donor_params_executed"])
           for m in (leader, "donor_ensemble", "donor_readout")}
show_markdown(
    f"What the edited recipient carries ({same}): `{leader}` reaches "
    f"{imports[leader][0]:.1%} transfer with {imports[leader][1]:,.0f} of the donor's weights "
    f"taking part in its output; running the whole donor beside the recipient "
    f"(`donor_ensemble`, {imports['donor_ensemble'][1]:,.0f} weights) reaches "
    f"{imports['donor_ensemble'][0]:.1%}; reading only the donor's concept row off a linear "
    f"stitch (`donor_readout`, {imports['donor_readout'][1]:,.0f} weights) reaches "
    f"{imports['donor_readout'][0]:.1%}.")

# %% [markdown]
# ## Not only the four
#
# A method developed on one digit may have learned that digit. The
# [variants page](../../tutorials/transfer_variants/) runs the same methods with 5 as the
# concept (same networks, 4 as the specificity digit) and on other digit sets altogether
# (A knows 4-7, B knows 6-9, the concept is 8).
#
# The five exposed a flaw in the rule, not in any method. A detector built on the donor asks
# the donor about every image, including A's 0s and 1s, which the donor has never seen; its
# closed-set answer "more like a 5 than like a 2, 3 or 4" is often yes, those 0s set the
# threshold, and nothing transfers. Letting A answer for its own digits (the score loses A's
# evidence for its own best digit) repairs it; the protocol adopts that gate because it wins
# on the validation split, by a rule written down before the comparison.

# %% tags=["hide-input"]
variants = require_result("transfer-variants", "transfer_variants")["metrics"]
names = [k.split("|")[0] for k in variants if k.endswith("|picked")]
gate_rows = [{"variant": n,
              **{f"{g} gate": variants[f"gate|{g}|{n}|test transfer"]
                 for g in ("closed-set", "open-set")},
              "picked method": f"`{variants[n + '|picked']}`"} for n in names]
show_markdown(markdown_table(gate_rows, list(gate_rows[0]),
                             {"closed-set gate": ".1%", "open-set gate": ".1%"}))
gaps = [v for k, v in variants.items() if k.endswith("|gap")]
show_markdown(
    "Donor-ensemble transfer on the test split under each gate (the choice was made on "
    "validation). Over the three variants the method each variant's rule picks reaches "
    f"{variants['mean_picked_transfer']:.1%} transfer on average; its shortfall against the "
    f"donor ensemble of the same variant and pair ranges from {min(gaps):+.1%} to "
    f"{max(gaps):+.1%} (negative: it beat the ensemble). The four is the "
    "easy case: the donor ensemble itself reaches "
    + ", ".join(f"{variants[f'gate|open-set|{n}|test transfer']:.1%} ({n})" for n in names)
    + ", because the donor's own margin is a weaker detector for some digits than for others "
    "once it must stay quiet on digits it never saw.")

# %% [markdown]
# The aligners are subsidiary networks of a third kind: neither acting on one network from
# outside nor grafted into it, but translating between two. They make the same methodological
# point as the symbiote and the report head, from another side. A map that has to be *learned*
# between two networks, and then tested on something it was not fitted on, measures how much
# the two networks have in common in a way a similarity score alone does not. The score says
# the spaces are alike; the transfer says the likeness is usable.
#
# The remaining systems work on transformers, where the circuits behind a task can be planted
# and so checked: [circuits and interventions](../essay_7_circuits/).

# %% tags=["hide-input"]
show_markdown(provenance_note(record))
assert sum(kinds[m] != "baseline" for m in methods) == 21  # the heading's count
copiers = ["direct_weight_copy", "importance_neuron_copy", "pathway_transplant", "gradual_blending"]
for m in copiers:  # "almost nothing, or only by wrecking the recipient"
    t, p = score(m, same, "transfer"), score(m, same, "preservation")
    assert t < 0.05 or p < 0.9, (m, t, p)
    assert score(m, cross_pair, "transfer") is None
top = best_of("sae-free")
for pair in pairs:  # surgery is more specific than training, with the same data withheld
    alone = board[f"{top}|{pair}|baseline_preservation_mean"]
    assert score(top, pair, "preservation") > alone - 0.015
    assert score("finetune_with_budget", pair, "specificity") > 3 * score(top, pair, "specificity")
    assert score("oracle_retrain", pair, "specificity") > 3 * score(top, pair, "specificity")
assert zero["finetune_with_budget"][1] < 0.05  # nothing to learn the four from
assert zero[leader][1] > 0.2  # a map fit on no four still carries part of it
assert imports["donor_ensemble"][0] >= imports[leader][0] - 0.03  # "as good as any of them"
assert imports[leader][1] > 0  # the best method runs part of the donor
assert variants["gate_chosen"] == "open-set"  # the gate the text describes
