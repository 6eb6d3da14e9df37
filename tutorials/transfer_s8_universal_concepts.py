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

from mechinterp.transfer import (
    TransferContext,
    model_pair,
)
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
summary, same, cross = study.summary, study.same, study.cross
shared = {k: ((v > 0.2) & (v < 0.8)).float().mean().item() for k, v in shares.items()}
assert shared["megann <- megann"] > 0.8
assert all(v > 0.2 for v in shared.values())  # a real share of latents spans both models
for s in summary.values():
    assert s["transfer_mean"] > 0.6 and s["specificity_mean"] < 0.05
    assert s["preservation_mean"] > s["baseline_preservation_mean"] - 0.015

record = study.write_record(started)
print(f"result record written to {record}")
