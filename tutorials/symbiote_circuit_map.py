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
# # Reading the circuit map and the weight inhibition
#
# A trained symbiote is a record of experiments: for every digit it holds the gates that
# silence that digit at the smallest cost B could find. This tutorial reads that record as a
# map of the primary CNN of the [normal condition](../symbiosis_normal/):
#
# 1. which units B dims or boosts for each digit, layer by layer;
# 2. how much those unit sets overlap between digits;
# 3. whether the map is causal: ablating B's units *without* B should suppress the digit more
#    than ablating as many random units;
# 4. the weight-inhibition view: B's gates folded into A's weights, as a per-digit weight
#    difference;
# 5. whether the map is stable when B is trained again from other seeds.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import mechinterp as mi
from mechinterp.plotting import heatmap
from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.symbiote import (
    causal_check,
    changed_units,
    circuit_map,
    evaluate_inhibition,
    fold_gates,
    jaccard,
    overlap_matrix,
    symbiote_for,
    weight_diff,
)
from mechinterp.symbiote.baselines import all_unit_means
from mechinterp.symbiote.seeds import SEEDS

started = time.perf_counter()
data = mi.load_digits()
trained = symbiote_for("normal", data, seed=0)
A, B = trained.primary.model, trained.symbiote
digits = list(data.classes)

# %% [markdown]
# ## The circuit map
#
# Each row is a digit, each column a unit; the colour is B's gate minus one. Blue cells are
# units B dims to silence the digit, red cells units it boosts, which strengthens the digits
# that the silenced one's images should fall to instead.

# %%
gates = circuit_map(B, digits)
threshold = B.config.change_threshold
for layer, values in gates.items():
    columns = torch.arange(values.shape[1])
    if values.shape[1] > 32:  # wide layers: keep the units B changes for at least one digit
        columns = torch.nonzero(values.abs().max(0).values > threshold).flatten()
    shown = values[:, columns]
    fig = heatmap(shown, row_labels=[str(d) for d in digits],
                  col_labels=[str(int(i)) for i in columns],
                  xlabel=f"{layer} unit" + (" (units B changes for some digit)"
                                            if len(columns) < values.shape[1] else ""),
                  ylabel="inhibited digit", title=f"Gate - 1 at {layer}",
                  colorbar_label="gate - 1",
                  figsize=(min(2.5 + 0.3 * shown.shape[1], 15), 4))
    if shown.shape[1] > 32:
        fig.axes[0].tick_params(axis="x", labelsize=6, labelrotation=90)
    plt.show()

# %% [markdown]
# ## Shared circuitry
#
# The overlap between two digits is the Jaccard index of the unit sets B changes for them
# (gate moved by more than 0.1). Digits that B handles with the same units share
# circuitry in A.

# %%
overlap = overlap_matrix(B, digits)
fig = heatmap(overlap, row_labels=[str(d) for d in digits], col_labels=[str(d) for d in digits],
              title="Overlap of the units B changes (Jaccard)", cmap="viridis", center=None,
              annotate=True, figsize=(7, 5.5))
plt.show()
off_diagonal = overlap[~torch.eye(len(digits), dtype=torch.bool)]
print(f"mean overlap between different digits: {off_diagonal.mean():.2f}, "
      f"largest: {off_diagonal.max():.2f}")

# %% [markdown]
# ## Is the map causal?
#
# Mean-ablate only the units B *dims* for a digit (gate below 0.9), with B switched off, and
# see how often the digit's images are still recognised; repeat with as many randomly chosen
# units per layer.

# %%
means = all_unit_means(A, data.train_images)
checks = [{"digit": d, **causal_check(A, B, data, d, n_random=5, seed=d, means=means)}
          for d in digits]
show_markdown(markdown_table(
    checks,
    {"digit": "digit", "n_units": "units dimmed by B", "digit_accuracy_before": "accuracy, A",
     "digit_accuracy_ablated": "B's units ablated", "digit_accuracy_random": "random units ablated",
     "nontarget_drop_ablated": "other digits lose"},
    {"digit_accuracy_before": ".1%", "digit_accuracy_ablated": ".1%",
     "digit_accuracy_random": ".1%", "nontarget_drop_ablated": "+.1%"}))

