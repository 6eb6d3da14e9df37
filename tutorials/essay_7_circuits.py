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
# # 7. Circuits and interventions in transformers
#
# *Part of the essay [Mechanistic interpretability through the lens of Symbiotic
# Networks](../). The tutorials behind this section: the four circuits pages, from
# [capture and attention](../../tutorials/circuits_1_capture_and_attention/) to
# [automated discovery and graph export](../../tutorials/circuits_4_discovery_and_export/),
# and the five interventions pages, from [steering](../../tutorials/interventions_1_steering/)
# to [the before/after benchmark suite](../../tutorials/interventions_5_benchmark_suite/).*
#
# Every instrument so far was calibrated against baselines, but the thing it measured, the
# circuitry of the network under study, was never known independently. In transformers that
# can be arranged. The toy world of these pages is a small language whose tasks are planted
# by construction: repeated random sequences to copy (induction), "when Alice and Bob went to
# the park, Bob gave a ball to" (indirect objects), fixed attributes of made-up subjects
# (facts), professions followed by a skewed pronoun (bias), and angry triggers followed by
# insults (toxicity). Two small transformers are trained on it with TransformerLens's
# `TransformerBridge`, and the heads that do each task can be read off their attention
# patterns, independently of any method being tested. That gives the causal tools of the
# field, which are themselves the usual instruments for calibrating others, a ground truth of
# their own.

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np

from mechinterp.essay import provenance_note, require_result
from mechinterp.reporting import markdown_table, show_markdown

discovery = require_result("circuits-discovery", "circuits_4_discovery_and_export")
bench = require_result("interventions-benchmark", "interventions_5_benchmark_suite")
steering = require_result("interventions-steering", "interventions_1_steering")
d, b, s = discovery["metrics"], bench["metrics"], steering["metrics"]
tasks = sorted({k.split("/")[0] for k in d})
methods = ["activation", "attribution", "eap", "acdc"]

# %% [markdown]
# ## Finding what is known to be there
#
# Four methods score the model's components: **activation patching** (run the model on a
# corrupted prompt and paste in one clean activation at a time), **attribution patching**
# (its first-order approximation, from two forward passes and one backward pass),
# **edge attribution patching** (the same for every edge between components) and **ACDC**,
# which prunes edges one at a time while the behaviour survives. Each is scored by the ROC
# AUC of its component scores against the planted circuit. Two baselines: random scores (AUC
# 0.5 on average) and the **weight norm** of each component, how much it *can* write with no
# data at all.

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8, 3.4))
names = methods + ["weight_norm"]
for i, task in enumerate(tasks):
    ax.bar(np.arange(len(names)) + (i - 0.5) * 0.38,
           [d.get(f"{task}/{m}", {}).get("node_auc", np.nan) for m in names], 0.38, label=task)
ax.axhline(0.5, color="gray", ls="--", lw=1, label="random scores")
ax.set_xticks(range(len(names)), ["activation\npatching", "attribution\npatching", "EAP",
                                  "ACDC", "weight norm\n(no data)"])
ax.set_ylim(0, 1.08)
ax.set_ylabel("ROC AUC against the planted circuit")
ax.legend(fontsize=8, loc="lower right")
ax.set_title("Circuit discovery on the toy world")
fig.tight_layout()
plt.show()
rows = [{"task": t, "method": m, "node AUC": d[f"{t}/{m}"]["node_auc"],
         "edge AUC": d[f"{t}/{m}"].get("edge_auc"),
         "faithfulness": d[f"{t}/{m}"]["faithfulness"], "edges kept": d[f"{t}/{m}"]["n_edges"]}
        for t in tasks for m in methods]
show_markdown(markdown_table(rows, ["task", "method", "node AUC", "edge AUC", "faithfulness",
                                    "edges kept"],
                             {"node AUC": ".3f", "edge AUC": ".3f", "faithfulness": ".2f"}))

# %% [markdown]
# The methods find the planted circuits, and the baselines say how much that is worth. On
# induction, in a model trained on nothing else, the data-free weight norm finds the circuit
# too: the heads that do the task are simply the ones that grew. On the indirect-object task,
# in the model trained on the whole mixture, the weight norm falls well behind while the
# patching methods stay near the top. A discovery method earns its keep only on the second
# kind of model, which is why both are on the page; and on the indirect-object task the
# ground truth holds a single head, so its AUC is the rank of one head and should be read
# with that in mind. **Faithfulness** (how much of the behaviour the circuit alone recovers,
# with every other edge fed corrupted activations) says what the AUC cannot: ACDC keeps the
# fewest edges and still recovers almost all of it.

# %% [markdown]
# ## Acting on what was found
#
# An intervention is scored before and after, on held-out prompts, by a suite that measures
# every behaviour at once: the toxic continuation rate after trigger words, the pronoun bias
# gap, factual recall, and the model's loss on held-out text (the price). Every intervention
# is reversible and the suite checks that the model's logits are back to their old values
# afterwards.

# %% tags=["hide-input"]
loss_before = next(iter(b.values()))["before"]["loss"]
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for name, sweep in s["sweeps"].items():
    axes[0].plot([p[2] for p in sweep], [p[1] for p in sweep], "o-", ms=4,
                 label=f"{name} at every position" if name != "random" else "random direction")
