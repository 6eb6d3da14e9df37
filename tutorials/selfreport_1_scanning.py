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
# # Self-report 1: scanning for neurons worth asking about
#
# Can a network be taught to tell us the value of one of its own neurons? The question is a
# small, measurable version of *introspection*. Binder et al. (2024), "Looking Inward", ask a
# language model about its own behaviour and compare it with a second model trained on the
# first one's answers: a model that predicts itself better than an outsider does has some
# privileged access to itself. Premakumar et al. (2024) train networks to predict their own
# hidden states as an auxiliary task (self-modelling); Bills et al. (2023) score explanations
# of GPT-2 neurons by how well a simulated activation matches the real one; LatentQA (Pan et
# al., 2024) asks a model questions about its activations in its own output space.
#
# These four pages do the experiment on `toyworld-2l`, the two-layer transformer of the
# [circuits pages](../circuits_1_capture_and_attention/), trained on a toy world whose tasks
# are known by construction:
#
# 1. **scanning** (this page): which neurons are worth asking about;
# 2. [the dataset](../selfreport_2_dataset/): documents, targets, a split by document, and
#    where a neuron's value can be read off the residual stream;
# 3. [the three heads](../selfreport_3_heads/): regression, classification and an answer in
#    the model's own vocabulary, all reading the residual stream just before the neurons' MLP,
#    against four baselines;
# 4. [unfreezing and drift](../selfreport_4_unfreezing_and_drift/): what fine-tuning changes,
#    including the neuron being reported, and the self- versus cross-prediction test.
#
# A neuron here is one of the 256 units of an MLP layer, read after the GELU
# (`blocks.{layer}.mlp.hook_post`). Neurons must be chosen *before* anything is trained on
# them and never by how well they are later predicted, so the scan runs on its own draw of
# documents, which the dataset of the next page never sees.

# %%
import time

import matplotlib.pyplot as plt
import torch

import mechinterp as mi
from mechinterp.plotting import heatmap
from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.selfreport import (
    SELECT_BY,
    NeuronScanner,
    load_config,
    load_subject,
    plot_scan,
    prepare,
    scan_documents,
)

started = time.perf_counter()
config = load_config({})  # the pipeline's defaults: toyworld-2l, layer 1, four neurons
subject = load_subject(config.model, seed=config.model_seed)
model, tok = subject.model, subject.tokenizer
tokens = scan_documents(config, subject)
print(f"{config.model}: {model.cfg.n_layers} layers x {model.cfg.d_mlp} MLP neurons; "
      f"{len(tokens)} scan documents of {tokens.shape[1]} tokens")
print("a scan document:", tok.decode(tokens[0, :20]), "...")

# %% [markdown]
# ## Five statistics per neuron
#
# The scanner runs the model over the scan documents once and keeps running moments of every
# neuron (position 0, the `<bos>` token, is left out: every neuron takes the same value there).
#
# * **variance**: how much the neuron moves at all;
# * **kurtosis**: heavy tails, a neuron that is quiet and fires rarely but strongly;
# * **frequency**: the share of positions where it is positive;
# * **selectivity**: the share of its variance explained by the identity of the current token
#   alone (1: a lookup table over tokens would reproduce it);
# * **context variance**: variance times (1 - selectivity), the part the current token does
#   not explain. A neuron that is all selectivity is easy to report and uninteresting: the
#   answer is in the input.

# %%
scanner = NeuronScanner(model, tok)
stats = scanner.scan(tokens)
rows = []
for layer in scanner.layers:
    s = stats[layer]
    for by in SELECT_BY:
        (_, n), = scanner.select(1, by=by, layer=layer)
        rows.append({"layer": layer, "ranked by": by, "top neuron": n,
                     "value": float(getattr(s, by)[n]), "variance": float(s.variance[n]),
                     "selectivity": float(s.selectivity[n]),
                     "its top token": tok.decode([int(s.top_token[n])])})
    print(f"layer {layer}: {int(s.dead.sum())} dead neurons, mean frequency "
          f"{float(s.frequency.mean()):.2f}, mean selectivity {float(s.selectivity.mean()):.2f}")
show_markdown(markdown_table(rows, ["layer", "ranked by", "top neuron", "value", "variance",
                                    "selectivity", "its top token"],
                             {"value": ".3f", "variance": ".3f", "selectivity": ".2f"}))

# %% [markdown]
# Layer 0's neurons are mostly token detectors (mean selectivity above layer 1's): the first
# MLP sees little more than the current token and what the first attention layer moved. The
# second layer is where context matters, so the pipeline asks about layer 1 by default.

# %% [markdown]
# ## Near-copies
#
# Ranking by variance alone has a trap. Here are the correlations between the activations of
# layer 1's eight highest-variance neurons over every scanned position:

# %%
layer = config.layer if config.layer is not None else model.cfg.n_layers - 1
top8 = [n for _, n in scanner.select(8, by="variance", layer=layer)]
with torch.no_grad():
    _, cache = model.run_with_cache(tokens, names_filter=[f"blocks.{layer}.mlp.hook_post"])
acts = cache[f"blocks.{layer}.mlp.hook_post"][:, 1:].reshape(-1, model.cfg.d_mlp)
corr = torch.corrcoef(acts[:, top8].T.double())
fig = heatmap(corr, row_labels=[str(n) for n in top8], col_labels=[str(n) for n in top8],
              title=f"Correlation of layer {layer}'s top-variance neurons", annotate=True,
              colorbar_label="Pearson r", figsize=(6.5, 5))
plt.show()
top4 = corr[:4, :4]
top4_min = float(top4[~torch.eye(4, dtype=torch.bool)].min())
print(f"the four highest-variance neurons correlate at r >= {top4_min:.3f} with each other")

# %%
pairs = [(top8[i], top8[j], float(corr[i, j])) for i in range(8) for j in range(i + 1, 8)
         if corr[i, j] > config.max_correlation]
show_markdown(
    f"Over this data, {len(pairs)} pairs of the eight loudest neurons correlate above "
     f"{config.max_correlation:g} (for example {pairs[0][0]} and {pairs[0][1]}, r = "
     f"{pairs[0][2]:.3f}): they are nearly the same neuron."
     if pairs else
     f"On this model no two of the eight loudest neurons correlate above "
     f"{config.max_correlation:g} (the four loudest at r >= {top4_min:.3f}), but on other "
     f"models or data they can.")

# %% [markdown]
# Asking the model to report several copies of one signal would be one experiment run several
# times. The scanner's selection therefore walks the ranking and skips any neuron whose
# activations correlate above `max_correlation` (0.9 by default) with one it has already
# taken.

# %%
prep = prepare(config)  # what the pipeline itself picks, from the same scan documents
picked = [n for _, n in scanner.select(config.k, by=config.select_by, layer=layer,
                                       max_correlation=config.max_correlation)]
assert picked == prep.neurons
chosen_corr = torch.corrcoef(acts[:, picked].T.double())
off_diagonal = chosen_corr[~torch.eye(len(picked), dtype=torch.bool)].abs()
print(f"chosen: layer {layer}, neurons {picked}; largest |r| between two of them: "
      f"{float(off_diagonal.max()):.3f}")
fig = plot_scan(stats[layer], picked, x="selectivity", y="variance")
plt.show()

# %% [markdown]
# ## What the chosen neurons respond to
#
# The strongest activations of each chosen neuron in the scan documents, with the activating
# token in double brackets. These contexts are what a human explanation of the neuron would be
# written from (the *explain* step of Bills et al., 2023); the following pages instead train
# the model to *simulate* the neuron itself.

# %%
example_rows = []
for n in picked:
    for e in scanner.top_examples(layer, n, k=3):
        example_rows.append({"neuron": n, "activation": e.activation, "context": e.context})
show_markdown(markdown_table(example_rows, ["neuron", "activation", "context"],
                             {"activation": ".2f"}))

fig, axes = plt.subplots(1, len(picked), figsize=(3 * len(picked), 2.6), sharey=True)
for ax, n in zip(axes, picked, strict=True):
    ax.hist(acts[:, n].numpy(), bins=60, color="tab:blue")
    ax.set_yscale("log")
    ax.set_title(f"neuron {n}")
    ax.set_xlabel("activation")
axes[0].set_ylabel("positions (log scale)")
fig.suptitle("Activations of the chosen neurons over the scan documents")
fig.tight_layout()
plt.show()

# %% [markdown]
# Like most GELU neurons, each sits near zero at most positions and fires at a few. A
# predictor that always says "about zero" is therefore not as bad as it sounds in squared error;
# Pearson r, which ignores the mean and scale, is the score used on the following pages.

# %%
chosen_stats = {str(n): stats[layer].row(n) for n in picked}
assert all(not stats[layer].dead[n] for n in picked)
assert float(off_diagonal.max()) <= config.max_correlation + 1e-6
assert float(stats[0].selectivity.mean()) > float(stats[1].selectivity.mean())
record = mi.write_result(
    "selfreport-scan",
    {"layer": layer, "neurons": picked, "top4_variance_min_correlation": top4_min,
     "chosen_max_abs_correlation": float(off_diagonal.max()),
     "mean_selectivity_by_layer": {str(x): float(stats[x].selectivity.mean())
                                   for x in scanner.layers},
     "dead_by_layer": {str(x): int(stats[x].dead.sum()) for x in scanner.layers},
     "chosen": chosen_stats},
    seeds=sorted({config.model_seed, config.seed}), data_source="toy world",
    title="Self-report: the neuron scan",
    config={"model": config.model, "scan_documents": config.scan_documents,
            "select_by": config.select_by, "max_correlation": config.max_correlation},
    started=started)
print(f"result record written to {record}")
