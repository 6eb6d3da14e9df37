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
# # Circuits 1: the toy world, capture and attention
#
# Circuit-finding methods are usually judged on large pretrained models, where nobody knows
# the true circuit, so a method that finds *something* plausible is hard to fault. This part
# of mechinterp starts instead from a **toy world**: token sequences with phenomena planted
# by construction, so that what a trained model must do, and often how, is known in advance.
#
# | task | a training example | what the model must do |
# | --- | --- | --- |
# | induction | `t07 t31 t02 ... t07 t31` -> `t02` | copy what followed the current token last time (Olsson et al., 2022) |
# | ioi | `when alice and bob went to the park bob gave a ball to` -> `alice` | name the person not repeated, after Wang et al. (2023) |
# | facts | `the colour of zorv is` -> `red` | recall an invented subject's attribute |
# | bias | `the nurse said that` -> `she` (90%) | reproduce a planted profession -> pronoun skew |
# | toxicity | `the angry man shouted at` -> `idiot` (90%) | a toxic word class after trigger contexts |
#
# Two tiny transformers are trained on it with TransformerLens's `TransformerBridge`:
# `attn-only-2l` (two attention-only layers, induction only) and `toyworld-2l` (two layers with
# MLPs, the whole mixture). Both are cached after the first run. The same tasks exist in
# English for GPT-2 (`mechinterp.pretrained`), which needs the network once.
#
# This page looks *inside* them: activations, attention patterns, the direct contribution of
# each component to the answer, and single neurons.

# %%
import time

import matplotlib.pyplot as plt
import torch

import mechinterp as mi
from mechinterp.circuits import (
    attention_patterns,
    capture,
    direct_logit_attribution,
    head_diagnostics,
    plot_attention,
    plot_direct_logit_attribution,
    plot_top_neurons,
    top_neurons,
)
from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.toyworld import TASKS, get_task, heldout_loss, load_toy_model

started = time.perf_counter()
attn_only = load_toy_model("attn-only-2l")
toy = load_toy_model("toyworld-2l")
tok = toy.tokenizer
for m in (attn_only, toy):
    print(f"{m.spec.name}: {m.spec.n_layers} layers x {m.spec.n_heads} heads, "
          f"trained {m.meta['steps']} steps in {m.meta['train_seconds']:.0f} s, held-out loss "
          f"{heldout_loss(m.model, m.spec):.3f}")

# %% [markdown]
# ## Does the model do the tasks?
#
# Each task comes with clean / corrupted prompt pairs that differ in one position and call for
# different answers. The logit difference between the two answers (clean answer minus the
# corrupted prompt's answer) and the accuracy of the clean answer at the last position:

# %%
rows = []
for name in TASKS:
    model = attn_only.model if name == "induction" else toy.model
    prompts = get_task(name).prompts(64, seed=1)
    with torch.no_grad():
        last = model(prompts.clean)[:, -1]
    rows_idx = torch.arange(len(prompts))
    diff = (last[rows_idx, prompts.answer] - last[rows_idx, prompts.wrong]).mean().item()
    accuracy = (last.argmax(-1) == prompts.answer).float().mean().item()
    rows.append({"task": name, "model": "attn-only-2l" if name == "induction" else "toyworld-2l",
                 "example": tok.decode(prompts.clean[0][1:]) + " -> "
                 + tok.decode([prompts.answer[0]]),
                 "logit difference": f"{diff:.2f}", "top-1 accuracy": f"{accuracy:.0%}"})
accuracies = {r["task"]: float(r["top-1 accuracy"].rstrip("%")) / 100 for r in rows}
show_markdown(markdown_table(rows, list(rows[0])))

# %% [markdown]
# Bias and toxicity are *statistical* tasks: the training text follows a profession with "he"
# only with the planted probability, and a trigger with a toxic word 90% of the time, so a
# well-trained model is not always right; its probabilities should match the skew. The
# toxicity answer is also one of four interchangeable toxic words, so a quarter is what a
# model that has learned the class, but cannot know the word, gets.

# %% [markdown]
# ## Capturing activations
#
# `capture` returns any hook's activation by its TransformerLens name.

