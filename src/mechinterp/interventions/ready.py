"""Ready-made interventions for toy-world models, each fitted on the tuning stream.

Each builder takes a :class:`~mechinterp.toyworld.ToyModel` and returns an
:class:`~mechinterp.interventions.base.Intervention` fitted on that model with the data of
:mod:`mechinterp.interventions.tuning` (never the benchmark's evaluation prompts or seed).
Builders refuse a model that already has interventions applied.

The goals they are measured against (see ``tests/test_interventions.py`` for the measured
numbers): the toxic share after trigger prompts down by at least 90%, the pronoun bias gap
(the mean over professions of ``|P(he) - P(she)| / (P(he) + P(she))`` on the held-out bias
prompts) down by at least 80%, the held-out loss up by at most 5%, and a fact edit that
takes on its prompt, carries to paraphrases and leaves other subjects alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mechinterp.interventions.ablation import (
    DirectionalAblation,
    HeadAblation,
    MLPAblation,
    NeuronClamp,
    SAEFeatureClamp,
    mean_activation,
    readout_direction,
)
from mechinterp.interventions.base import Intervention, require_unmodified
from mechinterp.interventions.steering import (
    SteeringIntervention,
    _pad,
    contrastive_vector,
    last_token_activations,
    probe_gate,
)
from mechinterp.interventions.tuning import (
    TUNING_SEED,
    contrast_prompts,
    in_context,
    reference_tokens,
    spread,
)
from mechinterp.interventions.weights import ParameterPatch, rome_edit
from mechinterp.sae import SAEConfig, cached_sae
from mechinterp.toyworld.models import build_toy_model
from mechinterp.toyworld.tasks import FACTS, fact_prompts, toxicity_contexts

__all__ = ["READY_MADE", "residual_hooks", "STEER_STRENGTHS", "GATE_THRESHOLDS", "STEER_TARGET",
           "LOSS_BUDGET", "EDITED_FACT"]

STEER_STRENGTHS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)
"""Strengths ``toxicity-steer`` tries, smallest first."""
GATE_THRESHOLDS = (0.5, 0.8)
"""Where ``toxicity-steer``'s probe may fire: the fraction of the way from the calm contexts'
mean projection to the trigger contexts' (0.5: the discriminant's midpoint; 0.8: only clear
trigger contexts)."""
STEER_TARGET = 0.95
"""The share of the toxic mass on tuning contexts ``toxicity-steer`` aims to remove."""
LOSS_BUDGET = 0.05
"""The largest rise of the tuning-stream loss a self-tuned intervention may cost."""
EDITED_FACT = ("zorv", "red", "blue")
"""The fact ``fact-edit`` rewrites."""


def residual_hooks(model) -> list[str]:
    """The residual stream after every attention layer and every block
    (``hook_resid_mid`` and ``hook_resid_post`` of each layer): every point where the last
    token's activation already carries its context."""
    return [f"blocks.{layer}.{h}" for layer in range(model.cfg.n_layers)
            for h in ("hook_resid_mid", "hook_resid_post")]


def _toxic_mass(model, tok, prompts) -> float:
    tokens, last = _pad(prompts)
    device = next(model.parameters()).device
    with torch.no_grad():
        probs = model(tokens.to(device))[torch.arange(len(tokens)), last.to(device)].softmax(-1)
    return float(probs[:, tok.class_ids("toxic").to(device)].sum(-1).mean())


def _tuning_loss(model, tokens: torch.Tensor) -> float:
    """Mean next-token loss on tuning-stream sequences (never the benchmark's held-out text)."""
    with torch.no_grad():
        return float(model(tokens.to(next(model.parameters()).device), return_type="loss"))


