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
#   vocabulary, and the model answers through its own final layer norm and unembedding: the
#   logits of those words, read off the residual stream as a logit lens would, are the bin
#   logits. This is the closest a small model comes to *saying* the value, as the models of
#   Binder et al. (2024) and LatentQA (Pan et al., 2024) answer in their own output space.
#
# ## Where the heads read
#
# Every head, and the linear probe it is compared with, reads one point of the residual
# stream, the **read point**. By default it is `blocks.1.hook_resid_mid`: the stream after
# layer 1's attention and just *before* the MLP that computes the four neurons. The MLP then
# adds its output, a linear map of all its neurons, to the stream, so any point after it
# (`blocks.1.hook_resid_post`, the end of this two-layer model) already holds what the neurons
# wrote, and a head there can copy the answer instead of predicting it. The
# [dataset page](../selfreport_2_dataset/) showed how much easier that makes the probe's job.
# Such a read point is refused unless it is asked for explicitly (`allow_leak`), and the last
# section of this page measures it on purpose.
#
# The training loss adds two terms to the report's own. The model's **next-token loss**
# (weight `lm_weight`, 1 by default) keeps it a language model while it learns to report,
# and an **anchor** (weight `anchor_weight`, 10 by default) penalises any change of the four
# neurons themselves, so that the report stays a report on the neurons the model had. The
# [next page](../selfreport_4_unfreezing_and_drift/) shows what happens without the anchor.
#
# The default strategy, `last_k` with k = 1, trains the head, the final layer norm and the
# last block. Of that block, only the attention lies before the read point, so that is what
# can reshape the stream the heads read; its MLP holds the neurons, which the anchor keeps in
# place. Each head is compared on the same test rows with the baselines of the previous
# page and with one more control: **the same head on the frozen model** (strategy `head`),
# which is what the readout alone achieves when the model may not change.

# %%
import time

import matplotlib.pyplot as plt

import mechinterp as mi
from mechinterp.errors import ConfigError
from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.selfreport import (
    HEAD_TYPES,
    fit_head,
    linear_probe_baseline,
    load_config,
    mean_baseline,
    mlp_probe_baseline,
    prepare,
    token_lookup_baseline,
)
from mechinterp.selfreport.config import leaks, neuron_hook

started = time.perf_counter()
config = load_config({})
prep = prepare(config)
data = prep.dataset
read = prep.read_hook  # blocks.1.hook_resid_mid: just before the neurons' MLP
assert not leaks(read, prep.layer)
baselines = {"mean": mean_baseline(data), "token lookup": token_lookup_baseline(data),
             "linear probe": linear_probe_baseline(prep.subject.model, data, read),
             "nonlinear probe": mlp_probe_baseline(prep.subject.model, data, read)}
fitted = {head: fit_head(prep, head) for head in HEAD_TYPES}
frozen = {head: fit_head(prep, head, strategy="head")[1] for head in HEAD_TYPES}
print(f"neurons {prep.neurons} at `{neuron_hook(prep.layer)}`; the heads and the probe read "
      f"`{read}`; {data.summary()['n_test_rows']} test rows")

# %% [markdown]
# ## The table
#
# `r` is the Pearson correlation on the test rows against the frozen targets (averaged over
# the four neurons), `r live` the same against the fine-tuned model's own neurons, and
# `next-token loss` the model's loss on the test documents before and after (the price of
# learning to report). `read at` is the point of the residual stream each row reads.

# %%
lm_before = fitted["regression"][1]["lm_loss_before"]
at = f"`{read}`"
rows = [{"method": f"self-report, {h} head", "read at": at, "r": s["pearson_r"], "R2": s["r2"],
         "r live": s["pearson_r_live"], "drift": s["drift"],
         "next-token loss": f"{s['lm_loss_before']:.3f} -> {s['lm_loss']:.3f}"}
        for h, (_, s) in fitted.items()]
rows += [{"method": f"{h} head, frozen model", "read at": at, "r": s["pearson_r"], "R2": s["r2"],
          "next-token loss": f"{s['lm_loss_before']:.3f} -> {s['lm_loss']:.3f}"}
         for h, s in frozen.items()]
