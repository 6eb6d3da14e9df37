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
# # Circuits 5: the discovery leaderboard, against circuits known by construction
#
# A discovery method can only be scored against a circuit that is known independently of it.
# The earlier pages used a circuit read from attention patterns after training, and it could
# not tell a good method from a bad one: the data-free weight norm scored a perfect ROC AUC
# on it, as did every method, because a handful of heads carried the only task the model had.
#
# Here the circuit is **built**. Following InterpBench (Gupta et al., 2024), each benchmark
# model is trained with strict interchange-intervention training (SIIT): a high-level causal
# model names the algorithm, each of its nodes is assigned one component (a head or an MLP,
# drawn per seed), and training makes those components *be* the nodes: give one of them its
# activation from another input and the output changes exactly as the causal model says; give
# any other component an activation from an unrelated input and nothing changes. Then the
# circuit is checked causally on inputs training never saw, through TransformerLens hooks
# rather than the training code. Only models that pass are scored.
#
# Trained this way alone, the components outside the circuit stay near their random
# initialisation and only the circuit's grow, so a data-free ranking by weight norm finds the
# circuit. Two more rules close that leak. Every head's OV matrix and every MLP's output
# matrix is **held at one norm** throughout training (on the histogram the unembedding too,
# which the final layer norm makes free), so that reading the weights says nothing about which
# components the task uses. And the components outside the circuit must write as much as the
# circuit does. On IOI they are given **distractor jobs** of their own (a head reports the
# token one to three positions back, an MLP a lookup-table class of the current token), so
# they are as busy as components in a real model. On induction and the histogram the models
# trained with distractor jobs failed verification (shown below). There the components
# outside the circuit therefore stay **frozen at random weights, held at the circuit's
# norm**: their weights say nothing, and the circuit is trained to ignore what they write.
# They write less than the circuit does, though (measured below), so there the size of the
# activity still points at the circuit. Induction needed more for this: held at full norm
# from the first step, only 2 of 5 models passed (at held norms of 2 and 3 alike, 3 000
# steps, in trials not rerun here); with the held norms rising from a quarter to their full
# value over the first 30% of training and 6 000 steps, 3 of 5 pass. The embedding is not
# held: its norm multiplies every edge that leaves it, and two of induction's four built
# edges do.
#
# Every method and baseline sees the same 64 clean/corrupted pairs per model; faithfulness is
# measured on 64 others. Thresholds are each method's defaults, fixed before any run.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import mechinterp as mi
from mechinterp.circuits import (
    ALL_METHODS,
    BASELINES,
    CircuitGraph,
    ComputationGraph,
    baseline_scores,
    discover_circuit,
    run_discovery_benchmark,
)
from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.siit import (
    CONTROL,
    IIA_MIN,
    MIN_VERIFIED,
    NODE_EFFECT_MIN,
    RETAINED_MIN,
    SIIT_SEEDS,
    SIIT_TASKS,
    StackedTransformer,
    busy_attempt,
    component_names,
    load_siit_models,
    strictness_control,
    task_config,
    verify,
)
from mechinterp.siit.distractors import distractor_targets, draw_distractor_jobs
from mechinterp.siit.model import from_bridges
from mechinterp.siit.tasks import IGNORE
from mechinterp.siit.training import default_arch

started = time.perf_counter()

# %% [markdown]
# ## Three algorithms, written as causal models
#
# * **siit-induction**: six letters, then five queries drawn from them; at each query, the
#   letter that followed it. A previous-token head, then an induction head that finds the
#   position whose previous token is the query (Olsson et al., 2022).
# * **siit-ioi**: `N1 and N2 _ _ S _ _ <end>`: one name is repeated and the answer is the
#   other. Duplicate detection, S-inhibition and a name mover, in the spirit of Wang et al.
#   (2023).
# * **siit-histogram**: at every position, has `x` occurred at least as often as `y` so far?
#   Two counting heads and an MLP that compares them, in the spirit of Tracr's compiled
#   programs (Lindner et al., 2023). The only task whose circuit holds an MLP.

# %%
rows = []
for name, task in SIIT_TASKS.items():
    for node in task.model.nodes.values():
        rows.append({"task": name, "node": node.name, "reads": ", ".join(node.parents),
                     "kind": next(s.kind for s in task.node_specs if s.name == node.name),
                     "computes": node.description})
show_markdown(markdown_table(rows, list(rows[0])))

# %% [markdown]
# ## The models and where their circuits sit
#
# Each model has 4 layers of 4 heads with MLPs. The alignment is drawn from the seed under the
# order the causal graph implies, so the circuit sits somewhere else in every model and no
# method can lean on a fixed place.

