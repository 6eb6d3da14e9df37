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
# # Interventions 4: a rank-one fact edit
#
# ROME (Meng et al., 2022) treats an MLP's output matrix as a key-value memory: the hidden
# activation at the subject's last token is a *key*, and the matrix maps it to a *value* that
# later layers read to produce the attribute. To rewrite one fact, ROME finds the key of the
# subject, optimises a new value that makes the model say the new attribute, and adds the
# rank-one update that maps that key to that value while disturbing other keys as little as
# possible (a least-squares solution weighted by the keys' second moment). MEMIT (Meng et al.,
# 2023) spreads many edits over several layers.
#
# In `toyworld-2l` the subject -> colour facts are invented ("zorv is red"), so the right
# answer before and after an edit is known exactly. We edit layer 0's MLP, the only one whose
# output at the subject token can still be moved to the last token by attention, and score
# each edit the way ROME does:
#
# * **efficacy**: the edited prompt ("the colour of zorv is") now gives the new colour;
# * **paraphrase**: the two other templates ("zorv has the colour", "zorv is colored") too;
# * **neighbourhood**: every other subject, in every template, keeps its own colour.
#
# The baseline is what ROME was compared with: **fine-tuning** the same matrix on the edited
# prompt alone (constrained only by the number of steps).

# %%
import time

import torch

import mechinterp as mi
from mechinterp.benchmarks import edit_metrics
from mechinterp.interventions import component_parameters, rome_edit
from mechinterp.reporting import markdown_table, show_markdown
from mechinterp.toyworld import WORD_CLASSES, heldout_loss, load_toy_model
from mechinterp.toyworld.tasks import FACTS

started = time.perf_counter()
toy = load_toy_model("toyworld-2l")
model, tok = toy.model, toy.tokenizer
base_loss = heldout_loss(model, toy.spec)
colours = list(WORD_CLASSES["colour"])
edits = [(s, FACTS[s], colours[(colours.index(FACTS[s]) + 3) % len(colours)])
         for s in list(FACTS)[:6]]
print("edits:", ", ".join(f"{s}: {old} -> {new}" for s, old, new in edits))

# %% [markdown]
# ## ROME, one edit at a time

# %%
rows, rome_scores = [], []
for fact in edits:
    edit = rome_edit(toy, fact[0], fact[2])
    with edit.applied(model):
        scores = edit_metrics(model, tok, fact)
        loss = heldout_loss(model, toy.spec)
    rome_scores.append({**scores, "loss": loss})
    rows.append({"method": "ROME", "edit": f"{fact[0]}: {fact[1]} -> {fact[2]}",
                 "efficacy": f"{scores['efficacy']:.2f}",
                 "paraphrase": f"{scores['paraphrase']:.2f}",
                 "neighbourhood": f"{scores['neighbourhood']:.2f}",
                 "loss change": f"{loss / base_loss - 1:+.1%}"})

# %% [markdown]
# ## The fine-tuning baseline
#
# The same matrix (`blocks.0` MLP output weights) trained with Adam on the edited prompt's
# cross-entropy towards the new colour until the edit takes (at most 50 steps), then restored.

# %%
W, _ = component_parameters(model, "L0.mlp")["out.weight"]  # (d_model, d_mlp)
ft_scores = []
for fact in edits:
    original = W.detach().clone()
    prompt = torch.tensor([tok.encode(f"the colour of {fact[0]} is")])
    target = tok.ids([fact[2]])
    optimiser = torch.optim.Adam([W], lr=1e-2)
    for _ in range(50):
        loss = torch.nn.functional.cross_entropy(model(prompt)[:, -1], target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if loss.item() < 0.1:
            break
    model.zero_grad(set_to_none=True)
    scores = edit_metrics(model, tok, fact)
    ft_scores.append({**scores, "loss": heldout_loss(model, toy.spec)})
    with torch.no_grad():
        W.copy_(original)
    rows.append({"method": "fine-tuning", "edit": f"{fact[0]}: {fact[1]} -> {fact[2]}",
                 "efficacy": f"{scores['efficacy']:.2f}",
                 "paraphrase": f"{scores['paraphrase']:.2f}",
                 "neighbourhood": f"{scores['neighbourhood']:.2f}",
                 "loss change": f"{ft_scores[-1]['loss'] / base_loss - 1:+.1%}"})
show_markdown(markdown_table(rows, list(rows[0])))


def mean(scores, key):
    return sum(s[key] for s in scores) / len(scores)


summary = {m: {k: mean(sc, k) for k in ("efficacy", "paraphrase", "neighbourhood", "loss")}
           for m, sc in (("ROME", rome_scores), ("fine-tuning", ft_scores))}
for m, s in summary.items():
    print(f"{m:12s} efficacy {s['efficacy']:.2f}, paraphrase {s['paraphrase']:.2f}, "
          f"neighbourhood {s['neighbourhood']:.2f}, loss {s['loss'] / base_loss - 1:+.1%}")

# %% [markdown]
# Both make the edited prompt say the new colour. The difference is in what else moves:
# fine-tuning changes the matrix in whatever direction lowers the loss on one prompt, and other
# subjects' keys, which overlap with the edited one, are carried along; ROME's update is aimed
# at the edited key and weighted against the others, so the neighbours keep their colours.
# Paraphrases follow in both cases because the edit sits at the subject token, before the
# template's words are read.

# %% [markdown]
# ## Checks and record

# %%
with torch.no_grad():
    after = model(torch.tensor([tok.encode("the colour of zorv is")]))[:, -1].argmax()
assert tok.decode([int(after)]) == FACTS["zorv"]  # every edit was rolled back
assert summary["ROME"]["efficacy"] >= 0.95 and summary["ROME"]["neighbourhood"] >= 0.9
assert summary["ROME"]["loss"] <= 1.05 * base_loss
assert summary["ROME"]["neighbourhood"] >= summary["fine-tuning"]["neighbourhood"]
record = mi.write_result(
    "interventions-rank-one-edit", {"edits": [list(e) for e in edits], **summary},
    seeds=[toy.seed], data_source="toy world", title="Interventions: rank-one fact edit",
    config={"layer": 0, "n_edits": len(edits)}, started=started)
print(f"result record written to {record}")
