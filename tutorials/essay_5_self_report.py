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
# # 5. Networks that report on themselves
#
# *Part of the essay [Mechanistic interpretability through the lens of Symbiotic
# Networks](../). The method tutorials behind this section:
# [scanning](../../tutorials/selfreport_1_scanning/),
# [the dataset](../../tutorials/selfreport_2_dataset/),
# [three heads](../../tutorials/selfreport_3_heads/) and
# [unfreezing and drift](../../tutorials/selfreport_4_unfreezing_and_drift/).*
#
# The symbiote of the previous sections is a second network that acts on the first from the
# outside. The instrument of this section is grafted onto the network itself: a small **head**
# that reads the network's residual stream, fine-tuned together with the network, whose job
# is to report the value one of the network's own MLP neurons takes at each position. If the
# network can be trained to do that well, it has, in a narrow and measurable sense, learned
# to introspect.
#
# The question needs care, because "reports its neuron well" can be true for boring reasons.
# Binder et al. (2024), "Looking Inward", frame the test that matters: a model has privileged
# access to some property of itself only if it predicts that property better than a *different*
# model trained on the same examples of it. Premakumar et al. (2024) train networks to predict
# their own hidden states and find that doing so changes the networks, which is the other
# half of the difficulty: a network fine-tuned to report a neuron can also change the neuron.
# And there is a third, plainer trap: where the head reads. Once the neuron's MLP has run, the
# residual stream holds what the neuron wrote, and a head reading there can copy the answer.
#
# The subject here is `toyworld-2l`, a two-layer transformer trained on a toy world of
# planted tasks (indirect objects, facts, a pronoun bias, toxic words, copying). Four neurons
# of its second MLP layer were chosen by a scan on separate documents: high variance, and no
# two of them correlated above 0.9, since the loudest neurons of the layer turned out to be
# near-copies of one another. Every score below is a Pearson correlation on 300 held-out
# documents, split from the training documents by document so that no text is on both sides.

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np

from mechinterp.essay import provenance_note, require_result
from mechinterp.reporting import show_markdown

pipeline = require_result("selfreport-pipeline", "selfreport_4_unfreezing_and_drift")
heads_record = require_result("selfreport-heads", "selfreport_3_heads")
dataset_record = require_result("selfreport-dataset", "selfreport_2_dataset")
m, h, d = pipeline["metrics"], heads_record["metrics"], dataset_record["metrics"]
base = m["baselines"]
head_names = list(m["heads"])
read, leak = m["read_hook"], h["read_post_leak"]
show_markdown(f"The heads and the probes below read `{read}`, the residual stream just before "
              f"the neurons' MLP (the neurons themselves live at `{m['neuron_hook']}`), unless "
              f"marked as reading `{leak['read_hook']}`, after it.")

# %% [markdown]
# ## Self, frozen, outsider, probe
#
# Each head type is trained three ways, and compared with three baselines that need no
# fine-tuning. **Self**: the model and its head trained together (the last block free to
# change; an *anchor* term keeps the four neurons at their original values, and the model's
# own next-token loss stays in the objective). **Frozen model**: the same head with the model
# held fixed, i.e. what the readout alone can do. **Another model**: a second copy of
# `toyworld-2l`, trained from another seed on the same data, fine-tuned in the same way to
# report *this* model's neurons. The baselines: the training **mean**, a **token lookup**
# (the mean activation of the current token), a **linear probe** fitted in closed form on
# the frozen residual stream at the same place the heads read, and a **nonlinear probe** (a
# layer norm, 64 GELU units and a linear readout) trained on that same frozen stream.
#
# The right panel repeats the measurement with the heads and the probe reading right after the
# neurons' MLP, where the first version of this experiment read. That point leaks: the stream
# there already holds the neurons' own output.

# %% tags=["hide-input"]
groups = [("self", lambda k: m["heads"][k]["pearson_r"], "tab:blue"),
          ("frozen model", lambda k: base[f"frozen/{k}"], "tab:cyan"),
          ("another model", lambda k: base[f"cross/{k}"], "tab:orange")]
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [3, 2]})
x = np.arange(len(head_names))
for i, (label, value, color) in enumerate(groups):
    axes[0].bar(x + (i - 1) * 0.26, [value(k) for k in head_names], 0.26, label=label,
                color=color)
for name, style, label in (("linear_probe", "--", "linear probe"),
                           ("mlp_probe", "-.", "nonlinear probe"),
                           ("token_lookup", ":", "token lookup")):
    axes[0].axhline(base[name], color="black", ls=style, lw=1, label=label)
