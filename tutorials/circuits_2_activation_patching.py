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
# # Circuits 2: activation patching
#
# Activation patching asks a causal question of one component at a time. Run the model on a
# **clean** prompt and on a **corrupted** one that differs in a single token and calls for a
# different answer. Then run the corrupted prompt again, but paste in one activation from the
# clean run. If the answer comes back, that activation carries the information the corruption
# destroyed. This is *denoising*; *noising* pastes one corrupted activation into the clean run
# and asks what is lost. Zhang & Nanda (2024) compare the choices this involves (the metric,
# the direction, how the corruption is made); we follow their advice: corrupt by replacing one
# token with another of the same kind, and measure the **logit difference** between the two
# answers.
#
# Scores are normalised: 0 is the corrupted run, 1 the clean run.
#
# The model is `toyworld-2l`, two transformer layers trained on the toy world of
# [the first circuits page](../circuits_1_capture_and_attention/), where every task is planted
# by construction, so we can check what patching finds against what we know.

# %%
import time

import matplotlib.pyplot as plt
import torch

import mechinterp as mi
from mechinterp.circuits import activation_patching, discover_circuit, ground_truth, roc_auc
from mechinterp.plotting import heatmap
from mechinterp.siit import SIIT_TASKS, load_siit_models
from mechinterp.toyworld import get_task, load_toy_model

started = time.perf_counter()
toy = load_toy_model("toyworld-2l")
model, tok = toy.model, toy.tokenizer
print(f"toyworld-2l: {toy.meta['steps']} training steps, held-out loss "
      f"{toy.meta['heldout_loss']:.3f}")

# %% [markdown]
# ## An indirect-object prompt pair
#
# The clean prompt names two people, then repeats one of them (S2); the answer is the other one
# (the indirect object, IO). The corrupted prompt repeats the *other* name at S2, which flips
# the answer, and nothing else changes.

# %%
ioi = get_task("ioi").prompts(64, seed=1)
print("clean:    ", tok.decode(ioi.clean[0]), "->", tok.decode([ioi.answer[0]]))
print("corrupted:", tok.decode(ioi.corrupted[0]), "->", tok.decode([ioi.wrong[0]]))
print("positions:", ioi.positions)

# %% [markdown]
# ## The residual stream, layer by position
#
# Patch the residual stream entering each layer (and leaving the last) at one position at a
# time. At the input, only the S2 position differs, so patching it there restores everything;
# at the output, only the last position matters, because that is where the answer is read.
# In between, the picture shows **where and when the information moves** from S2 to the end.

# %%
resid = activation_patching(model, ioi, components=("resid",))
words = tok.decode(ioi.clean[0]).split()
layers = [f"into L{i}" for i in range(model.cfg.n_layers)] + ["output"]
fig = heatmap(resid.scores["resid"], row_labels=layers, col_labels=words,
              title="Denoising the residual stream (ioi, 64 prompt pairs)",
              colorbar_label="share of the logit difference restored", figsize=(11, 2.6))
fig.axes[0].tick_params(axis="x", rotation=60)
plt.show()
s2, end = ioi.positions["s2"], ioi.positions["end"]
moved = [float(resid.scores["resid"][layer, end]) for layer in range(model.cfg.n_layers + 1)]
print("restored by the END position, entering each layer:", [f"{m:.2f}" for m in moved])

# %% [markdown]
# ## Heads and MLPs
#
# The same question asked of each attention head (its output at every position) and each MLP.

# %%
parts = activation_patching(model, ioi, components=("heads", "mlp"))
noised = activation_patching(model, ioi, components=("heads", "mlp"), direction="noise")
fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
for ax, run, name in zip(axes, (parts, noised), ("denoising", "noising"), strict=True):
    grid = torch.cat([run.scores["heads"], run.scores["mlp"][:, None]], 1)
    span = float(grid.abs().max())
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-span, vmax=span)
    ax.set_xticks(range(grid.shape[1]), [f"H{h}" for h in range(model.cfg.n_heads)] + ["MLP"])
    ax.set_yticks(range(grid.shape[0]), [f"L{i}" for i in range(grid.shape[0])])
    ax.set_title(f"{name} ({run.forward_passes} runs, {run.seconds:.2f} s)")
    for (r, c), v in zip(torch.cartesian_prod(torch.arange(grid.shape[0]),
                                              torch.arange(grid.shape[1])).tolist(),
                         grid.flatten().tolist(), strict=True):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=8)
fig.colorbar(im, ax=axes, fraction=0.03)
plt.show()

# %% [markdown]
# The two directions answer different questions. Denoising finds components that are
# *sufficient* to carry the clean information on their own; noising finds components the clean
# run *needs*. Where the two disagree, the model has redundancy (two heads doing the same
# job, so that corrupting one costs little) or a component works only with others.