x = np.arange(len(digits))
fig, ax = plt.subplots(figsize=(8, 3))
ax.bar(x - 0.25, [c["digit_accuracy_before"] for c in checks], 0.25, label="intact")
ax.bar(x, [c["digit_accuracy_random"] for c in checks], 0.25, label="random units ablated")
ax.bar(x + 0.25, [c["digit_accuracy_ablated"] for c in checks], 0.25, label="B's units ablated")
ax.set_xticks(x, [str(d) for d in digits])
ax.set_xlabel("digit")
ax.set_ylabel("accuracy on the digit")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The units B dims matter more to their digit than random units do, but ablating them alone
# does not silence the digit: B's effect also comes from the units it *boosts* and from
# small shadings below the 0.1 threshold, so the dimmed set is a partial, not complete,
# account of the digit's pathway. Ablation is also a blunter tool than a gate (it removes a
# unit instead of shading it), which is why it costs the other digits more than B does.
#
# ## Weight inhibition
#
# A gate `g >= 0` on a unit after its ReLU can be moved into the weights: `g * relu(w.x + b)`
# equals `relu((g w).x + g b)`. Folding B's gates for one digit into a copy of A gives a
# network with no symbiote and no hooks that behaves exactly like A+B for that digit. The
# difference between its weights and A's is the weight-inhibition picture: here, for each
# digit, the change in each first-layer 3x3 kernel.

# %%
folded = {d: fold_gates(A, B, d) for d in digits}
with torch.no_grad():
    gaps = []
    for d in digits:
        hooked = A.run_with_hooks(data.test_images, fwd_hooks=B.hooks(
            torch.full((data.n_test,), d)))
        gaps.append((folded[d](data.test_images) - hooked).abs().max().item())
print(f"largest logit difference between folded A and A+B: {max(gaps):.2e}")

kernel_diffs = torch.stack([weight_diff(A, folded[d]).get(
    "conv1.weight", torch.zeros_like(A.conv1.weight))[:, 0] for d in digits])  # (10, 8, 3, 3)
span = kernel_diffs.abs().max().item()
fig, axes = plt.subplots(len(digits) + 1, kernel_diffs.shape[1], figsize=(7, 9.5))
for c in range(kernel_diffs.shape[1]):
    axes[0, c].imshow(A.conv1.weight[c, 0].detach(), cmap="gray")
    axes[0, c].set_title(f"ch {c}", fontsize=8)
    for d in digits:
        axes[d + 1, c].imshow(kernel_diffs[d, c], cmap="RdBu_r", vmin=-span, vmax=span)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
axes[0, 0].set_ylabel("A", fontsize=8)
for d in digits:
    axes[d + 1, 0].set_ylabel(f"inhibit {d}", fontsize=8)
fig.suptitle("conv1 kernels of A (top) and their change when each digit is inhibited")
fig.tight_layout()
plt.show()

# %% [markdown]
# The same fold applies to every layer. Summed over layers, the share of A's weights that
# change by more than 10% for each digit is:

# %%
changed_share = []
for d in digits:
    diffs = weight_diff(A, folded[d])
    params = dict(A.named_parameters())
    big = sum(int((diff.abs() > 0.1 * params[name].detach().abs().cpu()).sum())
              for name, diff in diffs.items())
    total = sum(p.numel() for name, p in params.items() if name.endswith("weight"))
    changed_share.append(big / total)
print({d: f"{s:.1%}" for d, s in zip(digits, changed_share, strict=True)})

# %% [markdown]
# ## Is the map stable across seeds?
#
# B is trained again from four more seeds, on the same A (so that unit sets can be compared
# unit by unit). The inhibition itself should be
# reproducible; the exact unit sets need not be, since different gate patterns can reach the
# same behaviour. The Jaccard overlap of each digit's unit set across seeds measures how much
# of the map is a property of A rather than of one training run of B.

