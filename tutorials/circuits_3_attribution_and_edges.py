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
# # Circuits 3: attribution patching and edge attribution patching
#
# [Activation patching](../circuits_2_activation_patching/) runs the model once per component:
# fine for 8 heads, slow for the thousands of positions and heads of a real model, and hopeless
# for the millions of *edges* between components. **Attribution patching** (Nanda, 2023)
# replaces each patch by its first-order estimate: with one clean run, one corrupted run and
# one backward pass, the effect of pasting activation `a` is approximated by
# `(a_clean - a_corrupted) . d metric / d a`, for every component at once.
#
# **Edge attribution patching** (EAP; Syed et al., 2023) applies the same estimate to edges.
# In a residual network a component reads the sum of everything written before it, so the
# edge `writer -> reader` carries the writer's output into the reader's input; its score is the
# writer's clean-minus-corrupted output dotted with the gradient at the reader's input. We
# compute that on `mechinterp.circuits.ComputationGraph`, which rebuilds the model's forward
# pass edge by edge (and reproduces its logits to about 1e-6).

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import mechinterp as mi
from mechinterp.circuits import (
    ComputationGraph,
    activation_patching,
    attribution_patching,
    circuit_metric,
    discover_circuit,
    edge_attribution_patching,
    faithfulness_curve,
    get_metric,
    ground_truth,
    roc_auc,
)
from mechinterp.siit import SIIT_TASKS, load_siit_models
from mechinterp.toyworld import get_task, load_toy_model

started = time.perf_counter()
models = {"induction": load_toy_model("attn-only-2l").model,
          "ioi": load_toy_model("toyworld-2l").model}
prompts = {task: get_task(task).prompts(64, seed=1) for task in models}

# %% [markdown]
# ## The estimate against the exact answer
#
# Both methods score the same components on the same 64 prompt pairs. Each point is one
# component; on the diagonal the estimate is exact.

# %%
runs, agreement = {}, {}
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, (task, model) in zip(axes, models.items(), strict=True):
    exact = activation_patching(model, prompts[task])
    approx = attribution_patching(model, prompts[task])
    runs[task] = (exact, approx)
    for kind, marker in (("resid", "."), ("heads", "o"), ("mlp", "s")):
        if kind in exact.scores:
            ax.scatter(exact.scores[kind].flatten(), approx.scores[kind].flatten(), s=18,
                       marker=marker, alpha=0.7, label=kind)
    lims = [-0.3, 1.1]
    ax.plot(lims, lims, color="grey", lw=0.8)
    ax.set_xlabel("activation patching (exact)")
    ax.set_ylabel("attribution patching (estimate)")
    ax.set_title(f"{task}: {exact.forward_passes} runs ({exact.seconds:.2f} s) vs "
                 f"2 + 1 backward ({approx.seconds:.3f} s)")
    ax.legend()
    heads = lambda r: torch.cat([r.scores["heads"].flatten()]  # noqa: E731
                                + ([r.scores["mlp"]] if "mlp" in r.scores else []))
    agreement[task] = {
        "components": float(np.corrcoef(heads(exact), heads(approx))[0, 1]),
        "resid": float(np.corrcoef(exact.scores["resid"].flatten(),
                                   approx.scores["resid"].flatten())[0, 1]),
        "speedup": exact.seconds / approx.seconds}
fig.tight_layout()
plt.show()
for task, a in agreement.items():
    print(f"{task}: correlation heads+MLPs {a['components']:.3f}, residual positions "
          f"{a['resid']:.3f}; {a['speedup']:.0f}x faster")

# %% [markdown]
# The estimate is linear, and the model is not. Where a patch changes an attention pattern a
# lot, which is what swapping tokens in an induction prompt does, the first-order term misses
# part of the effect: the residual-stream points of the induction task fall off the diagonal.
# The ranking of components, which is what discovery needs, survives far better than the
# values. `benchmarks/bench_patching.py` measures the speed and the rank agreement in one run,
# up to GPT-2 small's shape, where the gap reaches two orders of magnitude (see the
# [performance page](../../performance/)).

