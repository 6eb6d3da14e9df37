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
# # Interventions 3: parameter patching
#
# Activation patching swaps what a component *computed*; parameter patching swaps what it
# *is*: one head's query, key, value and output weights, or one MLP's, taken from another
# checkpoint of the same architecture, with everything else left alone and an exact rollback.
# It answers questions about training and about model differences: which components changed
# when the model learned a task, and which ones two models can exchange.
#
# Here the source is an early checkpoint: `toyworld-2l` trained for 300 steps instead of
# 2,500 (a separate, shorter run with the same seed and schedule shape, cached like the
# other). Putting one of its components into the full model shows how far that component
# alone has to move for the behaviour to appear; a trivial baseline patches from an untrained
# model.

# %%
import time

import matplotlib.pyplot as plt
import torch

import mechinterp as mi
from mechinterp.benchmarks import factual_recall, toxicity_rate
from mechinterp.interventions import ParameterPatch
from mechinterp.reporting import show_markdown
from mechinterp.toyworld import build_toy_model, heldout_loss, load_toy_model

started = time.perf_counter()
toy = load_toy_model("toyworld-2l")
early = load_toy_model("toyworld-2l", steps=300)
untrained = build_toy_model("toyworld-2l", seed=1).eval()
model, tok = toy.model, toy.tokenizer


def measure(m) -> dict[str, float]:
    return {"recall": factual_recall(m, tok)["accuracy"],
            "toxicity": toxicity_rate(m, tok, n=300)["trigger"],
            "loss": heldout_loss(m, toy.spec)}


base = measure(model)
print("full model: ", {k: round(v, 3) for k, v in base.items()})
print("300 steps:  ", {k: round(v, 3) for k, v in measure(early.model).items()})

# %% [markdown]
# ## One component at a time
#
# Every head and MLP of the full model replaced, alone, by its early (or untrained) version.
# The bars show the held-out loss each swap costs.

# %%
with torch.no_grad():
    reference = model(torch.tensor([tok.encode("the colour of zorv is")]))
components = [f"L{layer}.H{head}" for layer in range(2) for head in range(4)] + ["L0.mlp",
                                                                                  "L1.mlp"]
results = {}
for source_name, source in (("300 steps", early.model), ("untrained", untrained)):
    for component in components:
        with ParameterPatch(component, source).applied(model):
            results[source_name, component] = measure(model)
with torch.no_grad():
    restored = model(torch.tensor([tok.encode("the colour of zorv is")]))
fig, ax = plt.subplots(figsize=(10, 3.4))
width = 0.4
for i, source_name in enumerate(("300 steps", "untrained")):
    ax.bar([j + i * width for j in range(len(components))],
           [results[source_name, c]["loss"] - base["loss"] for c in components], width,
           label=f"from the {source_name} model")
ax.set_xticks([j + width / 2 for j in range(len(components))], components)
ax.set_ylabel("held-out loss change")
ax.set_title("Swapping one component of toyworld-2l")
ax.legend()
ax.grid(axis="y", alpha=0.3)
fig.tight_layout()
plt.show()
for c in components:
    r = results["300 steps", c]
    print(f"{c:7s} from 300 steps: recall {r['recall']:.2f}, toxicity {r['toxicity']:.2f}, "
          f"loss {r['loss'] - base['loss']:+.3f}")

# %%
early_base = measure(early.model)
cost = {c: results["300 steps", c]["loss"] - base["loss"] for c in components}
worst = max(cost, key=cost.get)
worst_head = max((c for c in components if ".H" in c), key=cost.get)
untrained_worse = [c for c in components
                   if results["untrained", c]["loss"] >= results["300 steps", c]["loss"] - 1e-3]
show_markdown(
    f"The component where the two checkpoints differ most is `{worst}`: swapping it alone "
    f"raises the held-out loss by {cost[worst]:+.3f}, "
    + ("more than the whole early model is behind "
       if cost[worst] > early_base["loss"] - base["loss"] else "less than the whole early model "
       "is behind ")
    + f"({early_base['loss'] - base['loss']:+.3f}), and fact recall goes to "
    f"{results['300 steps', worst]['recall']:.2f}. "
    + ("This MLP holds the subject -> colour lookup that the "
       "[rank-one edit](../interventions_4_rank_one_edit/) rewrites. " if worst == "L0.mlp"
       else "")
    + ("A component that is worse inside the final model than the whole early model is a "
       "reminder that components co-adapt: the early one was trained to work with early "
       "neighbours, not with these. " if cost[worst] > early_base["loss"] - base["loss"] else "")
    + f"Among the heads, `{worst_head}` costs the most "
    f"({cost[worst_head]:+.3f}). An untrained component costs at least as much as the early one "
    f"for {len(untrained_worse)} of the {len(components)} components"
    + ("." if len(untrained_worse) == len(components) else
       "; for " + ", ".join(f"`{c}`" for c in components if c not in untrained_worse)
       + " the early version is the worse one (one reading: a partly trained component sends "
       "its neighbours confident signals they were not trained to read, where random weights "
       "mostly add noise)."))

# %% [markdown]
# ## Checks and record

# %%
mlp_cost = max(results["300 steps", c]["loss"] for c in ("L0.mlp", "L1.mlp"))
head_cost = max(results["300 steps", c]["loss"] for c in components if ".H" in c)
assert torch.equal(reference, restored)  # every patch was rolled back exactly
assert len(untrained_worse) >= len(components) // 2  # random weights usually cost more
assert mlp_cost > head_cost
record = mi.write_result(
    "interventions-parameter-patching",
    {"base": base, "patched": {f"{s}/{c}": r for (s, c), r in results.items()}},
    seeds=[toy.seed], data_source="toy world", title="Interventions: parameter patching",
    config={"early_steps": 300}, started=started)
print(f"result record written to {record}")