axes[0].set_xticks(x, [f"{k} head" for k in head_names])
axes[0].set_ylim(0.7, 1.005)
axes[0].set_ylabel("Pearson r, held-out text")
axes[0].set_title(f"Reading {read}\n(before the neurons' MLP)", fontsize=10)
axes[0].legend(fontsize=8, loc="lower left", ncol=2)
leak_heads = list(leak["heads"])
x2 = np.arange(len(leak_heads))
axes[1].bar(x2 - 0.15, [leak["heads"][k] for k in leak_heads], 0.3, label="self",
            color="tab:blue")
axes[1].bar(x2 + 0.15, [leak["frozen_model"][k] for k in leak_heads], 0.3,
            label="frozen model", color="tab:cyan")
axes[1].axhline(leak["linear_probe"], color="black", ls="--", lw=1, label="linear probe")
axes[1].set_xticks(x2, [f"{k} head" for k in leak_heads])
axes[1].set_ylim(0.7, 1.0)
axes[1].set_title(f"Reading {leak['read_hook']}\n(after the neurons' MLP: leaking)",
                  fontsize=10)
axes[1].legend(fontsize=8, loc="lower left")
fig.tight_layout()
plt.show()
best = m["best_head"]
best_head = m["heads"][best]
seeds = m["over_seeds"]
show_markdown(
    f"Reading `{read}`, before the neurons are computed, the best self-report (the **{best}** "
    f"head) reaches r = {m['pearson_r']:.3f}, against {base['linear_probe']:.3f} for the linear "
    f"probe: it beats the probe by {m['pearson_r'] - base['linear_probe']:.3f}. The nonlinear "
    f"probe reaches {base['mlp_probe']:.4f}. Over {len(seeds['seeds'])} seeds of the split "
    f"and initialisation the headline head scores {seeds['by_method']['self-report']['mean']:.3f}"
    f" ± {seeds['by_method']['self-report']['std']:.3f}, the same head on the frozen model "
    f"{seeds['by_method']['same head, frozen model']['mean']:.3f} ± "
    f"{seeds['by_method']['same head, frozen model']['std']:.3f}. The same head "
    f"on the frozen model reaches {base[f'frozen/{best}']:.3f}, the other model "
    f"{base[f'cross/{best}']:.3f} and the token lookup {base['token_lookup']:.3f} (the mean "
    f"scores 0 by construction). Learning to report moved the four neurons by a drift of "
    f"{best_head['drift']:.4f} and took the model's next-token loss from "
    f"{best_head['lm_loss_before']:.3f} to {best_head['lm_loss']:.3f}. Reading "
    f"`{leak['read_hook']}` instead, after the neurons' write, the best self-report (the "
    f"{leak['best_head']} head) reaches {leak['pearson_r']:.3f} against a probe at "
    f"{leak['linear_probe']:.3f}: the leak inflates the best self-report by "
    f"{leak['pearson_r'] - m['pearson_r']:+.3f} and the probe by "
    f"{leak['linear_probe'] - base['linear_probe']:+.3f}.")

# %% [markdown]
# Four lessons come out of these bars.
#
# **Read before the neuron, or you measure its echo.** After the MLP, the residual stream
# holds a linear image of the neurons, and a linear readout there only has to undo it. That is
# where the first version of this experiment read, and it produced a regression head close to
# perfect. Read before the MLP, the score falls and the probe falls further. The fix costs
# nothing; it only has to be made on purpose, since
# the end of the model is the natural place to attach a head.

# %% tags=["hide-input"]
r_self = m["pearson_r"]
probe = base["linear_probe"]
cls_frozen = base["frozen/classification"]
frozen_best = max(base[f"frozen/{k}"] for k in head_names)
bins_share = (cls_frozen - probe) / (r_self - probe)  # of the self-report's margin
cross_best = max(head_names, key=lambda k: base[f"cross/{k}"])
lm_rise = {k: v["lm_loss"] - v["lm_loss_before"] for k, v in m["heads"].items()}
token_ratio = lm_rise["token"] / max(v for k, v in lm_rise.items() if k != "token")
by = seeds["by_method"]
own_gains = [a - b for a, b in zip(by["self-report"]["values"],
                                   by["same head, frozen model"]["values"], strict=True)]
