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
# # SAE-free method 9: continual concept learning
#
# Concepts rarely arrive all at once. Here A first receives the 4, then, as a separate later
# transfer, the 5. Each step calibrates its threshold only on what is known at that step: the
# first step has never heard of the 5. The question continual learning asks (McCloskey & Cohen,
# 1989; Kirkpatrick et al., 2017) is whether the second step makes A **forget** the first.
# Because every step here adds a module and takes no gradient step on A's weights, old
# knowledge can only be disturbed where the new detector claims an image.

# The family shares one mechanism (see the [SAE-free overview](../transfer_s1_precomputed_vector_alignment/)):
# TopK sparse autoencoders (Gao et al., 2024) on the first fully connected layer of each model,
# a map between their code spaces fit on images passed through both, and B's upper layers
# judging the mapped features. After fitting, the encoder, map and decoder fold into plain
# matrices, so the edited recipient runs **without any SAE**.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from mechinterp import get_profile
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
study = method_study("continual_concept_learning")

# %% [markdown]
# ## The forgetting curve
#
# After each step, for every seed: accuracy on A's own digits, on the 4s and on the 5s.

# %%
steps = {"before": [], "after adding 4": [], "after adding 5": []}
for seed in get_profile().seeds:
    pair = model_pair("megann", "megann", seed=seed)
    models = [pair.recipient.model, *sae_free.continual_steps(TransferContext(pair, seed=seed))]
    labels = pair.data.test_labels
    own = torch.isin(labels, torch.tensor(pair.protocol.recipient_digits))
    for name, model in zip(steps, models, strict=True):
        with torch.no_grad():
            preds = model(pair.data.test_images).argmax(1)
        steps[name].append({"own digits": (preds[own] == labels[own]).float().mean().item(),
                            "4": (preds[labels == 4] == 4).float().mean().item(),
                            "5": (preds[labels == 5] == 5).float().mean().item()})
curve = {name: {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
         for name, runs in steps.items()}
fig, ax = plt.subplots(figsize=(6, 3.4))
for key in ["own digits", "4", "5"]:
    ax.plot(list(curve), [c[key] for c in curve.values()], "o-", label=f"accuracy on {key}")
ax.set_ylim(-0.02, 1.02)
ax.set_title("Adding concepts one after another (MegaNN <- MegaNN, mean over seeds)")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()
forgetting = curve["after adding 4"]["4"] - curve["after adding 5"]["4"]
print(f"forgetting of the 4 when the 5 is added: {forgetting:+.1%} "
      f"({curve['after adding 4']['4']:.1%} -> {curve['after adding 5']['4']:.1%})")

# %% [markdown]
# The 4 is not forgotten: the second step adds a detector that claims only images it scores as
# 5s, and those are rarely 4s. The 5 itself transfers poorly, for the reason shown on the
# [multi-concept page](../transfer_s6_multi_concept_transfer/): to the donor, the recipient's
# 0s look like 5s, so a threshold that protects A's own digits excludes most real 5s.

# %% [markdown]
# ## Checks and record

# %%
summary, same, cross = study.summary, study.same, study.cross
assert curve["after adding 4"]["4"] > 0.6
assert forgetting < 0.05  # the second concept does not erase the first
assert curve["after adding 5"]["5"] < curve["after adding 5"]["4"]
assert curve["after adding 5"]["own digits"] > curve["before"]["own digits"] - 0.015
for s in summary.values():
    assert s["transfer_mean"] > 0.6

record = study.write_record(started)
print(f"result record written to {record}")
