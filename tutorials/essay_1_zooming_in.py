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
# # 1. Zooming in: why instruments matter
#
# *Part of the essay [Mechanistic interpretability through the lens of Symbiotic
# Networks](../). Every number and figure below was computed while this site was
# built; the code behind them is hidden here and included in the notebook and script
# downloads.*
#
# In "Zoom In: An Introduction to Circuits" (Distill, 2020), Olah and colleagues argue that
# fields of science often turn a corner when some new instrument lets them look at their
# subject at a finer grain than before, and that neural networks may be ready for such a turn:
# their features and the circuits connecting them are a grain at which a network can be
# studied the way a biologist studies tissue. The argument leans on instruments. Feature
# visualisation, attribution, linear probes, ablations, activation patching and, more
# recently, sparse autoencoders are what make the finer grain visible at all, and what each
# of them can and cannot show decides what the field can claim.
#
# Instruments come in two kinds. Some **look**: a recording electrode, a sequencer, a
# readout of a network's activations. Others **act**: a lesion, a gene knockout, the light
# pulse of optogenetics that switches one population of neurons off while the animal
# behaves. The acting kind answers causal questions the looking kind cannot, and in
# interpretability it already exists as ablation and activation patching. But those are
# made by hand and move one component at a time; for a network with thousands of units and
# a behaviour spread across many of them, the space of possible interventions is far too
# large to search by enumeration.
#
# This essay is about a third option: **instruments that are themselves networks**. A
# *subsidiary network* is trained against the network under study, with an objective that
# states a question: *silence digit 3 and leave everything else alone*; *tell me what
# neuron 40 is doing*; *carry the concept "four" from this model into that one*. Three
# properties make such a network a good instrument.
#
# 1. **It searches.** Gradient descent chooses a modulation for every unit at once, or a
#    readout of the whole residual stream, from a space no one could enumerate.
# 2. **It acts.** What it learns is applied to the network and its effect is measured, so its
#    findings are interventions, not correlations.
# 3. **It leaves a readable trace.** The instrument is a network too: its gates, its readout
#    weights, its alignment map are artefacts that can be inspected after the fact. The
#    measurement is stored in its weights.
#
# The same properties are also the risks. An instrument that learns can learn a shortcut
# instead of the answer, and one that acts can change the very thing it measures. Each
# subsidiary network on this site is therefore **calibrated**: compared, on the same data,
# with a trivial baseline and a strong one, checked against planted ground truth where the
# ground truth can be planted, and controlled for what it could have done without the
# network under study.

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import torch

import mechinterp as mi
from mechinterp.dashboard import key_results
from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.results import load_results
from mechinterp.symbiote import symbiote_for

data = mi.load_digits()
trained = symbiote_for("normal", data, seed=0)
A, B = trained.primary.model, trained.symbiote

# %% [markdown]
# ## One image, two instruments
#
# Here is the difference in one picture. A small CNN (the primary network, *A*) classifies a
# handwritten 3. The first row is what a looking instrument shows: the activation maps of
# A's first convolution layer, which say what the network computes on this image. The second
# row is an acting instrument, the [symbiote](../essay_2_symbiote/) *B* trained to silence
# one digit in A: the multiplicative gates it applies to each of A's hidden units when asked
# to silence the 3, and what those gates do to A's answer.

# %% tags=["hide-input"]
digit = 3
index = int(torch.nonzero(data.test_labels == digit)[0])
image = data.test_images[index:index + 1]
with torch.no_grad():
    logits, cache = A.run_with_cache(image)
    gated = A.run_with_hooks(image, fwd_hooks=B.hooks(torch.tensor([digit])))
    gates = {name: gate[0] for name, (gate, _) in B.table([digit]).items()}
maps = cache["conv1.hook_post"][0]
n_maps = min(8, maps.shape[0])
fig = plt.figure(figsize=(12, 5.2))
grid = fig.add_gridspec(2, n_maps + 1, height_ratios=[1, 1.25])
ax = fig.add_subplot(grid[0, 0])
ax.imshow(image[0, 0].cpu(), cmap="gray_r")
ax.set_title("input")
ax.axis("off")
for c in range(n_maps):
    ax = fig.add_subplot(grid[0, c + 1])
    ax.imshow(maps[c].cpu(), cmap="viridis")
    ax.set_title(f"conv1 ch {c}", fontsize=8)
    ax.axis("off")