show_markdown(
    "**Beating a probe is not yet evidence.** Before the MLP, every head beats the linear "
    "probe, and the classification head on the *frozen* model "
    + ("does just as well as the best fine-tuned one" if r_self < cls_frozen + 0.005 else
       f"gets {'all' if bins_share >= 1 else f'{bins_share:.0%}'} of the way from the probe to "
       f"the best fine-tuned one ({cls_frozen:.3f} against {r_self:.3f})")
    + ": a softmax over activation bins is a nonlinear readout, and the neurons are a "
    "nonlinear function of exactly the stream it reads. A self-report shows that the model "
    "changed to make itself reportable only when it beats *the same head on the frozen "
    f"model*. The headline ({best}) head does, on each of {len(own_gains)} seeds (by "
    f"{min(own_gains):+.3f} to {max(own_gains):+.3f}: little when the headline head is a "
    "nonlinear one, more when it is the regression head, whose frozen version is a linear "
    "probe), and "
    + ("nothing over the best frozen readout." if r_self < frozen_best + 0.005 else
       f"{r_self - frozen_best:+.3f} over the best frozen readout on this model.")
    + " That control costs one extra training run and removes a whole class of false "
    "positives. The nonlinear probe makes the same point from outside: just before the MLP "
    "each neuron *is* a layer norm, a linear map and a GELU of the stream, and a small probe "
    f"of that shape all but recomputes it ({base['mlp_probe']:.4f}), above every "
    "self-report. A read point that does not leak the neurons' write can still hold their "
    "whole input.")
show_markdown(
    "**The outsider comes close.** The second model, which has never contained these "
    "neurons, is fine-tuned to predict them from the text alone and "
    + (f"gets within {r_self - base[f'cross/{best}']:.3f} of the self-report"
       if r_self > base[f"cross/{best}"] else
       f"matches the self-report ({base[f'cross/{best}']:.3f} against {r_self:.3f})")
    + "; its regression head "
    + ("even beats" if base["cross/regression"] > probe else "does not beat")
    + " the linear probe on the first model's own residual stream. In the toy world, neurons "
    "are simple enough functions of their context that a model of the same size can learn "
    "to compute them. "
    + ("What having the neurons inside is worth shows most plainly in the frozen model: its "
       "classification head, reading the unchanged stream, beats every head of the "
       "outsider. The advantage is there before any fine-tuning, in the stream the neurons "
       "are computed from." if cls_frozen > base[f"cross/{cross_best}"] else
       f"On this model even that is gone: the outsider's {cross_best} head "
       f"({base[f'cross/{cross_best}']:.3f}) beats the frozen model's classification head "
       f"({cls_frozen:.3f}), so having the neurons inside is worth nothing here that a "
       "second model cannot learn from the text."))
show_markdown(
    "**Answering in words costs the model, not the report.** The token head has no readout "
    "of its own: it answers through the model's final layer norm and unembedding, applied at "
    "the read point like a logit lens. It reports as well as the classification head, but "
    f"its training raised the model's next-token loss {token_ratio:.1f} times as much as the "
    "costlier of the other two heads, because the unembedding it answers through is the one "
    "the model predicts text with.")

# %% tags=["hide-input"]
token = m["heads"]["token"]
sweep = h["token_lm_weight_sweep"]
show_markdown(
    f"Reading `{sweep['read_hook']}`, the token head's next-token loss went from "
    f"{token['lm_loss_before']:.3f} to {token['lm_loss']:.3f} (regression head: "
    f"{m['heads']['regression']['lm_loss']:.3f}, classification head: "
    f"{m['heads']['classification']['lm_loss']:.3f}). Changing the weight of the "
    "language-modelling term moves the model, not the report: "
    + ", ".join(f"weight {w}: r {v['r']:.3f} at loss {v['lm_loss']:.2f}"
                for w, v in sweep["by_weight"].items()) + ".")

# %% [markdown]
# ## The report changes what it reports on
#
# A head trained on the *frozen* targets (the neurons' values in the original model) can be
# scored against them or against the *live* neurons of the fine-tuned model. The distance
# between the two is the drift, $1 - r(a_{\text{frozen}}, a_{\text{live}})$ over the test
# positions, with $r$ the Pearson correlation. Without the anchor term, every strategy that
# may touch the neurons' block moves them (full fine-tuning the furthest), and the report,
# trained on the original values, keeps tracking the neurons the model used to have better
# than the ones it now has. With the anchor, the neurons stay where they were, and the report
# is better against the live neurons and at most a hundredth worse against the original ones.