# %%
models = {name: load_siit_models(name) for name in SIIT_TASKS}
rows = []
for name, found in models.items():
    for m in found:
        rows.append({"task": name, "seed": m.seed,
                     "alignment (causal node: component)": ", ".join(
                         f"{node}: {comp}" for node, comp in m.alignment.items()),
                     "training steps": m.meta["steps"],
                     "trained in": f"{m.meta['train_seconds']:.0f} s on {m.meta['device']}"})
show_markdown(markdown_table(rows, list(rows[0])))
for name in SIIT_TASKS:
    cfg = task_config(name)
    print(f"{name}: {cfg.steps} steps, batch {cfg.batch_size} per loss term, lr {cfg.lr}, "
          f"non-circuit components "
          f"{'frozen at random weights' if cfg.freeze_others else 'trained'}, distractor "
          f"weight {cfg.distractor_weight}, OV norm {cfg.head_norm}, MLP W_out norm "
          f"{cfg.mlp_norm}, unembedding norm {cfg.unembed_norm or 'free'}")

# %% [markdown]
# ## Busy components that do not matter
#
# One model, component by component: whether it is in the circuit, its distractor job, its
# weight norm, how much it writes into the residual stream on the task's inputs (mean norm of
# its output at the last position, where the answer is read), and how well it does its job
# (the share of its probe's predictions that are right; chance is 1/40 for a head, 1/8 for an
# MLP). Non-circuit
# components write at least as much as circuit ones do: neither the weights nor the size of the
# activity gives the circuit away; only what the activity *does to the answer* can.

# %%
example = models["siit-ioi"][1]
spec = SIIT_TASKS["siit-ioi"]
arch = default_arch(spec)
jobs = draw_distractor_jobs([example.alignment], [example.seed], arch)
described = jobs.describe(0, arch)
tokens = spec.sample(256, torch.Generator().manual_seed(7))
net = StackedTransformer(arch, from_bridges([example.model]))
with torch.no_grad():
    _, acts = net(tokens[None], keep=True)
    heads_target, mlps_target = distractor_targets(jobs, tokens[None])
    o_w = net.w["o_w"][0].view(arch.n_layers, arch.d_model, arch.n_heads, arch.d_head)
    written = torch.einsum("lbphe,ldhe->lbphd", acts["z"][0], o_w)  # what each head writes
    scale = acts["scale"][0][None]
norms = baseline_scores("weight_norm", example.model, ComputationGraph(example.model),
                        spec.prompts(8, seed=1))[0]
rows, size = [], {}
for comp in component_names(arch):
    layer = int(comp.split(".")[0][1:])
    if comp.endswith("mlp"):
        out = acts["mlp"][0, layer]
        logits = (out / scale[0]) @ jobs.mlp_probe[0, layer].T
        target = mlps_target[0, layer]
        ok = (logits.argmax(-1) == target).float().mean()
    else:
        h = int(comp.split(".H")[1])
        out = written[layer, :, :, h]
        logits = (out / scale[0]) @ jobs.head_probe[0, layer, h].T
        target = heads_target[0, layer, :, :, h]
        keep = target != IGNORE
        ok = (logits.argmax(-1) == target)[keep].float().mean() if keep.any() else None
    size[comp] = float(out[:, -1].norm(dim=-1).mean())
    rows.append({"component": comp, "in circuit": "**yes**" if comp in example.circuit_nodes
                 else "", "distractor job": described.get(comp, "(none: in the circuit)"),
                 "weight norm": f"{norms[comp]:.2f}", "writes (mean norm)": f"{size[comp]:.2f}",
                 "job accuracy": "" if comp in example.circuit_nodes or ok is None
                 else f"{float(ok):.2f}"})
show_markdown(markdown_table(rows, list(rows[0])))
inside = [size[c] for c in example.circuit_nodes]
outside = [v for c, v in size.items() if c not in example.circuit_nodes]
print(f"siit-ioi seed {example.seed}: circuit components write {np.mean(inside):.2f} on average, "
      f"the others {np.mean(outside):.2f} (largest non-circuit write {max(outside):.2f})")
assert np.mean(outside) >= np.mean(inside)  # what the text above says

# %% [markdown]
# The same measure for every task. Where the components outside the circuit are frozen at
# random weights, held at the circuit's weight norm (induction and the histogram), they write
# less than the circuit does: a random head spreads its attention and a random MLP is not
# tuned to the inputs it sees.

# %%