rows += [{"method": name, "read at": {"linear probe": at, "nonlinear probe": at,
                                      "token lookup": "the current token"}.get(name, "nothing"), "r": b.scores["pearson_r"], "R2": b.scores["r2"],
          "next-token loss": f"{lm_before:.3f} (unchanged)"} for name, b in baselines.items()]
show_markdown(markdown_table(rows, ["method", "read at", "r", "R2", "r live", "drift",
                                    "next-token loss"],
                             {"r": ".4f", "R2": ".4f", "r live": ".4f", "drift": ".4f"}))
scores = {h: s for h, (_, s) in fitted.items()}
# the head called best is chosen on the training documents; the test split only reports
train_r = {h: trainer.evaluate("train")["pearson_r"] for h, (trainer, _) in fitted.items()}
best = max(train_r, key=train_r.get)
best_r = scores[best]["pearson_r"]
probe_r = baselines["linear probe"].scores["pearson_r"]
frozen_cls_r = frozen["classification"]["pearson_r"]
frozen_share = (frozen_cls_r - probe_r) / (best_r - probe_r)  # of the margin over the probe
nonlinear_r = baselines["nonlinear probe"].scores["pearson_r"]
lm_rise = {h: s["lm_loss"] - s["lm_loss_before"] for h, s in scores.items()}
print(f"best head at {read} (chosen on the training documents: "
      f"{', '.join(f'{h} {r:.4f}' for h, r in train_r.items())}): {best}, test r {best_r:.4f} "
      f"against the probe's {probe_r:.4f}; "
      f"per neuron {[round(x, 3) for x in scores[best]['pearson_r_per_neuron']]}")

# %%
show_markdown(
    f"Read at `{read}`, before the neurons are computed, every self-report head beats the "
    f"linear probe read at the same point: regression {scores['regression']['pearson_r']:.3f}, "
    f"classification {scores['classification']['pearson_r']:.3f} and token "
    f"{scores['token']['pearson_r']:.3f}, against {probe_r:.3f} (the smallest margin "
    f"{min(s['pearson_r'] for s in scores.values()) - probe_r:+.3f}). The best is the **{best}** "
    f"head, {best_r - probe_r:+.3f} over the probe. But the frozen-model rows say that "
    + ("all" if frozen_share >= 1 else f"{frozen_share:.0%}")
    + " of this margin needs no fine-tuning: the classification head on the *unchanged* model "
    f"reaches {frozen_cls_r:.3f}, "
    + ("level with the best self-report. " if best_r - frozen_cls_r <= 0.01 else
       f"{best_r - frozen_cls_r:.3f} short of the best self-report, which is all that "
       "fine-tuning the model buys on top of the frozen bins here. ")
    + "Only the regression head needs the model to change: frozen it is a probe again "
    f"({frozen['regression']['pearson_r']:.3f}), and with the last block free it climbs to "
    f"{scores['regression']['pearson_r']:.3f}. And a small nonlinear probe on the unchanged "
    f"stream (a layer norm, 64 GELU units, a linear readout) reaches {nonlinear_r:.4f}, above "
    f"every self-report.")

# %% [markdown]
# So at a read point that does not leak, the self-report does beat the linear probe, but not
# because the model learned to report itself. The four neurons are a nonlinear function (a
# layer norm, a linear map and a GELU) of exactly the stream the heads read, and a softmax over
# activation bins is a nonlinear readout: it can follow the GELU where a linear probe cannot.
# The regression head, linear like the probe, gets its gain from fine-tuning instead: the
# only trainable part before the read point is layer 1's attention (with its layer norm), and
# retraining it makes the neurons more linearly readable there. A self-report that beats a
# linear probe has therefore shown something about the model only when it also beats *the
# same head on the frozen model*, and the frozen classification head is the bar every
# fine-tuned head has to clear; the paragraph above says by how much they clear it on the
# model this page was built with.
#
# The nonlinear probe shows why nothing can do much better here, and why the read point
# still gives a lot away. Just before the MLP, each neuron is exactly a layer norm, a linear
# map and a GELU of the stream the heads read: a probe of that shape can all but recompute
# it, and does. "Not leaking" means the neurons' own write is not in the stream; it does not
# mean the answer is hidden. A harder question reads earlier, at `blocks.1.hook_resid_pre`
# (before layer 1's attention, so the report must anticipate what attention will bring);
# the read point is one config field (`read_hook`).
#
# The token head, which reads the same point through the model's final layer norm and
# unembedding, is level with the classification head: both are a softmax over bins from a
# linear map of the same stream. It is still the dearest in next-token loss, because its
# readout is the unembedding the model predicts text with. (Its frozen-model row trains that
# unembedding too, which is why even that row's next-token loss moves.)

