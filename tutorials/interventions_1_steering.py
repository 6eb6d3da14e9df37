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
# # Interventions 1: steering
#
# Steering adds a fixed vector to the residual stream while the model runs. **Activation
# addition** (Turner et al., 2023) takes the vector from a single pair of prompts, "love" minus
# "hate" say; **contrastive activation addition** (CAA; Rimsky et al., 2024) averages the
# difference over many examples of two behaviours. Both are cheap, need no gradient, and leave
# the weights alone; the price is paid in capability when the vector also moves contexts it
# should not. **Inference-time intervention** (Li et al., 2023) limits that by acting only
# where a probe says the behaviour is present.
#
# Here the behaviour is the toy world's planted toxicity: after "the angry man shouted at", the
# training text continues with a toxic word 90% of the time. We steer `toyworld-2l` away from
# it and measure two things at every strength: the **toxicity rate** (share of toxic words in
# 300 sampled continuations of held-out trigger contexts such as "the angry pilot was late and
# shouted at", which no training sentence uses: the benchmark suite's definition) and the
# **held-out loss** on text written from held-out cells (the benchmark page says what is held
# out and how).

# %%
import time

import matplotlib.pyplot as plt
import torch

import mechinterp as mi
from mechinterp.benchmarks import toxicity_rate
from mechinterp.interventions import (
    SteeringIntervention,
    contrast_prompts,
    contrastive_vector,
    get_intervention,
    steering_vector,
)
from mechinterp.reporting import show_markdown
from mechinterp.toyworld import heldout_loss, load_toy_model

started = time.perf_counter()
toy = load_toy_model("toyworld-2l")
model, tok = toy.model, toy.tokenizer
hook = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
base_tox = toxicity_rate(model, tok, n=300)["trigger"]
base_loss = heldout_loss(model, toy.spec)
print(f"before: toxicity {base_tox:.3f}, held-out loss {base_loss:.3f}")

# %% [markdown]
# ## Three vectors
#
# * **ActAdd**: "the angry man shouted at" minus "the happy man shouted at", one pair, at the
#   last position;
# * **CAA**: the mean over 60 trigger contexts minus the mean over 60 calm ones, taken from the
#   tuning cells and each preceded by tuning sentences (never a prompt the suite evaluates);
# * **random**: a random direction with CAA's norm (the trivial baseline).
#
# All are read at the residual stream after the last block, `blocks.1.hook_resid_post`.

# %%
trigger, calm = contrast_prompts("toxicity", tok)
caa = contrastive_vector(model, trigger, calm, hook)
pair = [torch.tensor([tok.encode(f"the {w} man shouted at")]) for w in ("angry", "happy")]
actadd = steering_vector(model, pair[0], pair[1], hook)
generator = torch.Generator().manual_seed(0)
random = torch.randn(caa.shape, generator=generator)
random = random / random.norm() * caa.norm()
vectors = {"CAA": caa, "ActAdd": actadd, "random": random}
cosine = torch.nn.functional.cosine_similarity(caa, actadd, dim=0)
print(f"norms: CAA {caa.norm():.2f}, ActAdd {actadd.norm():.2f}; cosine(CAA, ActAdd) "
      f"{cosine:.2f}")

# %% [markdown]
# ## Strength sweeps
#
# Each vector is subtracted at every position with strengths 0 to 3 (strength 1 subtracts the
# full trigger-minus-calm difference).

# %%
strengths = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
sweeps = {}
for name, vector in vectors.items():
    sweeps[name] = []
    for s in strengths:
        with SteeringIntervention(hook, vector, -s).applied(model):
            sweeps[name].append((s, toxicity_rate(model, tok, n=300)["trigger"],
                                 heldout_loss(model, toy.spec)))
gated = get_intervention("toxicity-steer", toy)
with gated.applied(model):
    gated_point = (toxicity_rate(model, tok, n=300)["trigger"], heldout_loss(model, toy.spec))
print(f"gated CAA (ready-made 'toxicity-steer', strength {abs(gated.strength):g}): toxicity "
      f"{gated_point[0]:.3f}, loss {gated_point[1]:.3f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for name, points in sweeps.items():
    axes[0].plot([p[0] for p in points], [p[1] for p in points], "o-", label=name)
    axes[1].plot([p[1] for p in points], [p[2] / base_loss - 1 for p in points], "o-",
                 label=f"{name} (all positions)")
axes[1].plot([gated_point[0]], [gated_point[1] / base_loss - 1], "k*", ms=14,
             label="CAA gated by a trigger probe")
axes[0].set_xlabel("strength")
axes[0].set_ylabel("toxicity rate")
axes[0].set_title("Toxic continuations after trigger prompts")
axes[1].set_xlabel("toxicity rate")
axes[1].set_ylabel("held-out loss change")
axes[1].set_title("What it costs")
axes[1].axhline(0.05, color="grey", lw=0.7, ls="--")
for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Subtracting CAA's vector everywhere removes toxicity, but it also pushes every other context
# along the same direction, and loss climbs with the strength. The gated version adds the vector
# only at positions where a linear probe for trigger contexts fires, so the rest of the text is
# untouched; its strength is chosen on tuning data by a rule that also holds the loss (see the
# benchmark page). A single prompt pair (ActAdd) points almost the same way here (the toy
# world's contexts are simple). The random direction has the same norm: pushed much harder it
# breaks the model, and toxicity falls only along with everything else.

# %%
first = next(i for i, p in enumerate(sweeps["CAA"]) if p[1] <= 0.1 * base_tox)  # a 90% drop
rule = gated.meta
show_markdown(
    f"At the first strength where CAA everywhere removes 90% of the toxicity, the random "
    f"direction leaves {sweeps['random'][first][1] / base_tox:.0%} of it (CAA "
    f"{sweeps['CAA'][first][1] / base_tox:.0%}), with the loss at "
    f"{sweeps['CAA'][first][2] / base_loss - 1:+.0%} for CAA. The gated version, at strength "
    f"{abs(gated.strength):g}, cuts the toxicity by {1 - gated_point[0] / base_tox:.0%} with the "
    f"loss at {gated_point[1] / base_loss - 1:+.1%}"
    + ("." if rule["met"] else
       ": on this model no pair of probe threshold and strength reaches the 95% target "
       "within the 5% loss budget on the tuning data, so the rule keeps the loss and the "
       "toxicity goal is missed."))

# %% [markdown]
# ## Checks and record

# %%
assert sweeps["CAA"][0][1] == base_tox  # strength 0 changes nothing
assert sweeps["random"][first][1] > 0.5 * base_tox  # the same push along a random direction
assert gated_point[1] <= 1.05 * base_loss  # the loss budget holds on every model
assert gated_point[0] <= 0.1 * base_tox or not rule["met"]  # the goal, where the rule met it
assert cosine > 0.5
record = mi.write_result(
    "interventions-steering",
    {"base_toxicity": base_tox, "base_loss": base_loss,
     "sweeps": {k: [list(p) for p in v] for k, v in sweeps.items()},
     "gated": {"toxicity": gated_point[0], "loss": gated_point[1],
               "strength": abs(gated.strength)}, "cosine_caa_actadd": float(cosine)},
    seeds=[toy.seed], data_source="toy world", title="Interventions: steering",
    config={"hook": hook, "strengths": strengths}, started=started)
print(f"result record written to {record}")