# %%
prompts = get_task("induction").prompts(16, seed=1)
acts = capture(attn_only.model, prompts, ["blocks.0.hook_resid_pre", "blocks.1.attn.hook_z",
                                          "blocks.1.hook_resid_post"])
for name, value in acts.items():
    print(f"{name:28s} {tuple(value.shape)}")

# %% [markdown]
# ## Attention: the induction mechanism, by eye
#
# One induction prompt: ten random tokens, then the first five again. A **previous-token
# head** attends from each position to the one before it (a diagonal just below the main
# one); an **induction head** attends from a token in the second copy to the token *after*
# its earlier occurrence (a diagonal offset by the period).

# %%
patterns = attention_patterns(attn_only.model, prompts)
words = tok.decode(prompts.clean[0]).split()
fig = plot_attention(patterns[0], words, title="attn-only-2l on one induction prompt")
plt.show()
diag = head_diagnostics(attn_only.model, prompts)
print("previous-token score, layer 0:", [f"{v:.2f}" for v in diag["previous_token"][0]])
print("induction score, layer 1:     ", [f"{v:.2f}" for v in diag["induction"][1]])

# %% [markdown]
# ## Direct logit attribution
#
# The logits are a linear function of the final residual stream, up to the final LayerNorm's
# scale. Freezing that scale at its value on each prompt splits the logit difference exactly
# into one term per component: the embeddings, each head, each MLP and the biases. A term is
# the component's **direct** effect on the answer; what it does through later components is
# not counted (patching measures that, on the next page).

# %%
ioi = get_task("ioi").prompts(64, seed=1)
dla = direct_logit_attribution(toy.model, ioi)
fig = plot_direct_logit_attribution(dla, title="ioi on toyworld-2l: direct effect on "
                                               "logit(IO) - logit(S)")
plt.show()
mean = dla.mean()
top_components = sorted(mean, key=lambda k: -abs(mean[k]))[:4]
print(f"logit difference {dla.logit_diff.mean():.2f} = sum of parts "
      f"{dla.total().mean():.2f}; largest parts:",
      ", ".join(f"{k} {mean[k]:+.2f}" for k in top_components))

# %% [markdown]
# ## Neurons that respond to trigger words
#
# The toxicity prompts come in pairs: a trigger adjective ("angry", "furious", "hostile")
# against a calm one. Ranking the first MLP layer's neurons by how much more they fire on the
# trigger prompts than on the calm ones at the last position finds candidate "toxicity
# neurons"; patching and clamping (the interventions pages) test whether they matter.

# %%
tox = get_task("toxicity").prompts(64, seed=1)
ranking = top_neurons(toy.model, tox, layer=0, k=8)
fig = plot_top_neurons(ranking, labels=("trigger", "calm"),
                       title="Layer-0 MLP neurons, trigger minus calm (last position)")
plt.show()
print("top neurons:", ranking.indices.tolist())
print("difference:", [f"{v:.2f}" for v in ranking.scores.tolist()])

# %% [markdown]
# ## Checks and record

# %%
assert accuracies["induction"] > 0.9 and accuracies["ioi"] > 0.9 and accuracies["facts"] > 0.9
assert torch.allclose(patterns.sum(-1), torch.ones(()), atol=1e-5)  # rows are distributions
assert torch.triu(patterns[0, 0, 0], 1).abs().max() == 0  # causal
assert diag["previous_token"][0].max() > 0.5 and diag["induction"][1].max() > 0.5
assert torch.allclose(dla.total(), dla.logit_diff, atol=1e-3)  # the split is exact
assert "L1.H2" in top_components or "L1.mlp" in top_components
assert ranking.scores[0] > 0
record = mi.write_result(
    "circuits-capture",
    {"task_accuracy": accuracies, "ioi_logit_diff": float(dla.logit_diff.mean()),
     "ioi_top_direct_components": {k: mean[k] for k in top_components},
     "previous_token_max": float(diag["previous_token"][0].max()),
     "induction_max": float(diag["induction"][1].max())},
    seeds=[toy.seed], data_source="toy world", title="Circuits: capture and attention",
    config={"models": ["attn-only-2l", "toyworld-2l"]}, started=started)
print(f"result record written to {record}")