# %%
seeds = list(SEEDS)
runs = {0: trained} | {s: symbiote_for("normal", data, seed=s) for s in seeds if s != 0}
stability = []
for d in digits:
    sets = {s: changed_units(r.symbiote, d) for s, r in runs.items()}
    pairs = [(a, b) for i, a in enumerate(seeds) for b in seeds[i + 1:]]
    metrics = {s: evaluate_inhibition(r.primary.model, data, d,
                                      r.symbiote.hooks(torch.full((data.n_test,), d)))
               for s, r in runs.items()}
    stability.append({
        "digit": d,
        "jaccard": float(np.mean([jaccard(sets[a], sets[b]) for a, b in pairs])),
        "rate_mean": float(np.mean([m["target_output_rate"] for m in metrics.values()])),
        "rate_max": float(np.max([m["target_output_rate"] for m in metrics.values()])),
        "drop_mean": float(np.mean([m["nontarget_accuracy_drop"] for m in metrics.values()])),
        "drop_std": float(np.std([m["nontarget_accuracy_drop"] for m in metrics.values()],
                                 ddof=1)),
        "units_std": float(np.std([sum(len(v) for v in u.values()) for u in sets.values()],
                                  ddof=1)),
    })
show_markdown(markdown_table(
    stability,
    {"digit": "digit", "jaccard": "unit-set overlap across seeds", "rate_mean":
     "target rate (mean)", "drop_mean": "drop (mean)", "drop_std": "drop (std)",
     "units_std": "units changed (std)"},
    {"jaccard": ".2f", "rate_mean": ".2%", "drop_mean": "+.2%", "drop_std": ".2%",
     "units_std": ".1f"}))
mean_jaccard = float(np.mean([s["jaccard"] for s in stability]))
print(f"seeds {seeds}: mean unit-set overlap {mean_jaccard:.2f}")

# %% [markdown]
# The causal check above, repeated for every seed's B (mean over digits per seed):

# %%
causal = {0: checks} | {
    s: [{"digit": d, **causal_check(A, r.symbiote, data, d, n_random=5, seed=d, means=means)}
        for d in digits] for s, r in runs.items() if s != 0}
causal_by_seed = {key: [float(np.mean([c[key] for c in per])) for per in causal.values()]
                  for key in ("digit_accuracy_before", "digit_accuracy_ablated",
                              "digit_accuracy_random")}
for key, values in causal_by_seed.items():
    print(f"{key}: {np.mean(values):.1%} ± {np.std(values, ddof=1):.1%} over seeds "
          f"({', '.join(f'{v:.1%}' for v in values)})")

# %% [markdown]
# ## Checks and record

# %%
mean_ablated = float(np.mean(causal_by_seed["digit_accuracy_ablated"]))
mean_random = float(np.mean(causal_by_seed["digit_accuracy_random"]))
assert mean_ablated < mean_random - 0.05, (mean_ablated, mean_random)
# in every seed, B's dimmed units matter more than as many random ones
assert all(a < r for a, r in zip(causal_by_seed["digit_accuracy_ablated"],
                                  causal_by_seed["digit_accuracy_random"], strict=True))
assert max(gaps) < 1e-3
assert max(s["rate_max"] for s in stability) <= 0.02
assert np.mean([s["drop_mean"] for s in stability]) <= 0.01
assert mean_jaccard > off_diagonal.mean().item()  # same digit across seeds > different digits

record = mi.write_result(
    "symbiote-circuit-map",
    {f"causal.{key}{tail}": float(f(values)) for key, values in causal_by_seed.items()
     for tail, f in (("", np.mean), ("_std", lambda v: np.std(v, ddof=1)))}
    | {"causal.per_seed": causal_by_seed,
     "overlap_between_digits": off_diagonal.mean().item(),
     "stability.mean_jaccard": mean_jaccard,
     "stability.target_output_rate_max": max(s["rate_max"] for s in stability),
     "stability.nontarget_drop_mean": float(np.mean([s["drop_mean"] for s in stability])),
     "fold.max_logit_gap": max(gaps),
     "weights_changed_over_10pct": changed_share},
    seeds=seeds,
    data_source=data.source,
    title="SymbioteNet, circuit map",
    config=trained.config.as_dict(),
    started=started,
)
print(f"result record written to {record}")
