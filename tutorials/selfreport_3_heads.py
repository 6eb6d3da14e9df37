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
# # Self-report 3: three ways to answer
#
# A self-report is the model itself, wrapped with a **head** that turns its internal state at
# each position into a report on the four neurons chosen by the [scan](../selfreport_1_scanning/).
# The model and the head are fine-tuned together on the [dataset](../selfreport_2_dataset/),
# so the model can change how it represents what it knows about its neurons. Three heads:
#
# * **regression**: a linear map from the residual stream to the four (standardised)
#   activations, trained with squared error;
# * **classification**: the training activations of each neuron are cut into 20 bins at
#   their quantiles; a linear map gives logits over the bins, trained with cross-entropy; the
#   report is the expected bin value under the softmax;
# * **token**: no new weights. Each bin of each neuron is assigned a word of the model's own
#   vocabulary, and the model answers through its own unembedding: the logits of those words
#   at the position are the bin logits. This is the closest a small model comes to *saying*
#   the value, as the models of Binder et al. (2024) and LatentQA (Pan et al., 2024) answer
#   in their own output space.
#
# The training loss adds two terms to the report's own. The model's **next-token loss**
# (weight `lm_weight`, 1 by default) keeps it a language model while it learns to report,
# and an **anchor** (weight `anchor_weight`, 10 by default) penalises any change of the four
# neurons themselves, so that the report stays a report on the neurons the model had. The
# [next page](../selfreport_4_unfreezing_and_drift/) shows what happens without them.
#
# The default strategy, `last_k` with k = 1, trains the head, the final layer norm and the
# last block. Each head is compared on the same test rows with the baselines of the previous
# page and with one more control: **the same head on the frozen model** (strategy `head`),
# which is what the readout alone achieves when the model may not change.

# %%
import time

import matplotlib.pyplot as plt

import mechinterp as mi
from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.selfreport import (
    HEAD_TYPES,
    fit_head,
    linear_probe_baseline,
    load_config,
    mean_baseline,
    prepare,
    token_lookup_baseline,
)

started = time.perf_counter()
config = load_config({})
prep = prepare(config)
data = prep.dataset
hook = f"blocks.{prep.read_layer}.hook_resid_post"
baselines = {"mean": mean_baseline(data), "token lookup": token_lookup_baseline(data),
             "linear probe": linear_probe_baseline(prep.subject.model, data, hook)}
fitted = {head: fit_head(prep, head) for head in HEAD_TYPES}
frozen = {head: fit_head(prep, head, strategy="head")[1] for head in HEAD_TYPES}
print(f"neurons {prep.neurons} of layer {prep.layer}; the heads read `{hook}`; "
      f"{data.summary()['n_test_rows']} test rows")

# %% [markdown]
# ## The table
#
# `r` is the Pearson correlation on the test rows against the frozen targets (averaged over
# the four neurons), `r live` the same against the fine-tuned model's own neurons, and
# `next-token loss` the model's loss on the test documents before and after (the price of
# learning to report).

# %%
lm_before = fitted["regression"][1]["lm_loss_before"]
rows = [{"method": f"self-report, {h} head", "r": s["pearson_r"], "R2": s["r2"],
         "r live": s["pearson_r_live"], "drift": s["drift"],
         "next-token loss": f"{s['lm_loss_before']:.3f} -> {s['lm_loss']:.3f}"}
        for h, (_, s) in fitted.items()]
rows += [{"method": f"{h} head, frozen model", "r": s["pearson_r"], "R2": s["r2"],
          "next-token loss": f"{s['lm_loss_before']:.3f} -> {s['lm_loss']:.3f}"}
         for h, s in frozen.items()]
rows += [{"method": name, "r": b.scores["pearson_r"], "R2": b.scores["r2"],
          "next-token loss": f"{lm_before:.3f} (unchanged)"} for name, b in baselines.items()]
show_markdown(markdown_table(rows, ["method", "r", "R2", "r live", "drift", "next-token loss"],
                             {"r": ".4f", "R2": ".4f", "r live": ".4f", "drift": ".4f"}))
best = max(fitted, key=lambda h: fitted[h][1]["pearson_r"])
probe_r = baselines["linear probe"].scores["pearson_r"]
print(f"best head: {best}, r {fitted[best][1]['pearson_r']:.4f} against the probe's "
      f"{probe_r:.4f}; per neuron {fitted[best][1]['pearson_r_per_neuron']}")

