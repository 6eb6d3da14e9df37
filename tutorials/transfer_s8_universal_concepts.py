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
# # SAE-free method 8: universal architecture-agnostic concepts
#
# Instead of one dictionary per model and a map between them, one dictionary for both, in the
# spirit of Universal Sparse Autoencoders (Thasarathan et al., 2025): a TopK SAE is trained on
# the two models' first-layer features side by side (each standardised), so every latent has a
# part in A's space and a part in B's. At transfer time A alone must reach the shared codes
# (a ridge map from A's features), and the B half of the decoder turns them into B's features
# for B's upper layers to judge. All of it folds into one affine map.

# %%
import time

import matplotlib.pyplot as plt

from mechinterp.reporting import show_markdown
from mechinterp.transfer import (
    TransferContext,
    list_methods,
    model_pair,
)
from mechinterp.transfer.leaderboard import pick_best, run_grid, summarise_runs
from mechinterp.transfer.methods import sae_free
from mechinterp.transfer.report import method_study

started = time.perf_counter()

# %% [markdown]
# ## Numbers
#
# Same [protocol](../../transfer/protocol/) as every transfer method: A knows 0-3, B knows
# 2-5, the concept is 4, the specificity digit is 5. Both leaderboard pairs (MegaNN receives
# from MegaNN; WideNN receives from DeepNN), every seed of the profile; mean and, in brackets,
# standard deviation over seeds.

# %%
study = method_study("universal_concepts")

# %% [markdown]
# Against the rest of the SAE-free family, whose methods keep one dictionary per model and a
# map between them, and against the donor ensemble (all of B run beside A, the ceiling for any
# method that runs B). The family's pick follows the leaderboard's rule, on the validation
# split only: preservation within half a point of the unedited A on both pairs first, then
# the highest validation transfer.

# %%
summary, same, cross = study.summary, study.same, study.cross
family = summarise_runs(run_grid(list_methods("sae-free")))
picked = pick_best(family)
method1 = {s["pair"]: s for s in family if s["method"] == "precomputed_vector_alignment"}
ensemble = method_study("donor_ensemble", show=False).summary
finetune = method_study("finetune_with_budget", show=False).summary


def pct(key, rows=summary):
    return " and ".join(f"{rows[name][key]:.1%}" for name in summary)


rank = {name: 1 + sum(f["transfer_mean"] > s["transfer_mean"] for f in family
                      if f["pair"] == name and f["method"] != "universal_concepts")
        for name, s in summary.items()}
lost = max(s["baseline_preservation_mean"] - s["preservation_mean"] for s in summary.values())
show_markdown(
    f"On the two pairs ({' and '.join(summary)}) the shared dictionary recognises "
    f"{pct('transfer_mean')} of the 4s, against {pct('transfer_mean', method1)} for method 1 "
    f"and {pct('transfer_mean', ensemble)} for the donor ensemble; "
    + ("that is the highest test transfer of the nine SAE-free methods on both pairs. "
       if all(r == 1 for r in rank.values()) else
       "its test transfer ranks " + " and ".join(f"{r} of 9" for r in rank.values())
       + " in the SAE-free family. ")
    + ("The leaderboard's rule picks it from the family on the validation split. "
       if picked == "universal_concepts" else
       f"The leaderboard's rule, on the validation split, picks `{picked}` from the family. ")
    + f"It loses at most {100 * lost:.1f} points of accuracy on A's own digits and calls "
    f"{pct('specificity_mean')} of the 5s 4s (fine-tuning, which never saw a 5 either: "
    f"{pct('specificity_mean', finetune)}).")

# %% [markdown]
# ## Is the dictionary shared?
#
# A latent is *shared* when its decoder direction has weight in both models' halves. The
# histogram shows, for each latent of the seed-0 dictionary on each pair, the fraction of its
# decoder norm that lies in A's half: 0 is B only, 1 is A only.

# %%
shares = {}
for a, b in [("megann", "megann"), ("widenn", "deepnn")]:
    pair = model_pair(a, b, seed=0)
    ctx = TransferContext(pair, seed=0)
    sae, fa, _ = sae_free.universal_dictionary(ctx)
    w = sae.W_dec.detach()
    share = (w[: fa.shape[1]].pow(2).sum(0) / w.pow(2).sum(0)).cpu()
    shares[f"{a} <- {b}"] = share
fig, ax = plt.subplots(figsize=(6, 3.4))
for name, share in shares.items():
    ax.hist(share.numpy(), bins=20, range=(0, 1), alpha=0.6, label=name)
ax.set_xlabel("share of the latent's decoder norm in A's half")
ax.set_ylabel("latents")
ax.set_title("One dictionary for two models (seed 0)")
ax.legend()
fig.tight_layout()
plt.show()
for name, share in shares.items():
    both = ((share > 0.2) & (share < 0.8)).float().mean().item()
    print(f"{name}: {both:.0%} of latents put 20-80% of their norm in each model")

# %% [markdown]
# Between two MegaNNs nearly every latent is shared: the two first layers are close to a
# rotation of each other. Between WideNN and DeepNN fewer are, and many latents live mostly in
# one model; the transfer only needs the shared ones to carry the concept.

# %% [markdown]
# ## Checks and record

# %%
shared = {k: ((v > 0.2) & (v < 0.8)).float().mean().item() for k, v in shares.items()}
assert shared["megann <- megann"] > 0.8
assert all(v > 0.2 for v in shared.values())  # a real share of latents spans both models
for name, s in summary.items():
    # one shared dictionary transfers more than two dictionaries and a map (method 1)
    assert s["transfer_mean"] > method1[name]["transfer_mean"]
    assert s["specificity_mean"] < finetune[name]["specificity_mean"] / 2  # far below fine-tuning
    assert s["preservation_mean"] > s["baseline_preservation_mean"] - 0.015

record = study.write_record(started)
print(f"result record written to {record}")
