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
# Networks](../). The tutorials behind this section: the five circuits pages, from
# [capture and attention](../../tutorials/circuits_1_capture_and_attention/) to
# [the discovery leaderboard](../../tutorials/circuits_5_discovery_leaderboard/),
# and the five interventions pages, from [steering](../../tutorials/interventions_1_steering/)
# to [the before/after benchmark suite](../../tutorials/interventions_5_benchmark_suite/).*
#
# Every instrument so far was calibrated against baselines, but the thing it measured, the
# circuitry of the network under study, was never known independently. In transformers that
# can be arranged. The toy world of these pages is a small language with tasks written in by
# construction: repeated random sequences to copy (induction), "when Alice and Bob went to the
# park, Bob gave a ball to" (indirect objects), fixed attributes of made-up subjects (facts),
# professions followed by a skewed pronoun (bias), and angry triggers followed by insults
# (toxicity), learned by small transformers built with TransformerLens's `TransformerBridge`.
# For scoring discovery methods the circuit itself has to be known, and reading it off
# attention patterns after training does not do: such a rule is never checked causally,
# cannot contain an MLP, and in these small models a data-free weight norm matched it
# perfectly. So the benchmark models are built instead, with strict interchange-intervention
# training (Gupta et al.'s InterpBench, 2024): a causal model names the algorithm, chosen
# components are trained to be its nodes, every other component is trained not to matter, and
# the result is checked causally on inputs training never saw.

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np

from mechinterp.essay import provenance_note, require_result
from mechinterp.reporting import markdown_table, show_markdown

discovery = require_result("circuits-siit-benchmark", "circuits_5_discovery_leaderboard")
bench = require_result("interventions-benchmark", "interventions_5_benchmark_suite")
steering = require_result("interventions-steering", "interventions_1_steering")
d, b, s = discovery["metrics"], bench["metrics"], steering["metrics"]
tasks = sorted({k.split("/")[0] for k in d if k.count("/") == 1})
methods = ["activation", "attribution", "eap", "eap-ig", "acdc"]
checks = [v for k, v in d.items() if k.endswith("/verification")]
passed = [c for c in checks if c["passed"]]

# %% [markdown]
# ## Finding what is known to be there
#
# Five methods score the model's components: **activation patching** (run the model on a
# corrupted prompt and paste in one clean activation at a time), **attribution patching**
# (its first-order approximation, from two forward passes and one backward pass), **edge
# attribution patching** and its integrated-gradients variant **EAP-IG** (the same for every
# edge between components), and **ACDC**, which prunes edges one at a time while the
# behaviour survives. Each is scored by ROC AUC against the built circuit, over components
# and over edges, on at least three verified SIIT-trained models per task (4 layers of 4 heads
# with MLPs, the circuit's place drawn per model). Two baselines sit beside them: random scores and the
# **weight norm** of each component, how much it *can* write, with no data at all.

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(9, 3.4))
names = methods + ["random", "weight_norm"]
width = 0.8 / len(tasks)
for i, task in enumerate(tasks):
    vals = [d[f"{task}/{m}"]["edge_auc"] if d[f"{task}/{m}"]["edge_auc"] is not None
            else d[f"{task}/{m}"]["node_auc"] for m in names]
    errs = [d[f"{task}/{m}"]["edge_auc_std"] if d[f"{task}/{m}"]["edge_auc"] is not None
            else d[f"{task}/{m}"]["node_auc_std"] for m in names]
    ax.bar(np.arange(len(names)) + i * width, vals, width, yerr=errs, capsize=2,
           label=task.replace("siit-", ""))
ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2,
              ["activation\npatching*", "attribution\npatching*", "EAP", "EAP-IG", "ACDC",
               "random", "weight norm\n(no data)"])
ax.set_ylim(0, 1.08)
ax.set_ylabel("ROC AUC against the built circuit")
ax.set_title("Discovery on SIIT-built circuits (edges; *components for node-only methods)")
ax.legend(fontsize=8, loc="lower left")
fig.tight_layout()
plt.show()
rows = [{"task": t, "method": m, "node AUC": d[f"{t}/{m}"]["node_auc"],
         "edge AUC": d[f"{t}/{m}"]["edge_auc"],
         "faithfulness (held out)": d[f"{t}/{m}"]["faithfulness"]}
        for t in tasks for m in methods + ["weight_norm"]]
show_markdown(markdown_table(rows, list(rows[0]), {"node AUC": ".3f", "edge AUC": ".3f",
                                                   "faithfulness (held out)": ".2f"}))
