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
# # The protocol, varied: three concepts, two digit sets
#
# A transfer method that works only for the digit it was developed on has learned the
# benchmark, not the task. This page runs the [protocol](../../transfer/protocol/) three
# ways, all fixed in `mechinterp.transfer.protocol.VARIANTS` before any of these runs:
#
# | variant | concept | A knows | B knows | specificity digit |
# |---|---|---|---|---|
# | concept 4, A 0-3, B 2-5 (the default) | 4 | 0-3 | 2-5 | 5 |
# | concept 5, A 0-3, B 2-5 | 5 | 0-3 | 2-5 | 4 |
# | concept 8, A 4-7, B 6-9 | 8 | 4-7 | 6-9 | 9 |
#
# Each variant trains its own A and B (both model pairs of the
# [leaderboard](../transfer_leaderboard/), the profile's seeds) and runs every method except
# the two dictionary-size and sparsity sweeps (methods 3 and 4 of the SAE-free family, which
# are method 1 with a configuration search and cost more than the rest together). The best
# method of each variant is named by the leaderboard's rule, on that variant's validation
# split.

# %%
import dataclasses
import statistics
import time

import matplotlib.pyplot as plt
import numpy as np

import mechinterp as mi
from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.transfer import list_methods
from mechinterp.transfer.leaderboard import (
    keeps_preservation,
    pick_best,
    run_grid,
    summarise_runs,
)
from mechinterp.transfer.protocol import GATES, VARIANTS, TransferProtocol

started = time.perf_counter()
seeds = list(mi.get_profile().seeds)
print(f"variants: {list(VARIANTS)}; seeds {seeds}")

# %% [markdown]
# ## Why the digit 5 collapsed, and the gate chosen on validation
#
# Every method that adds a concept detector lets it override A only where its score passes a
# threshold, and the threshold lets through at most 0.5% of the calibration negatives (images
# of the digits A knows, from a carve of the training split that neither network was trained
# on). With 5 as the concept, B's score is the margin of its 5 logit over its 2, 3 and 4
# logits. B has never seen a 0 or a 1, and on A's 0s that closed-set margin often favours the
# 5, so the threshold that keeps those 0s out lands above most real 5s: transfer collapses,
# whatever the method. The flaw is in the rule, not in any one method: the score asks B
# about images only A can judge.
#
# The open-set gate lets A answer for its own digits: the score loses A's evidence for its own
# best digit, `score - relu(max over A's digits of A's logit)`. An image that A recognises
# needs that much more evidence before the concept can take it, and the negatives stop
# setting the threshold. Whether the gate helps is decided here, on the validation split, by
# a rule written before the runs: **the gate with the higher mean validation transfer of the
# donor ensemble (B's own concept margin, the detector shared by every method that runs B),
# over the three variants, both pairs and the seeds; within one point, the simpler
# closed-set rule.** (The gate was proposed while diagnosing digit 5 with test numbers in view;
# the choice itself reads validation numbers only.)

# %%
gate_rows = []
for gate in GATES:
    for name, protocol in VARIANTS.items():
        runs = run_grid(["donor_ensemble"], seeds=seeds,
                        protocol=dataclasses.replace(protocol, gate=gate))
        gate_rows.append({
            "gate": gate, "variant": name,
            "validation transfer": statistics.fmean(r["validation"]["transfer"] for r in runs),
            "validation preservation lost": statistics.fmean(
                r["baseline_validation_preservation"] - r["validation"]["preservation"]
                for r in runs),
            "test transfer": statistics.fmean(r["transfer"] for r in runs),
            "test preservation lost": statistics.fmean(
                r["baseline_preservation"] - r["preservation"] for r in runs)})
show_markdown(markdown_table(gate_rows, list(gate_rows[0]), {
    k: ".1%" for k in gate_rows[0] if k not in ("gate", "variant")}))
mean_val = {g: statistics.fmean(r["validation transfer"] for r in gate_rows if r["gate"] == g)
            for g in GATES}
chosen = ("open-set" if mean_val["open-set"] > mean_val["closed-set"] + 0.01
          else "closed-set")
print("mean validation transfer: " + ", ".join(f"{g} {v:.1%}" for g, v in mean_val.items())
      + f" -> {chosen}; the library's default: {TransferProtocol().gate}")

# %% [markdown]
# ## Every method on every variant
#
# The same table for each variant: mean over pairs and seeds of the test metrics, and the
# method the leaderboard's rule picks on that variant's validation split (among methods that
# take no gradient step on A: preservation within half a point of A alone on every pair,
# then the highest validation transfer).

# %%
methods = [m for m in list_methods()
           if m not in ("concept_dimension_scaling", "sparsity_sae_optimisation")]
per_variant = {}
for name, protocol in VARIANTS.items():
    per_variant[name] = summarise_runs(run_grid(methods, seeds=seeds, protocol=protocol))

rows, picks = [], {}
for name, summary in per_variant.items():
    best = pick_best(summary)
    picks[name] = best
    for method in methods:
        group = [s for s in summary if s["method"] == method]
        if not group:
            continue
        rows.append({
            "variant": name, "method": method + (" (picked)" if method == best else ""),
            "transfer": statistics.fmean(s["transfer_mean"] for s in group),
            "preservation lost": statistics.fmean(
                s["baseline_preservation_mean"] - s["preservation_mean"] for s in group),
            "specificity": statistics.fmean(s["specificity_mean"] for s in group),
            "validation transfer": statistics.fmean(s["validation_transfer_mean"]
                                                    for s in group)})