def write_sizes(m) -> tuple[float, float]:
    """Mean size of what circuit and non-circuit components write at the last position."""
    spec_m, arch_m = SIIT_TASKS[m.task], default_arch(SIIT_TASKS[m.task])
    x = spec_m.sample(256, torch.Generator().manual_seed(7))
    stacked = StackedTransformer(arch_m, from_bridges([m.model]))
    with torch.no_grad():
        _, a = stacked(x[None], keep=True)
        heads = torch.einsum("lbphe,ldhe->lbphd", a["z"][0, :, :, -1:], stacked.w["o_w"][0].view(
            arch_m.n_layers, arch_m.d_model, arch_m.n_heads, arch_m.d_head))
    sizes = {}
    for comp in component_names(arch_m):
        layer = int(comp.split(".")[0][1:])
        out = a["mlp"][0, layer, :, -1] if comp.endswith("mlp") else \
            heads[layer, :, 0, int(comp.split(".H")[1])]
        sizes[comp] = float(out.norm(dim=-1).mean())
    return (float(np.mean([v for c, v in sizes.items() if c in m.circuit_nodes])),
            float(np.mean([v for c, v in sizes.items() if c not in m.circuit_nodes])))


write_rows, write_ratio = [], {}
for name, found in models.items():
    pairs = [write_sizes(m) for m in found]
    write_ratio[name] = float(np.mean([o / i for i, o in pairs]))
    write_rows.append({"task": name, "circuit components write": f"{np.mean([i for i, _ in pairs]):.2f}",
                       "the others write": f"{np.mean([o for _, o in pairs]):.2f}",
                       "others / circuit": f"{write_ratio[name]:.2f}"})
show_markdown(markdown_table(write_rows, list(write_rows[0])))
print("mean over the five models of each task, at the last position")
assert write_ratio["siit-ioi"] >= 1 and all(write_ratio[n] < 1 for n in SIIT_TASKS
                                             if task_config(n).freeze_others)  # as the text says

# %% [markdown]
# ## Every model checked before it is used
#
# Three checks on 512 fresh inputs each: **IIA** (interchange-intervention accuracy) of every
# circuit node must reach 0.95; with **every non-circuit component resampled at once** the
# model must keep 95% of its accuracy; and **resampling any single circuit component alone**
# must cost at least a fifth of it (no circuit node is idle). Five models are drawn per task;
# a model that fails is shown here and left out of the leaderboard, and each task needs at
# least three that pass. The checks use no discovery method, so dropping a failed model
# cannot favour one.

# %%
run = run_discovery_benchmark(list(SIIT_TASKS), list(SIIT_SEEDS), ALL_METHODS)
rows = []
for (name, seed), check in run.verification.items():
    rows.append({"task": name, "seed": seed, "accuracy": f"{check['accuracy']:.3f}",
                 "IIA per node": ", ".join(f"{k} {v:.3f}" for k, v in check["iia_per_node"].items()),
                 "non-circuit retained": f"{check['non_circuit_retained']:.3f}",
                 "smallest node effect": f"{check['min_node_effect']:.3f}",
                 "passed": "yes" if check["passed"] else "**no**"})
show_markdown(markdown_table(rows, list(rows[0])))
print(f"thresholds: IIA >= {IIA_MIN}, retained >= {RETAINED_MIN}, node effect >= {NODE_EFFECT_MIN}")

# %% [markdown]
# ### The busy setting where it failed
#
# The models of induction and the histogram trained with distractor jobs and held norms ship
# too, as a record of the attempt; here they are checked like the others. With the circuit
# held at the same norm as fifteen busy components it cannot make itself heard: the model
# learns the task through components outside the circuit (low "non-circuit retained") or its
# circuit nodes stop behaving like the causal model's (low IIA). (Restricting the distractor
# jobs to half of the residual stream, so that they need not collide with the circuit, did
# not rescue induction either, in a trial on two seeds that is not rerun here: its strictness
# loss stayed at chance.) On the
# histogram, where the busy models come close, their weight-norm score stays high anyway:
# their MLPs were held at a larger norm than their heads and their unembedding was free, and
# three of the five built edges touch an MLP or the unembedding.

# %%
rows, attempt_norm = [], {}
for name in SIIT_TASKS:
    if busy_attempt(name) == task_config(name):
        continue
    for m in load_siit_models(name, config=busy_attempt(name)):
        c = verify(m).summary()
        found = discover_circuit(m.model, SIIT_TASKS[name].prompts(64, seed=1), "weight_norm",
                                 truth=m.truth())
        attempt_norm[name, m.seed] = found.edge_roc_auc
        rows.append({"task": name, "seed": m.seed, "weakest IIA": f"{c['iia']:.3f}",
                     "non-circuit retained": f"{c['non_circuit_retained']:.3f}",
                     "smallest node effect": f"{c['min_node_effect']:.3f}",
                     "passed": "yes" if c["passed"] else "**no**",
                     "weight-norm edge AUC": f"{found.edge_roc_auc:.3f}"})
