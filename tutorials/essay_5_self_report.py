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
# (the mean activation of the current token) and a **linear probe** fitted in closed form on
# the frozen residual stream at the same place the heads read.

# %% tags=["hide-input"]
groups = [("self", lambda k: m["heads"][k]["pearson_r"], "tab:blue"),
          ("frozen model", lambda k: base[f"frozen/{k}"], "tab:cyan"),
          ("another model", lambda k: base[f"cross/{k}"], "tab:orange")]
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [3, 2]})
x = np.arange(len(head_names))
for i, (label, value, color) in enumerate(groups):
    axes[0].bar(x + (i - 1) * 0.26, [value(k) for k in head_names], 0.26, label=label,
                color=color)
for name, style in (("linear_probe", "--"), ("token_lookup", ":")):
    axes[0].axhline(base[name], color="black", ls=style, lw=1, label=name.replace("_", " "))
axes[0].set_xticks(x, [f"{k} head" for k in head_names])
axes[0].set_ylim(0.7, 1.0)
axes[0].set_ylabel("Pearson r, held-out text")
axes[0].set_title("Reading after the neurons' layer (the end of the model)")
axes[0].legend(fontsize=8, loc="lower left", ncol=2)
early = h["read_before"]
early_heads = list(early["heads"])
x2 = np.arange(len(early_heads))
axes[1].bar(x2 - 0.15, [early["heads"][k] for k in early_heads], 0.3, label="self",
            color="tab:blue")
axes[1].bar(x2 + 0.15, [early["frozen_model"][k] for k in early_heads], 0.3,
            label="frozen model", color="tab:cyan")
axes[1].axhline(early["linear_probe"], color="black", ls="--", lw=1, label="linear probe")
axes[1].set_xticks(x2, [f"{k} head" for k in early_heads])
axes[1].set_ylim(0.7, 1.0)
axes[1].set_title("Reading before it (after block 0)")
axes[1].legend(fontsize=8, loc="lower left")
fig.tight_layout()
plt.show()
best = m["best_head"]
show_markdown(
    f"Reading at the end of the model, the best self-report (the **{best}** head) reaches "
    f"r = {m['pearson_r']:.3f}, against {base['linear_probe']:.3f} for the linear probe, "
    f"{base[f'frozen/{best}']:.3f} for the same head on the frozen model, "
    f"{base[f'cross/{best}']:.3f} for the other model and {base['token_lookup']:.3f} for the "
    f"token lookup (the mean scores 0 by construction). Reading before the neurons' layer, "
    f"where a linear probe manages only {early['linear_probe']:.3f}, the regression head "
    f"reaches {early['heads']['regression']:.3f} once the model may change, but only "
    f"{early['frozen_model']['regression']:.3f} on the frozen model; the classification head "
    f"reaches {early['frozen_model']['classification']:.3f} without any fine-tuning at all.")

# %% [markdown]
# Three lessons come out of these bars.
#
# **Beating a probe is not yet evidence.** The classification head beats the linear probe
# when the model is frozen: a softmax over activation bins is a nonlinear readout, and the
# neurons are nonlinear functions of the stream it reads. A self-report shows that the model
# changed to make itself reportable only when it beats *the same head on the frozen model*,
# which the regression head does in both settings and the classification head does not. The
# frozen-model control costs one extra training run and removes a whole class of false
# positives.
#
# **The outsider comes close.** The second model, which has never contained these neurons,
# is fine-tuned to predict them from the text alone and gets within a few hundredths of the
# self-report; it even beats the linear probe on the first model's own residual stream. In
# the toy world, neurons are simple enough functions of their context that a model of the
# same size can learn to compute them. The margin that remains is what having the neuron
# inside is worth here, and reading after the neurons' layer, much of it is simply that the
# neuron has already written itself into the stream.
#
# **Answering in words is expensive.** The token head has no readout of its own: it must
# answer through the same unembedding the model uses to predict the next word. It is the
# weakest head, and the only one whose training noticeably raised the model's next-token
# loss. The closest analogue of the introspection experiments on language models is the one
# that fights the model's day job.

# %% tags=["hide-input"]
token = m["heads"]["token"]
sweep = h["token_lm_weight_sweep"]
show_markdown(
    f"The token head's next-token loss went from {token['lm_loss_before']:.3f} to "
    f"{token['lm_loss']:.3f} (regression head: {m['heads']['regression']['lm_loss']:.3f}). "
    "Trading the two off with the weight of the language-modelling term: "
    + ", ".join(f"weight {w}: r {v['r']:.3f} at loss {v['lm_loss']:.2f}"
                for w, v in sweep.items()) + ".")

# %% [markdown]
# ## The report changes what it reports on
#
# A head trained on the *frozen* targets (the neurons' values in the original model) can be
# scored against them or against the *live* neurons of the fine-tuned model. The distance
# between the two is the drift, $1 - r(a_{\text{frozen}}, a_{\text{live}})$ over the test
# positions, with $r$ the Pearson correlation. Without the
# anchor term, every strategy that may touch the neurons' block moves them (full fine-tuning
# the furthest), and the report, trained on the original values, keeps tracking the neurons
# the model used to have better than the ones it now has. With the anchor, the neurons stay
# where they were and the report is no worse.

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
ax.set_title("How far fine-tuning moves the reported neurons, by unfreezing strategy")
ax.legend()
fig.tight_layout()
plt.show()
show_markdown(
    "Against the frozen and the live targets, without the anchor: "
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
# model for making itself easy to describe. Measuring the drift, and holding it near zero
# when the question is about the original network, turns a self-report into an instrument
# that reads the network rather than rewriting it.
#
# The self-report is the most intimate of the subsidiary networks in this essay: it shares
# every weight with its subject. The [next section](../essay_6_concept_transfer/) goes the
# other way, to networks that sit *between* two models.

# %% tags=["hide-input"]
show_markdown(provenance_note(pipeline, heads_record, dataset_record))
reg_early = early["heads"]["regression"]
assert len(m["neurons"]) == 4 and m["dataset"]["n_test_documents"] == 300  # as the text says
lm_rise = {k: v["lm_loss"] - v["lm_loss_before"] for k, v in m["heads"].items()}
assert m["pearson_r"] > base["linear_probe"] and m["pearson_r"] >= 0.9
assert early["frozen_model"]["classification"] > early["linear_probe"]
assert m["heads"]["regression"]["pearson_r"] > base["frozen/regression"]
assert reg_early > early["frozen_model"]["regression"]
assert m["heads"]["classification"]["pearson_r"] <= base["frozen/classification"] + 0.01
assert early["heads"]["classification"] <= early["frozen_model"]["classification"] + 0.01
assert m["heads"][best]["pearson_r"] > base[f"cross/{best}"] > base["linear_probe"]
assert all(abs(m["heads"][k]["pearson_r"] - base[f"cross/{k}"]) < 0.05 for k in head_names)
assert min(m["heads"], key=lambda k: m["heads"][k]["pearson_r"]) == "token"
assert all(lm_rise["token"] > 3 * v for k, v in lm_rise.items() if k != "token")
for s in order:
    assert strategies[f"{s}/anchored"]["drift"] < strategies[f"{s}/free"]["drift"]
    assert strategies[f"{s}/free"]["pearson_r_live"] < strategies[f"{s}/free"]["pearson_r"]
    assert strategies[f"{s}/anchored"]["pearson_r"] >= strategies[f"{s}/free"]["pearson_r"] - 0.005
assert strategies["full/free"]["drift"] == max(strategies[f"{s}/free"]["drift"] for s in order)