# %% tags=["hide-input"]
strategies = m["strategies"]
order = ["last_k", "gradual", "full"]
fig, ax = plt.subplots(figsize=(7, 3.2))
xs = np.arange(len(order))
ax.bar(xs - 0.2, [strategies[f"{s}/free"]["drift"] for s in order], 0.4, label="free",
       color="tab:red")
ax.bar(xs + 0.2, [strategies[f"{s}/anchored"]["drift"] for s in order], 0.4, label="anchored",
       color="tab:green")
ax.set_xticks(xs, order)
ax.set_ylabel("drift (1 - r, original vs fine-tuned neuron)")
ax.set_title(f"How far fine-tuning moves the reported neurons (heads read {read})",
             fontsize=9)
ax.legend()
fig.tight_layout()
plt.show()
show_markdown(
    f"Regression head reading `{read}`, against the frozen and the live targets, without the "
    "anchor: "
    + "; ".join(f"{s}: r {strategies[s + '/free']['pearson_r']:.3f} and "
                f"{strategies[s + '/free']['pearson_r_live']:.3f}" for s in order)
    + ". With it: "
    + "; ".join(f"{s}: {strategies[s + '/anchored']['pearson_r']:.3f} and "
                f"{strategies[s + '/anchored']['pearson_r_live']:.3f}" for s in order) + ".")

# %% [markdown]
# This is the caution that carries over to larger models. An experiment that fine-tunes a
# language model to describe its own internals, and scores the description against
# activations recorded before fine-tuning, may be scoring a report on a model that no longer
# exists; one that scores against the fine-tuned model's activations may be rewarding the
# model for making itself easy to describe; and one that reads the model after the described
# units have written into the stream may be scoring a copy. Measuring the drift, holding it
# near zero when the question is about the original network, and reading before the units
# it asks about, turn a self-report into an instrument that reads the network rather than
# rewriting or echoing it.
#
# The self-report is the most intimate of the subsidiary networks in this essay: it shares
# every weight with its subject. The [next section](../essay_6_concept_transfer/) goes the
# other way, to networks that sit *between* two models.

# %% tags=["hide-input"]
show_markdown(provenance_note(pipeline, heads_record, dataset_record))
sweep_r = [v["r"] for v in sweep["by_weight"].values()]
assert len(m["neurons"]) == 4 and m["dataset"]["n_test_documents"] == 300  # as the text says
assert read == h["read_hook"] == sweep["read_hook"] and read.endswith("hook_resid_mid")
assert not m["leak"] and leak["leak"] and leak["read_hook"].endswith("hook_resid_post")
# read before the neuron, or you measure its echo
assert leak["pearson_r"] > m["pearson_r"] + 0.01
assert leak["linear_probe"] - probe > leak["pearson_r"] - m["pearson_r"] > 0
assert leak["best_head"] == "regression"
assert leak["heads"]["regression"] > 0.99  # close to perfect
# beating a probe is not yet evidence
assert m["beats_linear_probe"] and all(v["pearson_r"] > probe for v in m["heads"].values())
assert cls_frozen > probe and bins_share > 0.5  # the frozen model's bins close most of the gap
assert m["heads"]["regression"]["pearson_r"] > base["frozen/regression"] + 0.02
assert base["mlp_probe"] > max(v["pearson_r"] for v in m["heads"].values()) + 0.01
assert not m["beats_mlp_probe"]
assert all(g > 0 for g in own_gains)
# the outsider comes close
assert all(abs(m["heads"][k]["pearson_r"] - base[f"cross/{k}"]) < 0.05 for k in head_names)
# answering in words costs the model, not the report
assert abs(m["heads"]["token"]["pearson_r"] - m["heads"]["classification"]["pearson_r"]) < 0.015
assert token_ratio > 1.5
assert max(sweep_r) - min(sweep_r) < 0.02
assert sweep["by_weight"]["0.0"]["lm_loss"] > 2 * token["lm_loss_before"]
# drift
assert best_head["drift"] < 0.01
for s in order:
    assert strategies[f"{s}/anchored"]["drift"] < strategies[f"{s}/free"]["drift"]
    assert strategies[f"{s}/free"]["pearson_r_live"] < strategies[f"{s}/free"]["pearson_r"]
    assert strategies[f"{s}/anchored"]["pearson_r"] >= strategies[f"{s}/free"]["pearson_r"] - 0.01
    assert (strategies[f"{s}/anchored"]["pearson_r_live"]
            > strategies[f"{s}/free"]["pearson_r_live"])
assert strategies["full/free"]["drift"] == max(strategies[f"{s}/free"]["drift"] for s in order)