show_markdown(markdown_table(rows, list(rows[0])))
attempts_passed = sum(r["passed"] == "yes" for r in rows)
print(f"{attempts_passed} of {len(rows)} models trained with the busy setting pass")

# %% [markdown]
# ### The negative control: the same model trained without strictness
#
# Do the checks catch a model whose circuit is not the only one? The package ships one model
# trained with every setting above except the strictness term (plain interchange-intervention
# training). It still does the task and its circuit nodes still behave like the causal
# model's, but nothing stops the other components from helping, and they do.

# %%
control_task, control_seed = CONTROL
control = load_siit_models(control_task, [control_seed], config=strictness_control(control_task))[0]
control_check = verify(control)
strict_check = run.verification[control_task, control_seed]
rows = [{"model": f"{control_task} seed {control_seed}, {label}", "accuracy": f"{c['accuracy']:.3f}",
         "weakest IIA": f"{c['iia']:.3f}", "non-circuit retained": f"{c['non_circuit_retained']:.3f}",
         "smallest node effect": f"{c['min_node_effect']:.3f}",
         "passed": "yes" if c["passed"] else "**no**"}
        for label, c in (("SIIT", strict_check), ("no strictness term", control_check.summary()))]
show_markdown(markdown_table(rows, list(rows[0])))
assert strict_check["passed"] and not control_check.passed
assert control_check.non_circuit_retained < RETAINED_MIN

# %% [markdown]
# ## The leaderboard
#
# Mean and standard deviation over the verified model seeds of each task. **Node AUC** ranks heads and MLPs;
# **edge AUC** ranks the component-to-component edges (an edge method's scores for a head's
# query, key and value inputs are summed: training fixes which components talk, not through
# which input). Precision and recall are those of the circuit each method itself returns;
# faithfulness is the share of the logit difference that circuit recovers alone, on prompts the
# method never saw.

# %%
table = run.aggregate()


def cell(stats, key):
    if stats[key] is None:
        return "n/a"
    return f"{stats[key]:.3f} ± {stats[key + '_std']:.3f}"


rows = []
for name in SIIT_TASKS:
    for method in ALL_METHODS:
        stats = table[name, method]
        rows.append({"task": name, "method": method + (" (baseline)" if method in BASELINES
                                                        else ""),
                     "node AUC": cell(stats, "node_auc"), "edge AUC": cell(stats, "edge_auc"),
                     "edge precision": cell(stats, "edge_precision"),
                     "edge recall": cell(stats, "edge_recall"),
                     "faithfulness (held out)": cell(stats, "faithfulness"),
                     "seconds": f"{stats['seconds']:.2f}"})
show_markdown(markdown_table(rows, list(rows[0])))
print(", ".join(f"{t}: {g['nodes']} nodes, {g['edges']} q/k/v edges, {g['component_edges']} "
                "component edges" for t, g in run.graphs.items()))

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
width = 0.8 / len(SIIT_TASKS)
for ax, key, title in zip(axes, ("node_auc", "edge_auc"), ("components", "edges"),
                          strict=True):
    methods = [m for m in ALL_METHODS if table[next(iter(SIIT_TASKS)), m][key] is not None]
    for i, name in enumerate(SIIT_TASKS):
        means = [table[name, m][key] for m in methods]
        stds = [table[name, m][key + "_std"] for m in methods]
        ax.bar(np.arange(len(methods)) + i * width, means, width, yerr=stds, capsize=2,
               label=name)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.axhline(0.9, color="green", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(methods)) + width, methods, rotation=30, ha="right")
    ax.set_title(f"ROC AUC over {title} (mean ± std over verified seeds)")
    ax.set_ylim(0, 1.05)
axes[0].legend(fontsize=8, loc="lower left")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What a method found, beside what was built
#
# The built circuit of one model (left) and the circuit ACDC returned on it (right).

# %%
name = "siit-ioi"
model = next(m for m in models[name] if run.verification[name, m.seed]["passed"])
seed = model.seed
truth = model.truth()
built = CircuitGraph.from_edges(sorted(truth.edges), 4, meta={"note": "built"})
fig, axes = plt.subplots(1, 2, figsize=(13, 5))
built.draw(ax=axes[0], title=f"{name} seed {seed}: the built circuit")
if (name, seed, "acdc") in run.found:
    found = run.found[name, seed, "acdc"]
    found.circuit.draw(ax=axes[1], title=f"ACDC: {found.circuit.n_edges} edges, "
                                          f"faithfulness {found.faithfulness:.2f}")
