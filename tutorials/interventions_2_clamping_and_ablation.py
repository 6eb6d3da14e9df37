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
# # Interventions 2: clamping and ablation
#
# Where steering *adds* something, ablation takes something away and clamping pins it to a
# chosen value. Each asks what a component, a direction or a feature contributes, by removing
# or fixing it and measuring what changes:
#
# * **zero ablation** sets a head's output to zero, **mean ablation** to its average over
#   ordinary text (a gentler null: zero is a value the head may never produce);
# * **directional ablation** projects one direction out of the residual stream, as Arditi et
#   al. (2024) did for refusal;
# * **clamping** fixes neurons, a direction's component or a sparse-autoencoder feature to a
#   value (here: the value they take in calm contexts).
#
# All are reversible hooks on `toyworld-2l`; the suite checks the logits are back afterwards.

# %%
import time

import matplotlib.pyplot as plt
import torch

import mechinterp as mi
from mechinterp.benchmarks import factual_recall, toxicity_rate
from mechinterp.interventions import HeadAblation, get_intervention, mean_activation
from mechinterp.interventions.ready import neuron_clamp
from mechinterp.interventions.tuning import reference_tokens
from mechinterp.reporting import show_markdown
from mechinterp.toyworld import heldout_loss, load_toy_model

started = time.perf_counter()
toy = load_toy_model("toyworld-2l")
model, tok = toy.model, toy.tokenizer
n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads


def recall(m) -> float:
    return factual_recall(m, tok)["accuracy"]


def toxicity(m) -> float:
    return toxicity_rate(m, tok, n=300)["trigger"]


base = {"recall": recall(model), "toxicity": toxicity(model),
        "loss": heldout_loss(model, toy.spec)}
print({k: round(v, 3) for k, v in base.items()})

# %% [markdown]
# ## Which heads does fact recall need? Zero against mean ablation
#
# Every head, ablated alone; the number is the share of the 16 held-out fact prompts (each
# subject in the one template it never appears with in training) still answered with the
# right colour.

# %%
reference = reference_tokens(tok, toy.spec.mixture, n_ctx=toy.spec.n_ctx)
grids = {mode: torch.zeros(n_layers, n_heads) for mode in ("zero", "mean")}
for layer in range(n_layers):
    means = mean_activation(model, reference, f"blocks.{layer}.attn.hook_z")
    for head in range(n_heads):
        for mode in grids:
            ablation = HeadAblation(layer, head, mode,
                                    mean=means[head] if mode == "mean" else None)
            with ablation.applied(model):
                grids[mode][layer, head] = recall(model)
fig, axes = plt.subplots(1, 2, figsize=(9, 2.6))
for ax, (mode, grid) in zip(axes, grids.items(), strict=True):
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
    ax.set_title(f"{mode} ablation: fact recall")
    ax.set_xticks(range(n_heads), [f"H{h}" for h in range(n_heads)])
    ax.set_yticks(range(n_layers), [f"L{i}" for i in range(n_layers)])
    for (r, c), v in zip(torch.cartesian_prod(torch.arange(n_layers),
                                              torch.arange(n_heads)).tolist(),
                         grid.flatten().tolist(), strict=True):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", color="w", fontsize=9)
fig.colorbar(im, ax=axes, fraction=0.03)
plt.show()
critical = divmod(int(grids["mean"].argmin()), n_heads)
print(f"the head fact recall needs most: L{critical[0]}.H{critical[1]} "
      f"(recall {grids['mean'].min():.2f} when mean-ablated, {grids['zero'].min():.2f} zeroed)")
print(f"mean recall over heads: zero ablation {grids['zero'].mean():.3f}, mean ablation "
      f"{grids['mean'].mean():.3f}")

# %% [markdown]
# The two nulls ask different questions. Mean ablation removes what the head says about *this*
# prompt and keeps its average contribution; zero ablation also removes the average, a value
# the head never leaves in training. They need not agree on how much a head matters, so both
# are reported, as Zhang & Nanda (2024) advise for patching: it guards against reading an
# artefact of the null as a mechanism.

# %%
needed = {mode: [(divmod(i, n_heads), float(v)) for i, v in enumerate(grid.flatten())
                 if v < 0.8] for mode, grid in grids.items()}