best_edge = {t: max(d[f"{t}/{m}"]["edge_auc"] or 0 for m in methods) for t in tasks}
norm_edge = {t: d[f"{t}/weight_norm"]["edge_auc"] for t in tasks}
broken = d["weight_norm_above_0.75"]  # tasks where the weight norm scores above 0.75
show_markdown(
    f"{len(passed)} of {len(checks)} benchmark models passed their causal checks (in those, "
    f"interchange accuracy of every circuit node at least {min(c['iia'] for c in passed):.2f};"
    f" with every other component resampled at once they keep at least "
    f"{min(c['non_circuit_retained'] for c in passed):.1%} of their accuracy); only those are "
    f"scored. Against them "
    f"the best edge method reaches an edge AUC of "
    + ", ".join(f"{best_edge[t]:.3f} ({t})" for t in tasks)
    + ". "
    + ("The data-free weight norm stays at "
       + ", ".join(f"{norm_edge[t]:.3f}" for t in tasks)
       + " (at most 0.75; the highest comes through the embedding, whose norm is not held "
       "and which two of induction's four built edges leave): every head's and MLP's "
       "weights are held at one norm, and every component "
       "outside the circuit is either trained on a distractor job of its own (IOI) or frozen "
       "at random weights of that norm (induction and the histogram), so the circuit cannot "
       "be read off the weights, only found by running the model. On IOI the size of the "
       "activity does not give it away either, since the distractors write as much as the "
       "circuit does; on the other two the circuit still writes more than the frozen "
       "components, a tell that only a busier benchmark would remove."
       if not broken else
       "**But the data-free weight norm reaches "
       + ", ".join(f"{norm_edge[t]:.3f}" for t in tasks)
       + f"** (above 0.75 on {', '.join(broken)}): there a no-data guess nearly finds the "
       "circuit, so the benchmark can only say that the methods agree with a circuit that "
       "is really there, not rank them. "
       + "".join(
           f"On {t}, whose models hold every component at one weight norm, it stays at "
           f"{norm_edge[t]:.3f} and the edge methods clear it: "
           + ", ".join(f"{m.upper() if m != 'acdc' else 'ACDC'} {d[f'{t}/{m}']['edge_auc']:.3f}"
                       for m in ("eap", "eap-ig", "acdc")) + ". "
           for t in tasks if t not in broken)))

# %% [markdown]
# ## Acting on what was found
#
# An intervention is scored before and after, on held-out prompts (pairings of a frame and a
# subject, profession or person that occur neither in training nor in the intervention's own
# tuning data), by a suite that measures
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
caa = sorted(tuple(p) for p in s["sweeps"]["CAA"])  # (strength, toxicity, loss)
as_good = [p for p in caa if p[1] <= s["gated"]["toxicity"]]  # CAA at least as detoxified
near = as_good[0] if as_good else caa[-1]
show_markdown(
    f"Steering along a contrastive direction at every position needs strength {near[0]:g} to "
    f"bring the toxic rate from {s['base_toxicity']:.2f} to {near[1]:.3f}"
    + (" (the first strength at least as low as the gated version's)" if as_good else
       " (its strongest setting, still above the gated version)")
    + f", where held-out loss rises from {s['base_loss']:.3f} to {near[2]:.3f}. Gated by a "
    f"linear probe that detects a hostile context, the same kind of steering reaches "
    f"{s['gated']['toxicity']:.3f} at a loss of {s['gated']['loss']:.3f}.")
seeds_bench = require_result("interventions-goals",
                             "interventions_5_benchmark_suite")["metrics"]["seeds"]
if len(seeds_bench) > 1:
    show_markdown(
        "How far the gated steering carries to contexts it was not fitted on depends on the "
        f"trained model: on the benchmark page's {len(seeds_bench)} toy models, trained the same "
        "way from different seeds, it cuts the held-out toxic share by "
        + ", ".join(f"{g['toxic share down']:.0%}" for g in seeds_bench.values())
        + " ([limits](../essay_8_limits/)).")

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
# A ground truth built into the weights is what the toy world buys, and it is also the toy
# world's limit: the circuits are small and the tasks are clean. The same tools run on GPT-2 through the same
# bridge, on English prompts for the same five tasks, where there is no ground truth to
# score against; what carries over, and what does not, is part of the
# [last section](../essay_8_limits/).

# %% tags=["hide-input"]
assert len(tasks) == 3 and len(passed) >= 9
for task in tasks:
    assert best_edge[task] >= 0.9 and abs(d[f"{task}/random"]["edge_auc"] - 0.5) < 0.05
# the prose follows the record: the weight norm's verdict is read from it, and checked here
assert set(broken) == {t for t in tasks if max(norm_edge[t], d[f"{t}/weight_norm"]["node_auc"])
                       > 0.75}
assert as_good and s["gated"]["loss"] < near[2]  # as detoxified costs CAA more loss
assert s["gated"]["loss"] / s["base_loss"] - 1 < 0.05
assert b["filter toxic words"]["after"]["toxicity"] == 0.0
assert b["filter toxic words"]["after"]["loss"] is None
assert b["equalise he/she"]["after"]["bias_gap"] < 0.01
assert b["toxicity-sae-clamp"]["after"]["toxicity"] > b["toxicity-steer"]["after"]["toxicity"] + 0.1