plt.show()

# %% [markdown]
# ## Is the benchmark sound? The trivial baselines
#
# A benchmark that a trivial baseline aces is broken. Random scores sit at 0.5, as they must.
# The data-free weight norm is the test that matters, and the next cell states what it found.

# %%
norm = {name: table[name, "weight_norm"] for name in SIIT_TASKS}
best = {name: max((table[name, m]["edge_auc"] or 0, m) for m in ALL_METHODS
                  if m not in BASELINES) for name in SIIT_TASKS}
lines = []
for name in SIIT_TASKS:
    auc, method = best[name]
    goal = "meets" if auc >= 0.9 else f"misses by {0.9 - auc:.3f}"
    lines.append(f"* **{name}**: best method `{method}`, edge AUC {auc:.3f} ({goal} the 0.9 "
                 f"goal); weight norm {norm[name]['edge_auc']:.3f} on edges and "
                 f"{norm[name]['node_auc']:.3f} on components; random "
                 f"{table[name, 'random']['edge_auc']:.3f}.")
broken = [n for n in SIIT_TASKS if max(norm[n]["edge_auc"], norm[n]["node_auc"]) > 0.75]
verdict = (
    "The weight norm stays at or below 0.75 on every task: with every head, MLP and the "
    "unembedding held at one norm (and, on IOI, every component busy), these circuits cannot "
    "be read off the weights without data. It comes closest on induction, through the "
    "embedding, whose norm is not held." if not broken
    else f"**The weight norm scores above 0.75 on {len(broken)} of {len(SIIT_TASKS)} tasks "
    f"({', '.join(broken)}), so there the benchmark does not separate discovery methods from "
    "a data-free guess.** Those models keep frozen, unconstrained non-circuit components, "
    "because neither the busy setting nor frozen components held at one norm passed their "
    "verification (above); read their method columns as agreement with the built circuit, "
    "and the weight-norm row as the bar the methods must clear. Where every component is "
    "held at one norm ("
    + ", ".join(n for n in SIIT_TASKS if task_config(n).head_norm)
    + "), the weight norm stays at or below 0.75.")
show_markdown("\n".join(lines) + "\n\n" + verdict)

# %% [markdown]
# ## Checks and record

# %%
verified = {k: v["passed"] for k, v in run.verification.items()}
for name in SIIT_TASKS:
    assert sum(verified[name, s] for s in SIIT_SEEDS) >= MIN_VERIFIED, (name, verified)
    assert table[name, "acdc"]["n_seeds"] == sum(verified[name, s] for s in SIIT_SEEDS)
assert len(run.verification) == len(SIIT_TASKS) * len(SIIT_SEEDS)
for name in SIIT_TASKS:
    assert abs(table[name, "random"]["edge_auc"] - 0.5) < 0.05
    assert abs(table[name, "random"]["node_auc"] - 0.5) < 0.05
    assert table[name, "acdc"]["faithfulness"] > 0.5  # on prompts ACDC never saw
    assert run.graphs[name]["component_edges"] >= 150 and run.graphs[name]["nodes"] >= 20
assert (not broken) == ("does not separate" not in verdict)
busy_tasks = [n for n in SIIT_TASKS if task_config(n).distractor_weight]
held_tasks = [n for n in SIIT_TASKS if task_config(n).head_norm]
assert set(busy_tasks) <= set(held_tasks)
for name in held_tasks:  # where every component is held at one norm
    assert max(norm[name]["edge_auc"], norm[name]["node_auc"]) <= 0.75, (name, norm[name])
    assert name not in broken
assert attempts_passed == 0  # the prose above says the busy setting failed on these tasks
metrics = {f"{name}/{method}": table[name, method] for name in SIIT_TASKS for method in ALL_METHODS}
metrics |= {f"{name}/seed{seed}/verification": check
            for (name, seed), check in run.verification.items()}
metrics["weight_norm_above_0.75"] = broken
metrics["busy_tasks"] = busy_tasks
metrics["held_norm_tasks"] = held_tasks
metrics["busy_attempts_passed"] = attempts_passed
record = mi.write_result(
    "circuits-siit-benchmark", metrics, seeds=list(SIIT_SEEDS), data_source="SIIT tasks",
    title="Circuit discovery against circuits known by construction",
    config={"n_prompts": 64, "faithfulness_prompts": "64 held out",
            "graphs": run.graphs, "alignments": {f"{t}/{s}": a
                                                 for (t, s), a in run.alignments.items()}},
    started=started)
print(f"result record written to {record}")