# %% [markdown]
# Three things stand out. The regression head, with the last block free to change, beats
# the linear probe on the frozen stream: fine-tuning rearranged the end of the model so that
# the neurons are easier to read. The same head on the frozen model does *not* beat the probe
# (it is a probe, fitted by gradient descent instead of in closed form), which is the control
# that says the gain comes from the model changing. And the token head is the weakest: it
# must answer through the very logits the model uses to predict the next word, so every
# report competes with the language model for the same output.

# %% [markdown]
# ## Predicted against actual
#
# Each point is one test position; the four panels are the four neurons. The probe's errors
# are largest on the positions where a neuron fires, which is where a report matters most.

# %%
prediction, live = fitted[best][0].predict("test")
target = data.flat_targets("test")
probe_prediction = baselines["linear probe"].prediction
fig, axes = plt.subplots(1, len(prep.neurons), figsize=(3.2 * len(prep.neurons), 3.2))
for j, (ax, n) in enumerate(zip(axes, prep.neurons, strict=True)):
    ax.scatter(target[:, j], probe_prediction[:, j], s=3, alpha=0.3, color="tab:orange",
               label="linear probe")
    ax.scatter(target[:, j], prediction[:, j], s=3, alpha=0.3, color="tab:blue",
               label=f"self-report ({best})")
    lo, hi = float(target[:, j].min()), float(target[:, j].max())
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
    ax.set_title(f"neuron {n}")
    ax.set_xlabel("actual activation")
axes[0].set_ylabel("reported activation")
axes[0].legend(loc="upper left", fontsize=7, markerscale=3)
fig.tight_layout()
plt.show()
fires = target > target.quantile(0.9, dim=0)  # each neuron's top tenth of test positions
probe_error = (probe_prediction - target).abs()
self_error = (prediction - target).abs()
show_markdown(f"Mean absolute error where a neuron fires (its top tenth of test positions) and "
              f"elsewhere: linear probe {float(probe_error[fires].mean()):.3f} and "
              f"{float(probe_error[~fires].mean()):.3f}; self-report "
              f"{float(self_error[fires].mean()):.3f} and {float(self_error[~fires].mean()):.3f}.")

# %% [markdown]
# ## The token head's trade-off
#
# How much language modelling does the token head give up to answer? Training it with
# different weights on the next-token loss traces the trade-off: with none, it answers best
# and the model stops predicting text; with a large weight, the model stays itself and
# answers worse.

# %%
sweep = {w: fit_head(prep, "token", lm_weight=w)[1] for w in (0.0, 0.3, 3.0)}
sweep[config.lm_weight] = fitted["token"][1]
sweep = dict(sorted(sweep.items()))
fig, ax = plt.subplots(figsize=(5.5, 3.6))
ax.plot([s["lm_loss"] for s in sweep.values()], [s["pearson_r"] for s in sweep.values()], "o-")
for w, s in sweep.items():
    ax.annotate(f"lm_weight {w:g}", (s["lm_loss"], s["pearson_r"]), xytext=(5, -10),
                textcoords="offset points", fontsize=8)
ax.axvline(lm_before, color="grey", ls="--", lw=0.8, label="next-token loss before")
ax.set_xscale("log")
ax.set_xlabel("next-token loss on test documents (log scale)")
ax.set_ylabel("report r")
ax.set_title("Token head: reporting against language modelling")
ax.legend(loc="lower left", fontsize=8)
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()
show_markdown(markdown_table([{"lm_weight": w, "r": s["pearson_r"], "loss": s["lm_loss"]}
                              for w, s in sweep.items()], ["lm_weight", "r", "loss"],
                             {"r": ".4f", "loss": ".3f"}))

# %% [markdown]
# ## Reading before the neurons are computed
#
# Everything above read the residual stream at the end of the model, after the neurons' MLP
# had written them into it, where the probe is already strong. The harder question is
# whether the model can report a neuron *before* computing it: the heads now read the stream
# after block 0 (`read_layer = 0`), where the previous page's probe is weaker. Only block 0 and
# the embeddings feed that point, so the `last_k` strategy has nothing useful to train; this
# setting uses `full` fine-tuning, with the same anchor keeping the neurons in place. The
# token head always answers at the end of the model and is left out.

