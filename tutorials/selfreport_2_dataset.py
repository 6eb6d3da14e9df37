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
# # Self-report 2: the activation dataset
#
# The [scan](../selfreport_1_scanning/) chose four neurons of `toyworld-2l`'s second MLP
# layer. This page turns documents into the examples a self-report is trained and tested on:
# at every position of every document, the value each chosen neuron takes there in the
# *original* model. These targets are recorded once, before any fine-tuning, and never change;
# the next pages call them the **frozen** targets.
#
# Two rules keep the test honest:
#
# * **split by document, not by position.** The positions of one document share their
#   prefix; a split by position would put most of every test document into training.
# * **drop repeated documents before the split.** The toy world's templates repeat, and a
#   document that appears twice could land on both sides.
#
# The page ends with the baselines that need no training of the model, and with one
# measurement that frames everything after it: *where* in the residual stream a neuron's
# value can be read with a linear map.

# %%
import time

import matplotlib.pyplot as plt

import mechinterp as mi
from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.selfreport import (
    linear_probe_baseline,
    load_config,
    mean_baseline,
    prepare,
    token_lookup_baseline,
)

started = time.perf_counter()
config = load_config({})
prep = prepare(config)
data, model, tok = prep.dataset, prep.subject.model, prep.subject.tokenizer
summary = data.summary()
print(f"neurons {prep.neurons} of layer {prep.layer}")
show_markdown(markdown_table([summary], list(summary)))

# %% [markdown]
# ## No document on both sides
#
# The split is over document ids, and the check below compares the token rows themselves, not
# only the ids. Every position of a document after `<bos>` is one example, so each test
# document gives 31 rows.

# %%
train_tokens, train_targets = data.split("train")
test_tokens, test_targets = data.split("test")
train_rows = {tuple(r) for r in train_tokens.tolist()}
shared = sum(tuple(r) in train_rows for r in test_tokens.tolist())
print(f"test documents whose tokens also occur as a training document: {shared}")
examples = data.examples("test")
print(f"test rows: {len(examples['target'])} from {len(test_tokens)} documents")

doc = 0
words = tok.decode(test_tokens[doc]).split()
show_markdown(markdown_table(
    [{"pos": p, "token": words[p], **{f"n{n}": float(test_targets[doc, p, j])
                                      for j, n in enumerate(prep.neurons)}}
     for p in range(1, 13)],
    ["pos", "token"] + [f"n{n}" for n in prep.neurons],
    {f"n{n}": ".2f" for n in prep.neurons}))

# %% [markdown]
# ## Baselines that need no fine-tuning
#
# Each is scored on exactly the same held-out rows, by Pearson r between predicted and actual
# activation (averaged over the four neurons) and by R².
#
# * **mean** (trivial): the training mean everywhere. Its r is 0 by construction (a constant
#   prediction has no correlation) and its R² is about 0.
# * **token lookup**: the mean training activation of the current token. This is how far the
#   input alone goes; a neuron with selectivity near 1 is already solved by it.
# * **linear probe** (strong): ridge regression, in closed form, from the frozen model's
#   residual stream to the four activations, its penalty chosen on training documents held
#   out of the fit.

# %%
baselines = {"mean": mean_baseline(data), "token lookup": token_lookup_baseline(data)}
for name, b in baselines.items():
    print(f"{name:>12}: r {b.scores['pearson_r']:.3f}, R2 {b.scores['r2']:.3f}, per neuron "
          f"{[round(x, 3) for x in b.scores['pearson_r_per_neuron']]}")

# %% [markdown]
# ## Where a neuron can be read
#
# The probe can read the residual stream at any point. Reading it *after* the neurons' layer
# is nearly cheating: the MLP has already written the neurons' output into the stream (a
# linear map of their activations), so a probe there mostly has to undo that map. Reading it
# *before* the layer asks for more: the activation has not been computed yet, and a linear
# map has to anticipate what the layer's attention and nonlinearity will do. The sweep below
# reads at every point from the embeddings to the neurons themselves.

# %%
points = [("blocks.0.hook_resid_pre", "embeddings"),
          ("blocks.0.hook_resid_post", "after block 0"),
          (f"blocks.{prep.layer}.hook_resid_mid", "after layer 1's attention (the read point)"),
          (f"blocks.{prep.layer}.mlp.hook_pre", "the neurons' inputs (pre-GELU)"),
          (f"blocks.{prep.layer}.hook_resid_post", "after layer 1's MLP (leaks)"),
          (f"blocks.{prep.layer}.mlp.hook_post", "the neurons themselves")]