if needed["mean"] or needed["zero"]:
    text = "; ".join(f"{mode} ablation: " + (", ".join(f"L{lh[0]}.H{lh[1]} ({v:.2f})"
                                                       for lh, v in found) or "none")
                     for mode, found in needed.items())
    show_markdown(f"Heads without which recall falls below 0.8 on this model: {text}. The "
                  f"harsher null for the most needed head is "
                  f"{'mean' if grids['mean'].min() < grids['zero'].min() else 'zero'} "
                  f"ablation.")
else:
    show_markdown(f"On this model no head is needed on its own: removed alone, any head leaves "
                  f"recall at {min(grids['mean'].min(), grids['zero'].min()):.2f} or more "
                  f"under either null, so the fact is stored redundantly across heads.")

# %% [markdown]
# ## How many neurons carry the toxicity?
#
# Rank the last MLP's neurons by how much they push toxic over polite words in trigger
# contexts (activation difference times direct effect on the logits), then clamp the top `k`
# to their calm-context means.

# %%
ks = [1, 5, 10, 20, 40, 80]
clamp_curve = []
for k in ks:
    with neuron_clamp(toy, k).applied(model):
        clamp_curve.append((k, toxicity(model), heldout_loss(model, toy.spec)))
print("k, toxicity, loss:", [(k, round(t, 3), round(v, 3)) for k, t, v in clamp_curve])
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(ks, [c[1] for c in clamp_curve], "o-", label="toxicity rate")
ax.plot(ks, [c[2] / base["loss"] - 1 for c in clamp_curve], "s--", label="held-out loss change")
ax.set_xscale("log")
ax.set_xlabel(f"neurons clamped (of {model.cfg.d_mlp})")
ax.set_title("Clamping the most toxicity-promoting neurons")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Toxicity falls as more neurons are clamped, but slowly: the behaviour is spread over many
# neurons and over the attention path as well, so no small set of neurons is "the toxicity
# circuit". A direction is a better unit here.

# %% [markdown]
# ## Directions and features
#
# The same behaviour removed three more ways: the toxicity direction (trigger minus calm mean)
# projected out of the residual stream after every block; the sparse-autoencoder feature that
# best separates trigger from calm contexts switched off; and, for comparison, the ready-made
# neuron clamp (20 neurons).

# %%
rows = {}
for name in ("toxicity-ablate", "toxicity-sae-clamp", "neuron-clamp"):
    with get_intervention(name, toy).applied(model):
        rows[name] = {"toxicity": toxicity(model), "recall": recall(model),
                      "loss": heldout_loss(model, toy.spec)}
for name, r in rows.items():
    print(f"{name:20s} toxicity {base['toxicity']:.3f} -> {r['toxicity']:.3f}, recall "
          f"{r['recall']:.3f}, loss {base['loss']:.3f} -> {r['loss']:.3f}")

# %% [markdown]
# Projecting a direction out removes only what a context has *along* it; steering (the
# [steering page](../interventions_1_steering/)) moves trigger contexts past the calm ones.

# %%
show_markdown("; ".join(
    f"`{name}` changes the toxic share by {r['toxicity'] / base['toxicity'] - 1:+.0%} with "
    f"recall {r['recall']:.2f} and the loss {r['loss'] / base['loss'] - 1:+.1%}"
    for name, r in rows.items()) + ". " + (
    "None of them reaches a 90% cut." if all(r["toxicity"] > 0.1 * base["toxicity"]
                                            for r in rows.values())
    else "At least one reaches a 90% cut."))

# %% [markdown]
# ## Checks and record

# %%
assert clamp_curve[-1][1] < clamp_curve[0][1]  # more neurons clamped, less toxicity
assert grids["mean"].min() == grids["mean"][critical].item()  # the head named above
for name in ("toxicity-ablate", "toxicity-sae-clamp"):  # removing one direction is gentle
    assert rows[name]["recall"] >= 0.95 and rows[name]["loss"] <= 1.05 * base["loss"]
record = mi.write_result(
    "interventions-ablation",
    {"base": base, "head_recall_zero": grids["zero"].tolist(),
     "head_recall_mean": grids["mean"].tolist(),
     "neuron_clamp_curve": [list(c) for c in clamp_curve], "removal": rows},
    seeds=[toy.seed], data_source="toy world", title="Interventions: clamping and ablation",
    config={"model": "toyworld-2l"}, started=started)
print(f"result record written to {record}")