# %%
show_markdown(
    f"Next-token loss on the test documents, from {lm_before:.3f} before fine-tuning: "
    + ", ".join(f"{h} head {s['lm_loss']:.3f} ({lm_rise[h]:+.3f})" for h, s in scores.items())
    + ". Drift of the neurons (1 - r against their frozen values): "
    + ", ".join(f"{h} {s['drift']:.4f}" for h, s in scores.items())
    + f". All heads read `{read}`.")

# %% [markdown]
# ## Predicted against actual
#
# Each point is one test position; the four panels are the four neurons. The probe's errors
# are largest on the positions where a neuron fires, which is where a report matters most.

# %%
prediction, live = fitted[best][0].predict("test")
target = data.flat_targets("test")
probe_prediction = baselines["linear probe"].prediction
fig, axes = plt.subplots(1, len(prep.neurons), figsize=(3.2 * len(prep.neurons), 3.4))
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
fig.suptitle(f"Both read at {read}", fontsize=9)
fig.tight_layout()
plt.show()
fires = target > target.quantile(0.9, dim=0)  # each neuron's top tenth of test positions
probe_error = (probe_prediction - target).abs()
self_error = (prediction - target).abs()
show_markdown(f"Mean absolute error where a neuron fires (its top tenth of test positions) and "
              f"elsewhere, both reading `{read}`: linear probe "
              f"{float(probe_error[fires].mean()):.3f} and "
              f"{float(probe_error[~fires].mean()):.3f}; self-report ({best} head) "
              f"{float(self_error[fires].mean()):.3f} and {float(self_error[~fires].mean()):.3f}.")

quiet_share = float((probe_error - self_error)[~fires].sum() / (probe_error - self_error).sum())
show_markdown(
    f"Both readouts err most where a neuron fires. Of the total error the self-report saves "
    f"against the probe, {quiet_share:.0%} is saved on the nine tenths of positions where a "
    "neuron is quiet: there the self-report says so, while the probe scatters around zero, "
    "because the GELU flattens a whole range of its inputs to about zero and a linear map of "
    f"the stream cannot. Where a neuron fires, the self-report errs "
    f"{float(self_error[fires].mean() / probe_error[fires].mean()):.0%} as much as the probe.")

# %% [markdown]
# ## The token head and the next-token loss
#
# How much language modelling does the token head give up to answer? Training it with
# different weights on the next-token loss traces the trade-off, all at the same read point.

# %%
sweep = {w: fit_head(prep, "token", lm_weight=w)[1] for w in (0.0, 0.3, 3.0)}
sweep[config.lm_weight] = scores["token"]
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
ax.set_title(f"Token head reading {read}")
ax.legend(loc="lower left", fontsize=8)
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()
show_markdown(markdown_table([{"lm_weight": w, "read at": at, "r": s["pearson_r"],
                               "loss": s["lm_loss"]} for w, s in sweep.items()],
                             ["lm_weight", "read at", "r", "loss"], {"r": ".4f", "loss": ".3f"}))
sweep_rs = [s["pearson_r"] for s in sweep.values()]
show_markdown(
    f"Reading `{read}`, the report barely depends on the weight (r from {min(sweep_rs):.4f} to "
    f"{max(sweep_rs):.4f}), while the model does: without the next-token term its loss goes "
    f"from {lm_before:.3f} to {sweep[0.0]['lm_loss']:.2f}, and with any weight tried it stays "
    f"near {sweep[config.lm_weight]['lm_loss']:.3f}.")

# %% [markdown]
# There is no trade-off to make. The report is read from the middle of the model through a
# logit lens, not from the logits the model predicts the next word with, so the two tasks no
# longer compete for one output; all the next-token term has to do is stop the fine-tuning
# from wrecking the language model, and a small weight does that. What remains of the cost is
# the shared unembedding: the answer words' columns serve both.