# %% [markdown]
# ## Checking against the attention-pattern circuit
#
# A reference for this task can be read from attention, which patching never looks at: a
# head that moves the corrupted information must attend from the end to S2. It is a
# heuristic, not a ground truth (nothing checks it causally, and it can never name an MLP);
# [page 5](../circuits_5_discovery_leaderboard/) scores patching against circuits built into
# the weights and checked causally.

# %%
truth = ground_truth(model, ioi)
head_scores = {k: v for k, v in parts.node_scores().items() if ".H" in k}
ranked = sorted(head_scores, key=lambda k: -abs(head_scores[k]))
print("heads attending END -> S2 (attention rule):", sorted(truth.nodes))
print("heads ranked by denoising score:", ranked[:4])

# %% [markdown]
# ## The metric matters less than the corruption
#
# The KL divergence from the clean next-token distribution is the other common metric. It
# looks at the whole distribution rather than two logits, so it also counts changes the task
# does not care about. On this task the two rank the heads alike:

# %%
kl = activation_patching(model, ioi, components=("heads", "mlp"), metric="kl")
a, b = parts.scores["heads"].flatten(), kl.scores["heads"].flatten()
corr = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
print(f"correlation of head scores, logit difference vs KL: {corr:.3f}")

# %% [markdown]
# ## Induction on the attention-only model
#
# On `attn-only-2l`, trained only on repeated random tokens, the corrupted prompt swaps two
# tokens of the first copy. That changes *where* the current token was seen before, so the
# difference has to travel through the previous-token head into the induction heads' keys.

# %%
induction_model = load_toy_model("attn-only-2l").model
induction = get_task("induction").prompts(64, seed=1)
ind = activation_patching(induction_model, induction, components=("heads",))
fig = heatmap(ind.scores["heads"], row_labels=["L0", "L1"],
              col_labels=[f"H{h}" for h in range(4)], annotate=True,
              title="Denoising heads (induction, attn-only-2l)", figsize=(5, 2.4))
plt.show()
ind_truth = ground_truth(induction_model, induction)
print("attention rule: previous-token and induction heads:", sorted(ind_truth.nodes))

# %% [markdown]
# ## On a model whose circuit is known
#
# The attention rule is only a heuristic. The benchmark models of
# [page 5](../circuits_5_discovery_leaderboard/) have their circuit built in: in `siit-ioi`
# seed 1 a duplicate-token head, an S-inhibition head and a name-mover head were trained to
# implement those steps, every other component was trained on a distractor job of its own
# and not to affect the answer, and every head's weights are held at one norm. The same
# denoising run on it, scored by ROC AUC against the built circuit, beside the data-free
# weight-norm baseline:

# %%
siit = load_siit_models("siit-ioi", [1])[0]
siit_prompts = SIIT_TASKS["siit-ioi"].prompts(64, seed=1)
patched = discover_circuit(siit.model, siit_prompts, "activation", truth=siit.truth())
norms = discover_circuit(siit.model, siit_prompts, "weight_norm", truth=siit.truth())
grid = torch.tensor([[patched.node_scores[f"L{layer}.H{h}"] for h in range(4)]
                     for layer in range(4)])
fig = heatmap(grid, row_labels=[f"L{layer}" for layer in range(4)],
              col_labels=[f"H{h}" for h in range(4)], annotate=True, figsize=(5, 3.4),
              title="Denoising heads, siit-ioi seed 1")
plt.show()
print("built circuit:", ", ".join(f"{node} = {comp}" for node, comp in siit.alignment.items()))
print(f"ROC AUC against the built circuit: activation patching {patched.roc_auc:.3f}, "
      f"weight norm (no data) {norms.roc_auc:.3f}")

# %% [markdown]
# ## Checks and record

# %%
auc_ioi = roc_auc(head_scores, truth.nodes)
auc_ind = roc_auc(ind.node_scores(), ind_truth.nodes)
print(f"ROC AUC of denoising head scores: ioi {auc_ioi:.3f}, induction {auc_ind:.3f}")
assert resid.scores["resid"][0, s2] > 0.99  # the only token that differs
assert resid.scores["resid"][-1, end] > 0.99  # where the answer is read
assert resid.scores["resid"][0, end] < 0.05  # nothing has moved yet before layer 0
assert ranked[0] in truth.nodes  # the strongest head is one the attention rule names
assert auc_ioi >= 0.9 and auc_ind >= 0.9
assert corr > 0.8
assert patched.roc_auc >= 0.9 and norms.roc_auc <= 0.75  # data finds what weights cannot
record = mi.write_result(
    "circuits-activation-patching",
    {"ioi_head_auc": auc_ioi, "induction_head_auc": auc_ind, "logit_diff_vs_kl_corr": corr,
     "end_position_restored_by_layer": moved, "top_head": ranked[0],
     "siit_ioi_node_auc": patched.roc_auc, "siit_ioi_weight_norm_node_auc": norms.roc_auc},
    seeds=[toy.seed], data_source="toy world", title="Circuits: activation patching",
    config={"n_prompts": len(ioi), "models": ["toyworld-2l", "attn-only-2l"]},
    started=started)
print(f"result record written to {record}")