probes = {hook: linear_probe_baseline(model, data, hook) for hook, _ in points}
rows = [{"read at": label, "hook": f"`{hook}`", "r": probes[hook].scores["pearson_r"],
         "R2": probes[hook].scores["r2"], "ridge penalty": probes[hook].details["alpha"]}
        for hook, label in points]
show_markdown(markdown_table(rows, ["read at", "hook", "r", "R2", "ridge penalty"],
                             {"r": ".4f", "R2": ".4f", "ridge penalty": ".0e"}))

fig, ax = plt.subplots(figsize=(8, 3.4))
ax.plot(range(len(points)), [r["r"] for r in rows], "o-", label="linear probe")
ax.axhline(baselines["token lookup"].scores["pearson_r"], color="tab:orange", ls="--",
           label="token lookup")
ax.axhline(0, color="grey", lw=0.8, label="mean (r = 0)")
ax.set_xticks(range(len(points)), [label for _, label in points], rotation=20, ha="right")
ax.set_ylabel("Pearson r on test rows")
ax.set_title("How well a linear map reads the four neurons, by where it reads")
ax.legend(loc="lower right")
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# The curve climbs from the embeddings to the stream after layer 1's attention, as block 0
# and then that attention bring in the context the neurons depend on. The neurons' own
# pre-activations are a linear map of the same stream after its layer norm (the norm's
# per-position scale is the only non-linear step between them), and no linear map can bend
# the way the GELU does. Only after the MLP has written the neurons into the stream does the
# probe read them almost exactly; probing the activations themselves is exact (r = 1, the
# check that the probe works).
#
# That last jump is a leak, not a better reading: the probe there recovers what the neurons
# have already written. The self-report pages therefore read `blocks.1.hook_resid_mid`, the
# last point before the neurons' MLP, by default. A read point after its write
# (`blocks.1.hook_resid_post`, or anything in a later block) is refused unless asked for
# explicitly, and the [next page](../selfreport_3_heads/) measures it on purpose, to show how
# much it inflates every score.

# %%
r_after = probes[f"blocks.{prep.layer}.hook_resid_post"].scores["pearson_r"]
r_mid = probes[prep.read_hook].scores["pearson_r"]
r_pre = probes[f"blocks.{prep.layer}.mlp.hook_pre"].scores["pearson_r"]
r_rising = [probes[hook].scores["pearson_r"] for hook, _ in points[:3]]
show_markdown(f"Read at the pre-activations the probe reaches r = {r_pre:.4f}, against "
              f"{r_mid:.4f} on the stream they are computed from "
              f"(a difference of {r_pre - r_mid:+.4f}); after the write, "
              f"{r_after:.4f}.")
assert prep.read_hook == f"blocks.{prep.layer}.hook_resid_mid"
assert shared == 0
assert set(data.train_ids.tolist()).isdisjoint(data.test_ids.tolist())
assert len(examples["target"]) == len(test_tokens) * (data.tokens.shape[1] - 1)
assert baselines["mean"].scores["pearson_r"] == 0.0 and abs(baselines["mean"].scores["r2"]) < 0.01
assert probes[f"blocks.{prep.layer}.mlp.hook_post"].scores["pearson_r"] > 0.999
assert r_rising == sorted(r_rising), r_rising  # embeddings < block 0 < layer 1's attention
assert r_pre < r_after - 0.02  # before the GELU and the write, the probe stays well short
assert r_after > r_mid + 0.02, (r_after, r_mid)  # the neurons' write lifts the probe
assert r_after > baselines["token lookup"].scores["pearson_r"]
record = mi.write_result(
    "selfreport-dataset",
    {"dataset": summary, "neurons": prep.neurons,
     "mean": baselines["mean"].scores["pearson_r"],
     "token_lookup": baselines["token lookup"].scores["pearson_r"],
     "linear_probe_by_hook": {hook: probes[hook].scores["pearson_r"] for hook, _ in points},
     "shared_documents": shared},
    seeds=sorted({config.model_seed, config.seed}), data_source="toy world",
    title="Self-report: the activation dataset and where a neuron can be read",
    config={"model": config.model, "n_documents": config.n_documents,
            "test_fraction": config.test_fraction},
    started=started)
print(f"result record written to {record}")