# %% [markdown]
# ## Edge attribution patching on the induction model
#
# The induction circuit read from attention patterns (a heuristic reference; page 5 uses
# circuits built into the weights) has three kinds of edge: the
# embeddings into the previous-token head's **values**, the previous-token head into the
# induction heads' **keys** (K-composition, Olsson et al., 2022) and the induction heads into
# the **logits**.

# %%
graph = ComputationGraph(models["induction"])
eap = edge_attribution_patching(graph, prompts["induction"])
truth = ground_truth(models["induction"], prompts["induction"])
edge_scores = {e.name: float(s) for e, s in zip(eap.edges, eap.scores, strict=True)}
top = sorted(edge_scores, key=lambda k: -abs(edge_scores[k]))[:10]
print(f"{len(graph.edges)} edges scored in {eap.seconds:.3f} s")
for name in top:
    print(f"  {edge_scores[name]:+.3f}  {name}{'   (attention rule)' if name in truth.edges else ''}")
edge_auc = roc_auc(edge_scores, truth.edges)
print(f"edge ROC AUC against the attention-rule edges: {edge_auc:.3f}")

# %% [markdown]
# ## How much of the behaviour do the top edges carry?
#
# A *faithfulness curve*: keep the top-`k` edges, give every other edge its corrupted output,
# and measure the share of the logit difference that survives (1 = clean model, 0 = corrupted).
# Two baselines frame it: edges in a **random order** (the trivial baseline, mean of 5
# orders) and edges ordered by **exact** per-edge effects, each edge cut alone (the strong,
# expensive reference: one run per edge).

# %%
sizes = [1, 2, 4, 8, 12, 16, 24, 32, 48, len(graph.edges)]
curve = faithfulness_curve(graph, prompts["induction"], eap.scores, sizes)
generator = torch.Generator().manual_seed(0)
random_curves = [faithfulness_curve(graph, prompts["induction"],
                                    torch.rand(len(graph.edges), generator=generator), sizes)
                 for _ in range(5)]
with torch.no_grad():
    _, corrupted, _ = graph.forward(prompts["induction"].corrupted)
exact_edge = torch.zeros(len(graph.edges))
for i in range(len(graph.edges)):
    mask = graph.full_mask()
    mask[i] = 0
    exact_edge[i] = eap.clean_metric - circuit_metric(
        graph, prompts["induction"], mask, corrupted, get_metric("logit_diff"))
gap = eap.clean_metric - eap.corrupted_metric
exact_share = {e.name: float(v) / gap for e, v in zip(graph.edges, exact_edge, strict=True)}
for name in top[:3]:
    print(f"{name}: EAP {edge_scores[name]:+.3f}, exact effect of cutting it alone "
          f"{exact_share[name]:+.3f}")
exact_curve = faithfulness_curve(graph, prompts["induction"], exact_edge, sizes)
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(sizes, [v for _, v in curve], "o-", label="EAP order")
ax.plot(sizes, [v for _, v in exact_curve], "s--", label="exact single-edge order")
ax.plot(sizes, np.mean([[v for _, v in c] for c in random_curves], 0), "^:",
        label="random order (mean of 5)")
ax.set_xscale("log")
ax.set_xlabel("edges kept")
ax.set_ylabel("share of logit difference")
ax.set_title("Faithfulness of top-k circuits (induction, attn-only-2l)")
ax.axhline(1, color="grey", lw=0.7)
ax.legend()
fig.tight_layout()
plt.show()
k_eap = next(k for k, v in curve if v >= 0.8)
k_exact = next(k for k, v in exact_curve if v >= 0.8)
print(f"edges needed for 80% of the behaviour: EAP order {k_eap}, exact order {k_exact}, "
      f"of {len(graph.edges)}")