def toxicity_steer(toy) -> SteeringIntervention:
    """Conditional contrastive steering at the last residual stream: subtract the toxicity
    contrast vector where a linear probe for trigger contexts fires.

    The probe's threshold and the strength are chosen on tuning data by a rule that counts the
    side effect: for each threshold of :data:`GATE_THRESHOLDS` the strengths of
    :data:`STEER_STRENGTHS` are tried from the smallest until one cuts the toxic share on
    tuning contexts (bare and after tuning sentences) by :data:`STEER_TARGET` with the loss on
    tuning-stream text raised by at most :data:`LOSS_BUDGET`, or until the loss leaves the
    budget. Of the pairs meeting both, the one with the smallest loss rise is kept; when none
    does, the pair within the loss budget that cuts the most (or the smallest loss rise, if
    none is within it), and the intervention's ``meta`` says the target was missed and by how
    much.
    """
    model, tok = toy.model, toy.tokenizer
    require_unmodified(model, "toxicity-steer")
    hook = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    trigger, calm = contrast_prompts("toxicity", tok)
    vector = contrastive_vector(model, trigger, calm, hook)
    reference = reference_tokens(tok, toy.spec.mixture, n_ctx=toy.spec.n_ctx)
    check = in_context(tok, spread([c for _, c in toxicity_contexts("trigger", "tune")], 40),
                       seed=TUNING_SEED + 3, min_prefix=0)
    text = reference_tokens(tok, toy.spec.mixture, n_ctx=toy.spec.n_ctx, seed=TUNING_SEED + 4)
    before, base_loss = _toxic_mass(model, tok, check), _tuning_loss(model, text)
    gates = {at: probe_gate(model, trigger, calm, hook, reference, at=at)
             for at in GATE_THRESHOLDS}
    tried = []  # (threshold, strength, tuning cut, tuning loss rise)
    for at, gate in gates.items():
        for strength in STEER_STRENGTHS:
            with SteeringIntervention(hook, vector, -strength, gate=gate).applied(model):
                tried.append((at, strength, 1 - _toxic_mass(model, tok, check) / before,
                              _tuning_loss(model, text) / base_loss - 1))
            if tried[-1][3] > LOSS_BUDGET or tried[-1][2] >= STEER_TARGET:
                break
    meeting = [t for t in tried if t[2] >= STEER_TARGET and t[3] <= LOSS_BUDGET]
    within = [t for t in tried if t[3] <= LOSS_BUDGET]
    at, strength, cut, rise = (min(meeting, key=lambda t: t[3]) if meeting
                               else max(within, key=lambda t: t[2]) if within
                               else min(tried, key=lambda t: t[3]))
    steer = SteeringIntervention(hook, vector, -strength, gate=gates[at])
    steer.name = "toxicity-steer"
    steer.description = (f"subtract {strength:g} x the toxicity contrast vector at {hook} "
                         f"where a trigger-context probe fires (threshold {at:g} of the way "
                         f"from the calm mean to the trigger mean)")
    steer.meta = {"strength": strength, "gate_threshold": at, "tuning_toxicity_cut": cut,
                  "tuning_loss_rise": rise, "target": STEER_TARGET, "loss_budget": LOSS_BUDGET,
                  "met": bool(meeting), "tried": tried}
    return steer


def _contrast_ablation(toy, contrast: str, name: str) -> DirectionalAblation:
    model = toy.model
    require_unmodified(model, name)
    a, b = contrast_prompts(contrast, toy.tokenizer)
    return DirectionalAblation({h: contrastive_vector(model, a, b, h)
                                for h in residual_hooks(model)}, name=name,
                               description=f"project the {contrast} contrast direction out of "
                                           f"the residual stream after every layer")


def toxicity_ablate(toy) -> DirectionalAblation:
    """Directional ablation of the toxicity contrast direction at every residual hook."""
    return _contrast_ablation(toy, "toxicity", "toxicity-ablate")


def bias_ablate(toy) -> DirectionalAblation:
    """Project the model's he-versus-she readout direction out of the last residual stream, so
    ``P(he) / P(she)`` is the same after every profession."""
    model, tok = toy.model, toy.tokenizer
    require_unmodified(model, "bias-ablate")
    he, she = (int(i) for i in tok.ids(["he", "she"]))
    hook = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    return DirectionalAblation({hook: readout_direction(model, he, she)}, name="bias-ablate",
                               description=f"project the he-vs-she readout direction out of "
                                           f"{hook}")


def neuron_clamp(toy, k: int = 20) -> NeuronClamp:
    """Clamp the ``k`` last-layer MLP neurons that most raise toxic over polite words in
    trigger contexts (activation difference times direct effect) to their calm-context means."""
    model, tok = toy.model, toy.tokenizer
    require_unmodified(model, "neuron-clamp")
    layer = model.cfg.n_layers - 1
    hook = f"blocks.{layer}.mlp.hook_post"
    trigger, calm = contrast_prompts("toxicity", tok)
    a = last_token_activations(model, trigger, hook)
    b = last_token_activations(model, calm, hook)
    readout = readout_direction(model, tok.class_ids("toxic"), tok.class_ids("polite"))
    effect = (a.mean(0) - b.mean(0)) * (model.W_out[layer].detach().float() @ readout)
    top = effect.argsort(descending=True)[:k]
    return NeuronClamp(layer, top.tolist(), b.mean(0)[top].tolist(), name="neuron-clamp",
                       description=f"clamp the {k} most toxicity-promoting neurons of layer "
                                   f"{layer}'s MLP to their calm-context means")