axes[0].plot([s["gated"]["loss"]], [s["gated"]["toxicity"]], "*", ms=15, color="crimson",
             label="probe-gated steering")
axes[0].axvline(loss_before, color="gray", ls=":", lw=1)
axes[0].set_xlabel("held-out loss")
axes[0].set_ylabel("toxic continuation rate")
axes[0].set_title("Steering: strength sweeps and the gated version")
axes[0].legend(fontsize=8)
kinds = {}
for name, v in b.items():
    if v["after"].get("loss") is None:
        continue
    change = v["after"]["loss"] / v["before"]["loss"] - 1
    kinds.setdefault(v["kind"], []).append((change, v["after"]["toxicity"], name))
for kind, points in kinds.items():
    axes[1].scatter([p[0] for p in points], [p[1] for p in points], s=40, label=kind)
    for change, tox, name in points:
        axes[1].annotate(name, (change, tox), fontsize=7, xytext=(4, 3),
                         textcoords="offset points")
axes[1].set_xscale("symlog", linthresh=0.05)
axes[1].set_xlabel("relative change in held-out loss")
axes[1].set_ylabel("toxic continuation rate after")
axes[1].set_title("Every ready-made intervention")
axes[1].legend(fontsize=7, loc="center right")
fig.tight_layout()
plt.show()
caa = dict((p[0], p) for p in s["sweeps"]["CAA"])
near = min(caa.values(), key=lambda p: abs(p[1] - s["gated"]["toxicity"]))
show_markdown(
    f"Steering along a contrastive direction at every position brings the toxic rate from "
    f"{s['base_toxicity']:.2f} to {near[1]:.3f} only at strength {near[0]:g}, where held-out "
    f"loss rises from {s['base_loss']:.3f} to {near[2]:.3f}. Gated by a linear probe that "
    f"detects a hostile context, the same kind of steering reaches "
    f"{s['gated']['toxicity']:.3f} at a loss of {s['gated']['loss']:.3f}.")

# %% [markdown]
# The best intervention in the toxicity panel is built from a subsidiary network: a probe,
# trained on the model's residual stream, decides *when* to steer, and the steering vector
# decides *where*. Without the probe, steering must act everywhere and damages everything;
# with it, the edit is confined to the contexts that call for it. This is the instrument
# pattern of the earlier sections in miniature: a small trained readout of the network makes
# a crude intervention specific. The sparse-autoencoder clamp tries the same idea with a
# different subsidiary network, an autoencoder whose learned feature is clamped to its calm
# value; how far that gets is in the table below, and it is much less far than the gated
# steering.
#
# The other panels of the [benchmark suite](../../tutorials/interventions_5_benchmark_suite/)
# make the same point about baselines as the symbiote did about the logit mask. A word filter
# removes toxic words perfectly and breaks held-out loss (held-out text contains those words);
# equalising two logits closes the pronoun gap perfectly and says nothing about where the gap
# comes from. Output rules set the bar for what an intervention should achieve; they cannot
# be the explanation.

# %% tags=["hide-input"]
rows = []
for name, v in b.items():
    before, after = v["before"], v["after"]
    rows.append({"intervention": name, "kind": v["kind"],
                 "toxicity": f"{before['toxicity']:.3f} -> {after['toxicity']:.3f}",
                 "bias gap": f"{before['bias_gap']:.3f} -> {after['bias_gap']:.3f}",
                 "recall": f"{before['factual_recall']:.2f} -> {after['factual_recall']:.2f}",
                 "loss": (f"{after['loss'] / before['loss'] - 1:+.1%}"
                          if after.get("loss") is not None else "undefined")})
show_markdown(markdown_table(rows, ["intervention", "kind", "toxicity", "bias gap", "recall",
                                    "loss"]))
show_markdown(provenance_note(discovery, bench, steering))

# %% [markdown]
# Planted ground truth is what the toy world buys, and it is also the toy world's limit: the
# circuits are small and the tasks are clean. The same tools run on GPT-2 through the same
# bridge, on English prompts for the same five tasks, where there is no ground truth to
# score against; what carries over, and what does not, is part of the
# [last section](../essay_8_limits/).

# %% tags=["hide-input"]
for task in tasks:
    assert max(d[f"{task}/{m}"]["node_auc"] for m in methods) >= 0.95
assert d["induction/weight_norm"]["node_auc"] >= 0.95
assert d["ioi/weight_norm"]["node_auc"] < min(d[f"ioi/{m}"]["node_auc"] for m in methods)
assert d["ioi/acdc"]["n_edges"] <= min(d[f"ioi/{m}"]["n_edges"] for m in methods)
assert d["induction/acdc"]["n_edges"] <= min(d[f"induction/{m}"]["n_edges"] for m in methods)
assert min(d[f"{t}/acdc"]["faithfulness"] for t in tasks) > 0.9
assert s["gated"]["toxicity"] <= near[1] + 0.02 and s["gated"]["loss"] < near[2]
assert s["gated"]["loss"] / s["base_loss"] - 1 < 0.05
assert b["filter toxic words"]["after"]["toxicity"] == 0.0
assert b["filter toxic words"]["after"]["loss"] is None
assert b["equalise he/she"]["after"]["bias_gap"] < 0.01
assert b["toxicity-sae-clamp"]["after"]["toxicity"] > b["toxicity-steer"]["after"]["toxicity"] + 0.1