# %% [markdown]
# EAP's order needs about as few edges as the exact order, which cost one run per edge, and
# far fewer than a random order. On a model this size both are cheap; on a real model only the
# gradient version is.
#
# The printout above also shows EAP's characteristic error. Its strongest edge, the embeddings
# into the previous-token head's **keys**, is not in the attention-rule circuit, and cutting it alone
# changes almost nothing: the head attends by position, so its attention barely moves when
# the keys change, yet the gradient of the softmax at the corrupted run says it would. A
# first-order estimate can be large where the true effect saturates. Ranking methods should
# therefore be checked with a few exact runs on their top edges, as ACDC does for every edge
# ([next page](../circuits_4_discovery_and_export/)).

# %% [markdown]
# ## Edges of a circuit that was built
#
# The attention rule's edges are a heuristic; the SIIT benchmark models of
# [page 5](../circuits_5_discovery_leaderboard/) have theirs built in and checked causally. On
# `siit-ioi` seed 1 (a duplicate-token head, an S-inhibition head and a name mover, every
# other component busy with a distractor job and every head held at one weight norm), EAP's
# component-to-component edge scores against the built edges, beside its integrated-gradients
# variant EAP-IG (Hanna et al., 2024) and the data-free weight norm:

# %%
siit = load_siit_models("siit-ioi", [1])[0]
siit_prompts = SIIT_TASKS["siit-ioi"].prompts(64, seed=1)
siit_eap, siit_ig, siit_norm = (discover_circuit(siit.model, siit_prompts, m, truth=siit.truth())
                                for m in ("eap", "eap-ig", "weight_norm"))
print("built edges:", ", ".join(sorted(siit.truth().edges)))
print(f"edge ROC AUC against the built circuit: EAP {siit_eap.edge_roc_auc:.3f}, "
      f"EAP-IG {siit_ig.edge_roc_auc:.3f}, weight norm (no data) {siit_norm.edge_roc_auc:.3f}")

# %% [markdown]
# Both beat the weight norm by a wide margin, and EAP misses more of the built circuit than
# its integrated-gradients variant: the first-order error described above, now measured
# against a circuit known by construction. The
# [leaderboard](../circuits_5_discovery_leaderboard/) shows the same order over every verified
# model.

# %% [markdown]
# ## Checks and record

# %%
assert agreement["ioi"]["components"] > 0.9 and agreement["induction"]["components"] > 0.9
assert all(a["speedup"] > 3 for a in agreement.values())
assert edge_auc >= 0.95
assert top[0] not in truth.edges and abs(exact_share[top[0]]) < 0.05  # the artifact above
assert k_eap <= 2 * k_exact and k_eap < len(graph.edges) / 4
random_at_k = np.mean([dict(c)[k_eap] for c in random_curves])
assert random_at_k < 0.5
assert siit_norm.edge_roc_auc <= 0.75 and siit_eap.edge_roc_auc > siit_norm.edge_roc_auc + 0.1
assert siit_ig.edge_roc_auc > siit_eap.edge_roc_auc  # the order the prose states
record = mi.write_result(
    "circuits-attribution-patching",
    {"agreement": agreement, "eap_edge_auc": edge_auc, "edges_for_80pct_eap": k_eap,
     "edges_for_80pct_exact": k_exact, "random_share_at_same_size": random_at_k,
     "n_edges": len(graph.edges), "siit_ioi_eap_edge_auc": siit_eap.edge_roc_auc,
     "siit_ioi_eap_ig_edge_auc": siit_ig.edge_roc_auc,
     "siit_ioi_weight_norm_edge_auc": siit_norm.edge_roc_auc},
    seeds=[0], data_source="toy world", title="Circuits: attribution and edge attribution patching",
    config={"n_prompts": 64}, started=started)
print(f"result record written to {record}")