# %% [markdown]
# ## Reading after the neurons' write, on purpose
#
# Earlier versions of this page read `blocks.1.hook_resid_post`, the stream right after the
# neurons' MLP, and their headline was a regression self-report close to perfect, above a
# probe that was itself strong. That stream already holds the MLP's output, a linear map of
# the four neurons (and of the other 252), so part of that score was the heads reading the
# neurons' own write. The pipeline now refuses that read point:

# %%
leak_hook = f"blocks.{prep.layer}.hook_resid_post"
try:
    prepare({"read_hook": leak_hook})
except ConfigError as exc:
    print(f"refused: {exc}")

# %% [markdown]
# With `allow_leak` it can still be measured, and that is what this section does, for the
# regression and classification heads and the probe, with the same neurons, documents,
# strategy and anchor. Every number read at `blocks.1.hook_resid_post` is **leaking**: it
# reads after the neurons have written into the stream.

# %%
leak = prepare({"read_hook": leak_hook, "allow_leak": True,
                "heads": ["regression", "classification"]})
assert leaks(leak.read_hook, leak.layer) and leak.neurons == prep.neurons
leak_probe = linear_probe_baseline(leak.subject.model, leak.dataset, leak.read_hook)
leak_scores = {h: {"self": fit_head(leak, h)[1], "frozen": fit_head(leak, h, strategy="head")[1]}
               for h in ("regression", "classification")}
leak_rows = [{"method": "linear probe", "r": probe_r,
              "r (leaking)": leak_probe.scores["pearson_r"]}]
for h, v in leak_scores.items():
    leak_rows += [{"method": f"self-report, {h} head", "r": scores[h]["pearson_r"],
                   "r (leaking)": v["self"]["pearson_r"]},
                  {"method": f"{h} head, frozen model", "r": frozen[h]["pearson_r"],
                   "r (leaking)": v["frozen"]["pearson_r"]}]
for row in leak_rows:
    row["inflation"] = row["r (leaking)"] - row["r"]
r_mid, r_post = f"r at `{read}`", f"r at `{leak.read_hook}` (leaking)"
show_markdown(markdown_table(
    [{"method": row["method"], r_mid: row["r"], r_post: row["r (leaking)"],
      "inflation": row["inflation"]} for row in leak_rows],
    ["method", r_mid, r_post, "inflation"], {r_mid: ".4f", r_post: ".4f", "inflation": "+.4f"}))
leak_best = max(leak_scores, key=lambda h: leak_scores[h]["self"]["pearson_r"])  # test r: shown, not chosen
leak_best_r = leak_scores[leak_best]["self"]["pearson_r"]
leak_probe_r = leak_probe.scores["pearson_r"]
show_markdown(
    f"Leaking, at `{leak.read_hook}`: the best self-report (the {leak_best} head) reaches "
    f"{leak_best_r:.3f} against a probe at {leak_probe_r:.3f}. Not leaking, at `{read}`: the "
    f"best self-report (the {best} head) reaches {best_r:.3f} against a probe at "
    f"{probe_r:.3f}. Reading after the write inflated the best self-report by "
    f"{leak_best_r - best_r:+.3f}, the linear probe by {leak_probe_r - probe_r:+.3f}, and the "
    f"regression head on the frozen model by "
    f"{leak_scores['regression']['frozen']['pearson_r'] - frozen['regression']['pearson_r']:+.3f}.")

# %% [markdown]
# The leak helps exactly the linear readouts. After the MLP, the stream holds a linear image
# of the neurons, and a linear map only has to undo it: the probe and the frozen regression
# head gain the most, and the fine-tuned regression head comes close to copying the neurons
# out. The classification head gains nothing, because it did not need the leak: its
# nonlinear readout already got as much from the stream before the MLP. Two things of the old
# headline therefore came from the read point: the near-perfect score, and the regression head
# as the winner. What survives at a point that does not leak is a self-report that beats a
# linear probe, and a frozen-model control that says the model did not have to change for it.