ax = fig.add_subplot(grid[1, : n_maps // 2 + 1])
offset = 0
for name, g in gates.items():
    ax.bar(range(offset, offset + len(g)), (g - 1).cpu(), width=1.0, label=name.split(".")[0])
    offset += len(g)
ax.axhline(0, color="black", lw=0.6)
ax.set_xlabel("hidden unit of A (conv channels, then fc1)")
ax.set_ylabel("gate - 1")
ax.set_title(f"B's gates when asked to silence {digit}")
ax.legend(fontsize=7, loc="lower left")
ax = fig.add_subplot(grid[1, n_maps // 2 + 2:])
width = 0.4
ax.bar(torch.arange(10) - width / 2, logits[0].softmax(-1).cpu(), width, label="A alone")
ax.bar(torch.arange(10) + width / 2, gated[0].softmax(-1).cpu(), width,
       label=f"A with B silencing {digit}")
ax.set_xticks(range(10))
ax.set_xlabel("digit")
ax.set_ylabel("probability")
ax.set_title("A's answer")
ax.legend(fontsize=7)
fig.tight_layout()
plt.show()
changed = sum(int(((g - 1).abs() > B.config.change_threshold).sum()) for g in gates.values())
total = sum(len(g) for g in gates.values())
before, after = int(logits.argmax()), int(gated.argmax())
show_markdown(
    f"A alone answers **{before}** with probability {float(logits[0].softmax(-1)[before]):.2f}. "
    f"With B's gates it answers **{after}**, and B moved {changed} of A's {total} hidden "
    f"units by more than {B.config.change_threshold} to get there. The maps say what A "
    f"computes; the gates say which part of that computation the digit {digit} depends on, "
    "found by an optimiser rather than by a person, and tested by applying it.")

# %% [markdown]
# ## The instruments of this site
#
# Four systems, each a network studied through another network (or, for transformers, through
# the standard causal tools that calibrate the others):
#
# | network under study | instrument | trained to | what it reveals | section |
# | --- | --- | --- | --- | --- |
# | an MNIST CNN | a **symbiote**: an MLP that gates the CNN's hidden units | silence one digit, keep the rest | which units each digit runs through, and how shared they are | [2](../essay_2_symbiote/), [3](../essay_3_polysemantic/), [4](../essay_4_circuit_map/) |
# | a small transformer | a **report head** fine-tuned with the model | predict one of its own MLP neurons | how much a model can say about itself beyond what an outsider can | [5](../essay_5_self_report/) |
# | two MNIST models | **autoencoders and aligners** between their activations | carry the concept "4" from one into the other | whether two networks represent a concept in translatable ways | [6](../essay_6_concept_transfer/) |
# | transformers with planted circuits | **patching, discovery and interventions** | find and change the circuit behind a task | whether an instrument finds what is known to be there | [7](../essay_7_circuits/) |
#
# Their headline numbers in this build, each linked to the tutorial that computed it:

# %% tags=["hide-input"]
rows = key_results(load_results())
for row in rows:
    page = "../../" + row["page"].replace(".ipynb", "/")
    row["result"] = f"[{row['result']}]({page})"
show_markdown(markdown_table(rows, {"system": "system", "result": "result",
                                    "numbers": "numbers"}) if rows else
              "*No result records were found: build the site, or run the method tutorials.*")

# %% [markdown]
# The sections that follow take the instruments one at a time: [a symbiote that
# inhibits](../essay_2_symbiote/), the same symbiote under [polysemantic
# conditions](../essay_3_polysemantic/), [the circuit map](../essay_4_circuit_map/) it leaves
# behind, [networks that report on themselves](../essay_5_self_report/), [moving concepts
# between networks](../essay_6_concept_transfer/), [circuits and interventions in
# transformers](../essay_7_circuits/), and the [limits and open questions](../essay_8_limits/)
# of the whole approach.

# %% tags=["hide-input"]
assert after != digit and before == digit, (before, after)
assert 0 < changed < total