show_markdown(markdown_table(rows, list(rows[0]), {
    k: ".1%" for k in ("transfer", "preservation lost", "specificity", "validation transfer")}))

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.8))
shown = sorted({r["method"].replace(" (picked)", "") for r in rows},
               key=lambda m: -np.mean([r["transfer"] for r in rows
                                       if r["method"].startswith(m)]))[:10]
width = 0.8 / len(VARIANTS)
for i, name in enumerate(VARIANTS):
    values = [next((r["transfer"] for r in rows if r["variant"] == name
                    and r["method"].replace(" (picked)", "") == m), 0.0) for m in shown]
    ax.bar(np.arange(len(shown)) + i * width, values, width, label=name)
ax.set_xticks(np.arange(len(shown)) + width, shown, rotation=40, ha="right", fontsize=8)
ax.set_ylabel("test transfer (mean over pairs and seeds)")
ax.set_title("The ten highest-transfer methods on each protocol variant")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The picked method against the donor ensemble, variant by variant
#
# The donor ensemble runs all of B beside A: no method that runs B can do better. The gap
# says how much of B's knowledge a method's import loses; preservation is compared with the
# unedited A on the same test images, against the protocol's half-point allowance.

# %%
verdicts = []
for name, summary in per_variant.items():
    best = picks[name]
    for pair in sorted({s["pair"] for s in summary}):
        b = next(s for s in summary if s["method"] == best and s["pair"] == pair)
        e = next(s for s in summary if s["method"] == "donor_ensemble" and s["pair"] == pair)
        verdicts.append({
            "variant": name, "pair": pair, "picked": best,
            "transfer": f"{b['transfer_mean']:.1%} ({b['transfer_std']:.1%})",
            "donor ensemble": f"{e['transfer_mean']:.1%}",
            "gap": e["transfer_mean"] - b["transfer_mean"],
            "preservation lost": b["baseline_preservation_mean"] - b["preservation_mean"],
            "within 0.5 pt": keeps_preservation(b["preservation_mean"],
                                                b["baseline_preservation_mean"])})
show_markdown(markdown_table(verdicts, list(verdicts[0]), {"gap": ".1%",
                                                          "preservation lost": ".2%"}))
passed_over = []
for name, summary in per_variant.items():
    candidates = [s for s in summary if s["kind"] != "baseline" and s["changes"] != "gradient"]

    def val(m, key, rows=candidates):
        return [s[key] for s in rows if s["method"] == m]

    picked_val = statistics.fmean(val(picks[name], "validation_transfer_mean"))
    # methods the rule passed over that transfer more on validation and lose less than five
    # points of validation preservation (the near misses, not the wreckers)
    near = [(m, statistics.fmean(val(m, "validation_transfer_mean")),
             max(a - b for a, b in zip(val(m, "baseline_validation_preservation_mean"),
                                       val(m, "validation_preservation_mean"), strict=True)))
            for m in {s["method"] for s in candidates}]
    near = [x for x in near if x[1] > picked_val and x[2] < 0.05]
    if near:
        m, t, lost = max(near, key=lambda x: x[1])
        passed_over.append(f"on {name} it passes over `{m}` ({t:.1%} validation transfer "
                           f"against {picked_val:.1%}), which lost {lost:.2%} of validation "
                           "preservation on a pair")
if passed_over:
    show_markdown("The rule puts preservation first: " + "; ".join(passed_over) + ". The "
                  "validation split holds about 40 images per digit, so one flipped image of "
                  "A's own digits costs 0.2 points averaged over three seeds; the rule was "
                  "fixed before the runs and is applied as written.")
mean_transfer = statistics.fmean(
    next(s for s in per_variant[n] if s["method"] == picks[n] and s["pair"] == v["pair"])[
        "transfer_mean"] for n in VARIANTS for v in verdicts if v["variant"] == n)
missed = [f"{v['variant']} ({v['pair']}: {v['preservation lost']:.2%} lost)"
          for v in verdicts if not v["within 0.5 pt"]]
show_markdown(
    f"Mean test transfer of the picked methods over the three variants and both pairs: "
    f"**{mean_transfer:.1%}**. "
    + ("Preservation stays within half a point of A alone on every variant and pair."
       if not missed else
       "Preservation misses the half-point allowance on " + "; ".join(missed)
       + ": the threshold is set at 0.5% of calibration negatives, so about half a point of "
       "A's own test images is expected to flip, and with 400 test images per variant one "
       "image is a quarter point."))

# %% [markdown]
# ## Checks and record

# %%
assert chosen == TransferProtocol().gate, "the library's default gate is not the one the rule picks"
assert len(per_variant) >= 3 and all(picks.values())
for name, summary in per_variant.items():  # every method ran on both pairs of each variant
    assert {s["pair"] for s in summary if s["method"] == "aligned_spatial"} == {
        "megann <- megann", "widenn <- deepnn"}, name
    for s in summary:  # a baseline that copies nothing transfers nothing, on every variant
        if s["method"] == "direct_weight_copy":
            assert s["transfer_mean"] < 0.05, (name, s)

record = mi.write_result(
    "transfer-variants",
    {f"{v['variant']}|{v['pair']}|{k}": v[k] for v in verdicts
     for k in ("gap", "preservation lost")}
    | {f"{n}|picked": p for n, p in picks.items()}
    | {f"gate|{r['gate']}|{r['variant']}|{k}": r[k] for r in gate_rows
       for k in ("validation transfer", "test transfer")}
    | {"gate_chosen": chosen, "mean_picked_transfer": mean_transfer},
    seeds=seeds,
    data_source=mi.load_digits().source,
    title="Concept transfer on three protocol variants",
    started=started,
)
print(f"result record written to {record}")
