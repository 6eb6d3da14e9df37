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
# # Circuits 4: automated discovery and graph export
#
# The previous pages scored components and edges. Discovery turns scores into a **circuit**: a
# small subgraph that, on its own, carries the behaviour. ACDC (Conmy et al., 2023) does it by
# pruning: visit the edges from the logits backwards and cut each one whose removal (giving it
# the corrupted output) moves the metric by less than a threshold. The scoring methods become
# discovery methods by cutting at a score threshold.
#
# Each method is judged twice, the same way:
#
# * **ROC AUC** of its component scores against the heads picked out by attention patterns
#   (previous-token, induction, end-to-S2 rules, which no method looks at): the chance that
#   such a head outranks the other heads and MLPs. That rule is a heuristic, not a ground
#   truth: nothing checks it causally and it can never include an MLP. This page uses it to
#   show the tools; [page 5](../circuits_5_discovery_leaderboard/) scores the same methods
#   against circuits built into SIIT-trained models and checked causally;
# * **faithfulness**: the share of the logit difference the circuit recovers when every edge
#   outside it carries its corrupted output.
#
# Two baselines frame the numbers: **random scores** (the trivial baseline, AUC 0.5 on
# average) and the **weight norm** of each component (how much a head or MLP *can* write,
# with no data at all). Activation patching, exact and one run per component, is the strong
# reference for the cheaper scores.

# %%
import json
import time

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import torch

import mechinterp as mi
from mechinterp.circuits import (
    DISCOVERY_METHODS,
    CircuitGraph,
    ComputationGraph,
    discover_circuit,
    ground_truth,
    roc_auc,
)
from mechinterp.cli import main as cli
from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.toyworld import get_task, load_toy_model

started = time.perf_counter()
cases = {"induction": "attn-only-2l", "ioi": "toyworld-2l"}

# %% [markdown]
# ## Every method on both tasks with an attention-pattern circuit

# %%
def weight_norms(model) -> dict[str, float]:
    """Data-free baseline: the Frobenius norm of each head's OV matrix and each MLP's output."""
    ov = torch.einsum("lhdk,lhke->lhde", model.W_V, model.W_O).detach()
    out = {f"L{layer}.H{h}": float(ov[layer, h].norm()) for layer in range(ov.shape[0])
           for h in range(ov.shape[1])}
    if not model.cfg.attn_only:
        out |= {f"L{layer}.mlp": float(model.W_out[layer].detach().norm())
                for layer in range(model.cfg.n_layers)}
    return out


rows, found, truths = [], {}, {}
for task, name in cases.items():
    model = load_toy_model(name).model
    prompts = get_task(task).prompts(64, seed=1)
    graph = ComputationGraph(model)
    truth = truths[task] = ground_truth(model, prompts)
    names = list(weight_norms(model))
    generator = torch.Generator().manual_seed(0)
    random_auc = np.mean([roc_auc(dict(zip(names, torch.rand(len(names), generator=generator)
                                           .tolist(), strict=True)), truth.nodes)
                          for _ in range(200)])
    rows.append({"task": task, "method": "random scores (mean of 200)",
                 "node AUC": f"{random_auc:.3f}", "edge AUC": "", "faithfulness": "",
                 "nodes": "", "edges": "", "seconds": ""})
    rows.append({"task": task, "method": "weight norm (no data)",
                 "node AUC": f"{roc_auc(weight_norms(model), truth.nodes):.3f}", "edge AUC": "",
                 "faithfulness": "", "nodes": "", "edges": "", "seconds": ""})
    for method in DISCOVERY_METHODS:
        d = found[task, method] = discover_circuit(model, prompts, method, model_name=name,
                                                   graph=graph)
        rows.append({"task": task, "method": method, "node AUC": f"{d.roc_auc:.3f}",
                     "edge AUC": "" if d.edge_roc_auc is None else f"{d.edge_roc_auc:.3f}",
                     "faithfulness": f"{d.faithfulness:.2f}", "nodes": d.circuit.n_nodes,
                     "edges": d.circuit.n_edges, "seconds": f"{d.seconds:.3f}"})
    print(f"{task}: heads the attention rule names {sorted(truth.nodes)}; graph has "
          f"{len(graph.edges)} edges")
show_markdown(markdown_table(rows, list(rows[0])))

# %% [markdown]
# On induction every method ranks the five heads the rule names first, and ACDC keeps 9 of 81 edges
# that carry most of the behaviour. The IOI ground truth is thin: one head (`L1.H2`) attends
# from the end to S2 in this model, so its AUC is the rank of a single head and a single
# misplaced component costs a lot. Faithfulness above 1 means the circuit does *better* than
# the full model: some components left out were working against the answer.
#
# The weight-norm baseline is not as weak as it sounds on induction: in a model trained on
# nothing but induction, the heads that do the task are the heads whose weights grew, so the
# norm alone ranks them first. In `toyworld-2l`, which does five tasks with the same eight
# heads and two MLPs, the norm says which components are busy, not which ones this task uses,
# and it falls well behind the patching methods on IOI. A discovery method earns its cost
# where components are shared between behaviours, which is the normal case in real models.
#
# That the norm does so well is also the weakness of this comparison: with a handful of heads
# and a rule-picked "circuit", the numbers saturate and cannot rank methods. The leaderboard
# on [page 5](../circuits_5_discovery_leaderboard/) is built to avoid that: larger models,
# circuits known by construction, three model seeds, and baselines that must score low.