# %%
cls_self, cls_frozen = scores["classification"]["pearson_r"], frozen["classification"]["pearson_r"]
reg_self, reg_frozen = scores["regression"]["pearson_r"], frozen["regression"]["pearson_r"]
# at the read point that does not leak
assert all(s["pearson_r"] > probe_r + 0.01 for s in scores.values()), (scores, probe_r)
assert cls_frozen > probe_r + 0.01 and frozen_share > 0.5  # "most of this margin"
assert reg_self > reg_frozen + 0.02
assert reg_frozen <= probe_r + 0.005  # a frozen linear head is a probe
assert nonlinear_r > max(s["pearson_r"] for s in scores.values()) + 0.01  # it recomputes them
assert train_r[best] == max(train_r.values())
assert abs(scores["token"]["pearson_r"] - cls_self) < 0.015
assert all(lm_rise["token"] > 1.5 * v for h, v in lm_rise.items() if h != "token")  # dearest
assert all(s["pearson_r"] > baselines["token lookup"].scores["pearson_r"] for s in scores.values())
assert all(abs(s["drift"]) < 0.01 for s in scores.values())  # the anchor held the neurons
assert probe_error[fires].mean() > 1.5 * probe_error[~fires].mean()
assert self_error[fires].mean() > 1.5 * self_error[~fires].mean()
assert self_error.mean() < probe_error.mean()
assert quiet_share > 2 / 3  # most of the saving is on the quiet positions, as the text says
assert (probe_error - self_error)[~fires].sum() > 2 * (probe_error - self_error)[fires].sum()
# the token head's next-token weight
assert max(sweep_rs) - min(sweep_rs) < 0.02
assert sweep[0.0]["lm_loss"] > 2 * lm_before
assert all(s["lm_loss"] < 1.15 * lm_before for w, s in sweep.items() if w > 0)
# the leaking read point
leak_reg, leak_cls = leak_scores["regression"], leak_scores["classification"]
assert leak_probe_r > probe_r + 0.02
assert leak_reg["self"]["pearson_r"] > reg_self + 0.01
assert leak_reg["frozen"]["pearson_r"] > reg_frozen + 0.02
assert leak_cls["self"]["pearson_r"] < cls_self + 0.01
assert leak_reg["self"]["pearson_r"] > 0.99  # close to copying the neurons out
assert min(leak_probe_r - probe_r, leak_reg["frozen"]["pearson_r"] - reg_frozen) \
    > leak_reg["self"]["pearson_r"] - reg_self
assert leak_best == "regression" and leak_best_r > best_r + 0.01
record = mi.write_result(
    "selfreport-heads",
    {"read_hook": read, "neuron_hook": neuron_hook(prep.layer),
     "read_mid": {"read_hook": read, "leak": False,
                  "heads": {h: s["pearson_r"] for h, s in scores.items()},
                  "heads_live": {h: s["pearson_r_live"] for h, s in scores.items()},
                  "drift": {h: s["drift"] for h, s in scores.items()},
                  "frozen_model": {h: s["pearson_r"] for h, s in frozen.items()},
                  "baselines": {n: b.scores["pearson_r"] for n, b in baselines.items()},
                  "lm_loss": {h: s["lm_loss"] for h, s in scores.items()},
                  "lm_loss_before": lm_before},
     "token_lm_weight_sweep": {"read_hook": read,
                               "by_weight": {str(w): {"r": s["pearson_r"], "lm_loss": s["lm_loss"]}
                                             for w, s in sweep.items()}},
     "read_post_leak": {"read_hook": leak.read_hook, "leak": True,
                        "heads": {h: v["self"]["pearson_r"] for h, v in leak_scores.items()},
                        "frozen_model": {h: v["frozen"]["pearson_r"]
                                         for h, v in leak_scores.items()},
                        "linear_probe": leak_probe_r, "best_head": leak_best,
                        "pearson_r": leak_best_r},
     "best_head": best, "best_head_chosen_on": "train documents", "train_r": train_r,
     "pearson_r": best_r, "neurons": prep.neurons},
    seeds=sorted({config.model_seed, config.seed}), data_source="toy world",
    title="Self-report: three heads against the baselines, read before and after the neurons",
    config={k: v for k, v in config.as_dict().items() if k != "wandb"}, started=started)
print(f"result record written to {record}")