def toxicity_sae_clamp(toy) -> SAEFeatureClamp:
    """Switch off (clamp to 0) the SAE feature of layer 0's output that best separates trigger
    from calm contexts; the SAE (TopK, 128 latents) is trained on tuning-stream activations."""
    model, tok = toy.model, toy.tokenizer
    require_unmodified(model, "toxicity-sae-clamp")
    hook = "blocks.0.hook_resid_post"
    reference = reference_tokens(tok, toy.spec.mixture, n_ctx=toy.spec.n_ctx)
    with torch.no_grad():
        _, cache = model.run_with_cache(reference.to(next(model.parameters()).device),
                                        names_filter=[hook])
    sae = cached_sae(cache[hook][:, 1:].flatten(0, 1), SAEConfig(n_latents=128, k=8), seed=0)
    trigger, calm = contrast_prompts("toxicity", tok)
    with torch.no_grad():
        gap = (sae.encode(last_token_activations(model, trigger, hook)).mean(0)
               - sae.encode(last_token_activations(model, calm, hook)).mean(0))
    feature = int(gap.argmax())
    return SAEFeatureClamp(hook, sae, [feature], 0.0, name="toxicity-sae-clamp",
                           description=f"switch off SAE feature {feature} (trigger contexts) "
                                       f"at {hook}")


def _fact_head(toy) -> tuple[int, int]:
    """The head whose zero ablation most lowers the right colour's probability on fact prompts
    in tuning contexts."""
    model, tok = toy.model, toy.tokenizer
    subjects, texts = zip(*fact_prompts("tune"), strict=True)
    prompts = in_context(tok, list(texts) * 2, seed=TUNING_SEED + 4, n_ctx=toy.spec.n_ctx)
    tokens, last = _pad(prompts)
    answers = tok.ids([FACTS[s] for s in subjects] * 2)
    rows = torch.arange(len(tokens))
    device = next(model.parameters()).device

    def recall() -> float:
        with torch.no_grad():
            probs = model(tokens.to(device))[rows, last.to(device)].softmax(-1).cpu()
        return float(probs[rows, answers].mean())
    scores = {}
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            with HeadAblation(layer, head).applied(model):
                scores[(layer, head)] = recall()
    return min(scores, key=scores.get)


def head_zero(toy) -> HeadAblation:
    """Zero-ablate the head that matters most for fact recall (chosen on tuning contexts)."""
    require_unmodified(toy.model, "head-zero")
    layer, head = _fact_head(toy)
    return HeadAblation(layer, head, "zero", name="head-zero",
                        description=f"zero-ablate head L{layer}.H{head}, the one fact recall "
                                    f"leans on most")


def mlp_mean(toy) -> MLPAblation:
    """Mean-ablate the last layer's MLP (mean output over tuning-stream text)."""
    model = toy.model
    require_unmodified(model, "mlp-mean")
    layer = model.cfg.n_layers - 1
    hook = f"blocks.{layer}.hook_mlp_out"
    mean = mean_activation(model, reference_tokens(toy.tokenizer, toy.spec.mixture,
                                                   n_ctx=toy.spec.n_ctx), hook)
    return MLPAblation(layer, "mean", mean=mean, name="mlp-mean",
                       description=f"mean-ablate the MLP of layer {layer}")


def head_patch(toy) -> ParameterPatch:
    """Replace the fact-recall head's weights with an untrained model's (seed + 1)."""
    require_unmodified(toy.model, "head-patch")
    layer, head = _fact_head(toy)
    device = next(toy.model.parameters()).device
    source = build_toy_model(toy.spec.name, seed=toy.seed + 1, device=device).eval()
    return ParameterPatch(f"L{layer}.H{head}", source, name="head-patch",
                          description=f"replace head L{layer}.H{head}'s weights with those of "
                                      f"an untrained model (seed {toy.seed + 1})")


def fact_edit(toy) -> Intervention:
    """ROME rank-one edit of layer 0's MLP: zorv is blue (it was red)."""
    subject, _, new = EDITED_FACT
    return rome_edit(toy, subject, new, name="fact-edit")


READY_MADE: dict[str, tuple[str, Callable]] = {
    "toxicity-steer": ("steering: subtract the toxicity vector where a trigger probe fires",
                       toxicity_steer),
    "toxicity-ablate": ("ablation: project the toxicity direction out of the residual stream",
                        toxicity_ablate),
    "toxicity-sae-clamp": ("clamp: switch off the SAE feature of trigger contexts",
                           toxicity_sae_clamp),
    "neuron-clamp": ("clamp: pin toxicity-promoting MLP neurons to calm-context values",
                     neuron_clamp),
    "bias-ablate": ("ablation: project the he-vs-she direction out of the last residual stream",
                    bias_ablate),
    "head-zero": ("ablation: zero the attention head fact recall leans on most", head_zero),
    "mlp-mean": ("ablation: mean-ablate the last layer's MLP", mlp_mean),
    "head-patch": ("param-patch: give the fact-recall head an untrained model's weights",
                   head_patch),
    "fact-edit": ("weight-edit: ROME rank-one edit making zorv blue (it was red)", fact_edit),
}
"""Ready-made name -> (one-line description, builder taking a ToyModel)."""