# %% [markdown]
# ## The circuits ACDC found

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 6))
for ax, task in zip(axes, cases, strict=True):
    d = found[task, "acdc"]
    d.circuit.draw(ax=ax, title=f"{task} (ACDC): {d.circuit.n_edges} edges, "
                                f"faithfulness {d.faithfulness:.2f}")
plt.show()

# %% [markdown]
# Edge colour is the input the edge feeds: for induction, the embeddings flow into the
# previous-token head's **values** (green), that head feeds the induction heads' **keys** (red),
# and the induction heads write into the logits: the mechanism Olsson et al. (2022) describe,
# recovered without looking at an attention pattern.

# %% [markdown]
# ## Size against faithfulness: the ACDC threshold
#
# The threshold is the one knob. Lower keeps more edges and more of the behaviour.

# %%
model = load_toy_model("attn-only-2l").model
prompts = get_task("induction").prompts(64, seed=1)
graph = ComputationGraph(model)
sweep = []
for threshold in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2):
    d = discover_circuit(model, prompts, "acdc", threshold=threshold, graph=graph)
    sweep.append((threshold, d.circuit.n_edges, d.faithfulness, d.edge_roc_auc))
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.plot([s[1] for s in sweep], [s[2] for s in sweep], "o-")
for t, n, f, _ in sweep:
    ax.annotate(f"{t:g}", (n, f), textcoords="offset points", xytext=(4, -10), fontsize=8)
ax.set_xlabel("edges kept")
ax.set_ylabel("faithfulness")
ax.set_title("ACDC thresholds (labels) on induction")
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Exporting a circuit
#
# A `CircuitGraph` is plain data. JSON keeps every node and edge with its score and what
# produced it; Graphviz DOT renders with `dot -Tsvg circuit.dot -o circuit.svg`; networkx gives
# graph algorithms for free.

# %%
circuit = found["induction", "acdc"].circuit
out = mi.cache_dir() / "circuits"
circuit.to_json(out / "induction-acdc.json")
dot = circuit.to_dot(out / "induction-acdc.dot")
print(dot[:400], "...")
again = CircuitGraph.load(out / "induction-acdc.json")
g = circuit.to_networkx()
paths = list(nx.all_simple_paths(g, "embed", "logits"))
print(f"\n{len(paths)} paths from the embeddings to the logits, e.g. {' -> '.join(paths[0])}")
print(json.dumps(again.meta, indent=1)[:300])

# %% [markdown]
# The same from a terminal: `mechinterp discover-circuits --task induction --method acdc
# --out circuit.json --json` prints one JSON object (`--list` names the tasks, models and
# methods).

# %%
cli(["discover-circuits", "--task", "ioi", "--method", "eap", "--json"])

# %% [markdown]
# ## Checks and record

# %%
best = {task: max(found[task, m].roc_auc for m in DISCOVERY_METHODS) for task in cases}
assert best["induction"] >= 0.95 and best["ioi"] >= 0.95
assert found["induction", "acdc"].edge_roc_auc >= 0.95
assert found["induction", "acdc"].faithfulness > 0.8
assert found["induction", "acdc"].circuit.n_edges < len(graph.edges) / 4
assert again == circuit and g.number_of_nodes() == circuit.n_nodes
assert all(any(step in truths["induction"].nodes for step in p) for p in paths)
sizes = [s[1] for s in sweep]
assert sizes == sorted(sizes, reverse=True)  # a higher threshold never keeps more edges
norm_auc = {task: roc_auc(weight_norms(load_toy_model(name).model), truths[task].nodes)
            for task, name in cases.items()}
assert norm_auc["ioi"] < best["ioi"]  # on the multi-task model, data beats weight norms
record = mi.write_result(
    "circuits-discovery",
    {f"{task}/{m}": {"node_auc": found[task, m].roc_auc, "edge_auc": found[task, m].edge_roc_auc,
                     "faithfulness": found[task, m].faithfulness,
                     "n_edges": found[task, m].circuit.n_edges,
                     "seconds": found[task, m].seconds}
     for task in cases for m in DISCOVERY_METHODS} | {f"{t}/weight_norm": {"node_auc": a}
                                                     for t, a in norm_auc.items()},
    seeds=[0], data_source="toy world", title="Circuits: automated discovery",
    config={"n_prompts": 64, "models": cases}, started=started)
print(f"result record written to {record}")
