"""Interventions: steer, clamp, ablate, patch and edit a model, reversibly.

Every intervention shares one interface (:class:`Intervention`): ``apply(model)``,
``remove(model)`` (an exact rollback) and ``with intervention.applied(model):``. Families:

* :mod:`.steering`: activation addition and contrastive activation addition (Turner et al.,
  2023; Rimsky et al., 2024), optionally gated by a linear probe (Li et al., 2023; Lee et al.,
  2024).
* :mod:`.ablation`: neuron, direction and SAE-feature clamps; zero and mean ablation of heads
  and MLPs; directional ablation (Arditi et al., 2024).
* :mod:`.weights`: parameter patching from another checkpoint (toy-world models and GPT-2's
  fused projections alike), and the toy world's ROME-style rank-one fact edits.
* :mod:`.rome`: ROME as published (Meng et al., 2022), on any bridge: causal tracing picks
  the layer, the value has its KL term and norm clamp, ``C`` comes from a text sample.
* :mod:`.ready` and :mod:`.spec`: ready-made interventions fitted to a toy-world model on
  their own tuning data (:mod:`.tuning`), and ``"kind:key=value,..."`` specs.

Example:
    >>> toy = load_toy_model("toyworld-2l")                      # doctest: +SKIP
    >>> with get_intervention("toxicity-steer", toy).applied(toy.model):  # doctest: +SKIP
    ...     logits = toy.model(tokens)
"""

from mechinterp.interventions.ablation import (
    ABLATION_MODES,
    DirectionalAblation,
    DirectionClamp,
    HeadAblation,
    MLPAblation,
    NeuronClamp,
    SAEFeatureClamp,
    mean_activation,
    readout_direction,
)
from mechinterp.interventions.base import (
    KINDS,
    HookIntervention,
    Intervention,
    WeightIntervention,
    active_interventions,
    hook_shape,
    resolve_hook,
)
from mechinterp.interventions.ready import READY_MADE, residual_hooks
from mechinterp.interventions.rome import RomeSettings, causal_trace, memit, rome
from mechinterp.interventions.spec import SPEC_KINDS, get_intervention, list_interventions
from mechinterp.interventions.steering import (
    ProbeGate,
    SteeringIntervention,
    contrastive_vector,
    last_token_activations,
    probe_gate,
    steering_vector,
    strength_sweep,
)
from mechinterp.interventions.tuning import CONTRASTS, TUNING_SEED, contrast_prompts, in_context
from mechinterp.interventions.weights import (
    ParameterPatch,
    RankOneEdit,
    component_parameters,
    rome_edit,
)

__all__ = [
    "ABLATION_MODES",
    "CONTRASTS",
    "KINDS",
    "READY_MADE",
    "SPEC_KINDS",
    "TUNING_SEED",
    "DirectionClamp",
    "DirectionalAblation",
    "HeadAblation",
    "HookIntervention",
    "Intervention",
    "MLPAblation",
    "NeuronClamp",
    "ParameterPatch",
    "ProbeGate",
    "RankOneEdit",
    "SAEFeatureClamp",
    "SteeringIntervention",
    "WeightIntervention",
    "active_interventions",
    "component_parameters",
    "contrast_prompts",
    "contrastive_vector",
    "get_intervention",
    "hook_shape",
    "in_context",
    "last_token_activations",
    "list_interventions",
    "mean_activation",
    "probe_gate",
    "readout_direction",
    "residual_hooks",
    "resolve_hook",
    "memit",
    "rome",
    "rome_edit",
    "RomeSettings",
    "causal_trace",
    "steering_vector",
    "strength_sweep",
]