# %%
early = prepare({"read_layer": 0, "heads": ["regression", "classification"]})
early_hook = f"blocks.{early.read_layer}.hook_resid_post"
early_probe = linear_probe_baseline(early.subject.model, early.dataset, early_hook)
early_rows = []
early_scores = {}
for head in ("regression", "classification"):
    _, s = fit_head(early, head, strategy="full")
    _, f = fit_head(early, head, strategy="head")
    early_scores[head] = {"self": s, "frozen": f}
    early_rows.append({"head": head, "self-report (full)": s["pearson_r"],
                       "r live": s["pearson_r_live"], "same head, frozen model": f["pearson_r"],
                       "next-token loss": f"{s['lm_loss_before']:.3f} -> {s['lm_loss']:.3f}"})
early_rows.append({"head": "linear probe", "self-report (full)": early_probe.scores["pearson_r"]})
show_markdown(markdown_table(early_rows, ["head", "self-report (full)", "r live",
                                          "same head, frozen model", "next-token loss"],
                             {"self-report (full)": ".4f", "r live": ".4f",
                              "same head, frozen model": ".4f"}))

# %% [markdown]
# Here the gap to the probe is large, and the frozen-model control shows that the two heads
# close it in different ways. The regression head needs the fine-tuning: on the frozen model
# it is a probe again, and with block 0 free to change it climbs well above it, because block
# 0 learns to carry forward, in linearly readable form, what layer 1 is about to compute. The
# classification head needs none: on the frozen model it already beats the probe, since a
# softmax over bins is a *nonlinear* readout and the neurons are nonlinear functions of this
# stream, and fine-tuning adds nothing to it. A self-report that beats a linear probe has
# therefore shown something only when the same head on the frozen model does not. (The
# token head's frozen-model row in the first table still trains the unembedding, which is its
# readout; that is why its next-token loss moves.)

# %%
best_r = fitted[best][1]["pearson_r"]
assert best_r >= 0.9 and best_r > probe_r, (best_r, probe_r)
assert probe_error[fires].mean() > 1.5 * probe_error[~fires].mean()
assert fitted["regression"][1]["pearson_r"] > frozen["regression"]["pearson_r"]
assert frozen["regression"]["pearson_r"] <= probe_r + 0.005  # a frozen linear head is a probe
assert all(s["pearson_r"] > baselines["token lookup"].scores["pearson_r"]
           for _, s in fitted.values())
assert all(abs(s["drift"]) < 0.01 for _, s in fitted.values())  # the anchor held the neurons
assert sweep[0.0]["pearson_r"] > sweep[3.0]["pearson_r"]
assert sweep[0.0]["lm_loss"] > 2 * sweep[3.0]["lm_loss"]
early_probe_r = early_probe.scores["pearson_r"]
reg, cls = early_scores["regression"], early_scores["classification"]
assert reg["self"]["pearson_r"] > early_probe_r + 0.03
assert reg["self"]["pearson_r"] > reg["frozen"]["pearson_r"] + 0.03
assert reg["frozen"]["pearson_r"] <= early_probe_r + 0.005
assert cls["frozen"]["pearson_r"] > early_probe_r + 0.03
assert abs(cls["self"]["pearson_r"] - cls["frozen"]["pearson_r"]) < 0.01
record = mi.write_result(
    "selfreport-heads",
    {"read_after": {"heads": {h: s["pearson_r"] for h, (_, s) in fitted.items()},
                    "heads_live": {h: s["pearson_r_live"] for h, (_, s) in fitted.items()},
                    "frozen_model": {h: s["pearson_r"] for h, s in frozen.items()},
                    "baselines": {n: b.scores["pearson_r"] for n, b in baselines.items()},
                    "lm_loss": {h: s["lm_loss"] for h, (_, s) in fitted.items()},
                    "lm_loss_before": lm_before},
     "token_lm_weight_sweep": {str(w): {"r": s["pearson_r"], "lm_loss": s["lm_loss"]}
                               for w, s in sweep.items()},
     "read_before": {"heads": {h: v["self"]["pearson_r"] for h, v in early_scores.items()},
                     "frozen_model": {h: v["frozen"]["pearson_r"]
                                      for h, v in early_scores.items()},
                     "linear_probe": early_probe.scores["pearson_r"]},
     "best_head": best, "pearson_r": best_r, "neurons": prep.neurons},
    seeds=sorted({config.model_seed, config.seed}), data_source="toy world",
    title="Self-report: three heads against the baselines",
    config={k: v for k, v in config.as_dict().items() if k != "wandb"}, started=started)
print(f"result record written to {record}")
