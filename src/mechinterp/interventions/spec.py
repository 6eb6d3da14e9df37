"""Name an intervention in one string: a ready-made name, or ``"kind:key=value,..."``.

Examples::

    get_intervention("toxicity-steer", toy)
    get_intervention("steer:hook=blocks.1.hook_resid_pre,vector=toxicity,strength=-2", toy)
    get_intervention("ablate-direction:hook=resid,vector=bias", toy)
    get_intervention("clamp-neurons:layer=1,neurons=3+17,value=0", toy)
    get_intervention("ablate-head:layer=0,head=1,mode=mean", toy)
    get_intervention("patch-head:layer=0,head=1,source=untrained,seed=1", toy)
    get_intervention("rome:subject=zorv,colour=green", toy)
    get_intervention("rome:prompt=The capital of France is,subject=France,target=Rome", gpt2)

The subject is a toy-world model (:class:`~mechinterp.toyworld.ToyModel`) or a pretrained
one (:class:`TextModel`, from :func:`text_model`). Interventions fitted to the toy world's own
tuning data (contrast vectors, SAEs, the toy ROME) need a toy model; ablations, neuron
clamps, parameter patches (``source=`` another saved model's folder) and ROME in its prompt
form (``rome:prompt=...,subject=...,target=...``; the prompt cannot hold a comma) work on
both.

Vectors (``vector=``) are a contrast of :data:`~mechinterp.interventions.tuning.CONTRASTS`
(``toxicity``, ``bias``: the contrastive mean difference at the hook), ``readout:A-B`` (the
last residual stream's direction of ``logit(A) - logit(B)``) or numbers separated by ``;``.
Several hooks are joined with ``+``; ``hook=resid`` means every ``hook_resid_mid`` and
``hook_resid_post``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mechinterp.errors import ConfigError
from mechinterp.interventions.ablation import (
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
    HookIntervention,
    Intervention,
    WeightIntervention,
    check_vector,
    resolve_hook,
)
from mechinterp.interventions.ready import READY_MADE, residual_hooks
from mechinterp.interventions.rome import RomeSettings, rome
from mechinterp.interventions.steering import (
    SteeringIntervention,
    contrastive_vector,
    probe_gate,
)
from mechinterp.interventions.tuning import CONTRASTS, contrast_prompts, reference_tokens
from mechinterp.interventions.weights import ParameterPatch, rome_edit
from mechinterp.sae import SAEConfig, cached_sae
from mechinterp.toyworld.models import build_toy_model, load_toy_model

__all__ = ["list_interventions", "get_intervention", "SPEC_KINDS", "parse_spec", "TextModel",
           "text_model", "PRETRAINED_KINDS"]


@dataclass
class TextModel:
    """A pretrained language model as the spec API's subject.

    Attributes:
        model: the ``TransformerBridge``.
        tokenizer: its Hugging Face tokenizer.
        name: what it was loaded from (a hub name or a folder).
        sample: ``(n, pos)`` token ids of ordinary English text (the benchmark's corpus), for
            mean ablations and ROME's key statistics.
    """

    model: Any
    tokenizer: Any
    name: str
    sample: torch.Tensor


def text_model(name: str) -> TextModel:
    """Load a pretrained model (``gpt2``, ``gpt2-small`` or a saved folder) as a
    :class:`TextModel`.

    Raises:
        DataUnavailableError: the model is neither on disk nor downloadable here.
    """
    from mechinterp.benchmarks.pretrained import pretrained_benchmark_corpus
    from mechinterp.pretrained import load_pretrained, pretrained_tokenizer

    model = load_pretrained(name)
    tokenizer = pretrained_tokenizer(model)
    ids = [i for text in pretrained_benchmark_corpus()
           for i in tokenizer.encode(" " + text, add_special_tokens=False)]
    width = 16
    sample = torch.tensor(ids[: len(ids) // width * width]).view(-1, width)
    return TextModel(model, tokenizer, name, sample)


PRETRAINED_KINDS = ("clamp-neurons", "ablate-head", "ablate-mlp", "patch-head", "patch-mlp",
                    "rome")
"""Spec kinds that also work on a :class:`TextModel`."""


def _sample(subject) -> torch.Tensor:
    if isinstance(subject, TextModel):
        return subject.sample
    return reference_tokens(subject.tokenizer, subject.spec.mixture, n_ctx=subject.spec.n_ctx)


class _Params:
    """A spec's ``key=value`` pairs, with typed getters whose errors name the key."""

    def __init__(self, kind: str, values: dict[str, str]) -> None:
        self.kind, self.values = kind, values

    def text(self, key: str) -> str:
        return self.values[key]

    def number(self, key: str) -> float:
        try:
            value = float(self.values[key])
        except ValueError:
            raise ConfigError(f"{self.kind}: {key} must be a number, got "
                              f"{self.values[key]!r}") from None
        if value != value or abs(value) == float("inf"):
            raise ConfigError(f"{self.kind}: {key} must be a finite number, got {value}")
        return value

    def integer(self, key: str) -> int:
        try:
            return int(self.values[key])
        except ValueError:
            raise ConfigError(f"{self.kind}: {key} must be an integer, got "
                              f"{self.values[key]!r}") from None

    def integers(self, key: str) -> list[int]:
        try:
            return [int(v) for v in self.values[key].split("+")]
        except ValueError:
            raise ConfigError(f"{self.kind}: {key} must be integers joined by '+', e.g. "
                              f"3+17, got {self.values[key]!r}") from None

    def positions(self) -> str | int:
        value = self.values["positions"]
        if value in ("all", "last"):
            return value
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{self.kind}: positions must be all, last or an integer, got "
                              f"{value!r}") from None


def _hooks(toy, value: str) -> list[str]:
    hooks = residual_hooks(toy.model) if value == "resid" else value.split("+")
    for hook in hooks:
        resolve_hook(toy.model, hook)
    return hooks


def _one_hook(toy, p: _Params) -> str:
    hooks = _hooks(toy, p.text("hook"))
    if len(hooks) != 1:
        raise ConfigError(f"{p.kind} takes one hook, got {hooks}")
    return hooks[0]


def _vector(toy, hook: str, value: str) -> torch.Tensor:
    model, tok = toy.model, toy.tokenizer
    if value in CONTRASTS:
        a, b = contrast_prompts(value, tok)
        vector = contrastive_vector(model, a, b, hook)
    elif value.startswith("readout:"):
        words = value.removeprefix("readout:").split("-")
        if len(words) != 2:
            raise ConfigError(f"a readout vector is 'readout:A-B' with two words, got {value!r}")
        vector = readout_direction(model, *(int(tok.ids([w])[0]) for w in words))
    else:
        try:
            vector = torch.tensor([float(v) for v in value.split(";")])
        except ValueError:
            raise ConfigError(f"unknown vector {value!r}; use a contrast "
                              f"({', '.join(sorted(CONTRASTS))}), 'readout:A-B' or numbers "
                              f"separated by ';'") from None
    return check_vector(model, hook, vector, f"vector {value!r}")


def _steer(toy, p: _Params) -> Intervention:
    hook = _one_hook(toy, p)
    vector = _vector(toy, hook, p.text("vector"))
    gate = None
    if "gate" in p.values:
        if p.text("gate") not in CONTRASTS:
            raise ConfigError(f"gate must name a contrast: {sorted(CONTRASTS)}")
        a, b = contrast_prompts(p.text("gate"), toy.tokenizer)
        gate = probe_gate(toy.model, a, b, hook, reference_tokens(
            toy.tokenizer, toy.spec.mixture, n_ctx=toy.spec.n_ctx), at=p.number("gate_at"))
    return SteeringIntervention(hook, vector, p.number("strength"), positions=p.positions(),
                                gate=gate)


def _ablate_direction(toy, p: _Params) -> Intervention:
    return DirectionalAblation({h: _vector(toy, h, p.text("vector"))
                                for h in _hooks(toy, p.text("hook"))})


def _clamp_direction(toy, p: _Params) -> Intervention:
    hook = _one_hook(toy, p)
    return DirectionClamp(hook, _vector(toy, hook, p.text("vector")), p.number("value"),
                          positions=p.positions())


def _clamp_neurons(toy, p: _Params) -> Intervention:
    return NeuronClamp(p.integer("layer"), p.integers("neurons"), p.number("value"),
                       positions=p.positions())


def _clamp_sae(toy, p: _Params) -> Intervention:
    hook = _one_hook(toy, p)
    tokens = reference_tokens(toy.tokenizer, toy.spec.mixture, n_ctx=toy.spec.n_ctx)
    with torch.no_grad():
        _, cache = toy.model.run_with_cache(tokens.to(next(toy.model.parameters()).device),
                                            names_filter=[hook])
    config = SAEConfig(n_latents=p.integer("latents"), k=p.integer("k"))
    sae = cached_sae(cache[hook][:, 1:].flatten(0, 1), config, seed=0)
    return SAEFeatureClamp(hook, sae, p.integers("feature"), p.number("value"),
                           positions=p.positions())


def _mean(toy, hook: str) -> torch.Tensor:
    return mean_activation(toy.model, _sample(toy), hook)


def _ablate_head(toy, p: _Params) -> Intervention:
    layer, mode = p.integer("layer"), p.text("mode")
    mean = _mean(toy, f"blocks.{layer}.attn.hook_z") if mode == "mean" and 0 <= layer < \
        toy.model.cfg.n_layers else None
    return HeadAblation(layer, p.integer("head"), mode, mean=mean)


def _ablate_mlp(toy, p: _Params) -> Intervention:
    layer, mode = p.integer("layer"), p.text("mode")
    mean = _mean(toy, f"blocks.{layer}.hook_mlp_out") if mode == "mean" and 0 <= layer < \
        toy.model.cfg.n_layers else None
    return MLPAblation(layer, mode, mean=mean)


def _source(toy, p: _Params) -> torch.nn.Module:
    source, seed = p.text("source"), p.integer("seed")
    if isinstance(toy, TextModel):
        from mechinterp.pretrained import load_pretrained

        if source in ("untrained", "trained"):
            raise ConfigError(f"{p.kind}: on a pretrained model, source is another saved "
                              f"model of the same architecture (a folder or hub name), got "
                              f"{source!r}")
        return load_pretrained(source)
    if source == "untrained":
        return build_toy_model(toy.spec.name, seed=seed,
                               device=next(toy.model.parameters()).device).eval()
    if source == "trained":
        return load_toy_model(toy.spec.name, seed=seed).model
    raise ConfigError(f"source must be 'untrained' or 'trained' (trains and caches the model "
                      f"of that seed), got {source!r}")


def _patch_head(toy, p: _Params) -> Intervention:
    return ParameterPatch(f"L{p.integer('layer')}.H{p.integer('head')}", _source(toy, p))


def _patch_mlp(toy, p: _Params) -> Intervention:
    return ParameterPatch(f"L{p.integer('layer')}.mlp", _source(toy, p))


def _rome(toy, p: _Params) -> Intervention:
    if "prompt" in p.values or "target" in p.values:
        missing = [k for k in ("prompt", "target") if k not in p.values]
        if missing or "colour" in p.values:
            raise ConfigError(f"rome: the prompt form takes prompt, subject and target (and "
                              f"optionally layer, steps, neighbours); missing "
                              f"{missing or 'nothing'}"
                              + (", and colour belongs to the toy form" if "colour" in
                                 p.values else ""))
        settings = RomeSettings(steps=p.integer("steps")) if "steps" in p.values else None
        layer = p.integer("layer") if "layer" in p.values else None
        edit = rome(toy.model, toy.tokenizer, p.text("prompt"), p.text("subject"),
                    p.text("target"), _sample(toy), layer=layer, settings=settings)
        if "neighbours" in p.values:
            edit.meta["neighbours"] = [n.strip() for n in p.text("neighbours").split("|")
                                       if n.strip()]
        return edit
    if "colour" not in p.values or isinstance(toy, TextModel):
        raise ConfigError("rome: give prompt=..., subject=... and target=... (any model), or "
                          "subject=... and colour=... (the toy world's facts)")
    return rome_edit(toy, p.text("subject"), p.text("colour"),
                     layer=p.integer("layer") if "layer" in p.values else 0,
                     steps=p.integer("steps") if "steps" in p.values else 150)


SPEC_KINDS: dict[str, tuple[tuple[str, ...], dict[str, str], Callable, str]] = {
    "steer": (("hook", "vector", "strength"),
              {"positions": "all", "gate": "", "gate_at": "0.8"}, _steer,
              "add strength x vector at a hook (optionally where a contrast's probe fires)"),
    "ablate-direction": (("hook", "vector"), {}, _ablate_direction,
                         "project a direction out at one or more hooks"),
    "clamp-direction": (("hook", "vector", "value"), {"positions": "all"}, _clamp_direction,
                        "set the component along a direction to a value"),
    "clamp-neurons": (("layer", "neurons", "value"), {"positions": "all"}, _clamp_neurons,
                      "set MLP neurons (mlp.hook_post) to a value"),
    "clamp-sae": (("hook", "feature", "value"), {"latents": "128", "k": "8",
                                                 "positions": "all"}, _clamp_sae,
                  "set SAE features (an SAE trained on the hook's tuning activations)"),
    "ablate-head": (("layer", "head"), {"mode": "zero"}, _ablate_head,
                    "zero or mean ablation of one head's hook_z"),
    "ablate-mlp": (("layer",), {"mode": "zero"}, _ablate_mlp,
                   "zero or mean ablation of one MLP's output"),
    "patch-head": (("layer", "head"), {"source": "untrained", "seed": "1"}, _patch_head,
                   "one head's weights from another model (untrained or trained, by seed)"),
    "patch-mlp": (("layer",), {"source": "untrained", "seed": "1"}, _patch_mlp,
                  "one MLP's weights from another model"),
    "rome": (("subject",), {"prompt": "", "target": "", "neighbours": "", "colour": "",
                            "layer": "", "steps": ""}, _rome,
             "ROME: prompt=...,subject=...,target=... on any model (layer by causal tracing; "
             "neighbours=P1|P2 to score), or subject=...,colour=... for a toy-world fact"),
}
"""Spec kind -> (required keys, optional keys with defaults, builder, description)."""


def list_interventions() -> dict[str, str]:
    """Ready-made intervention name -> one-line description."""
    return {name: description for name, (description, _) in READY_MADE.items()}


def _usage() -> str:
    kinds = "; ".join(f"{k}:{','.join(f'{key}=...' for key in req)}"
                      for k, (req, _, _, _) in SPEC_KINDS.items())
    return (f"ready-made interventions: {', '.join(READY_MADE)}; or a spec 'kind:key=value,"
            f"...' with kinds {kinds}")


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"kind:key=value,..."`` -> ``(kind, {key: value})``, checked against
    :data:`SPEC_KINDS` (required keys present, no unknown keys, defaults filled in).

    Raises:
        ConfigError: an unknown kind, a malformed pair, an unknown or repeated key, or a
            missing required key (the message lists the valid ones).
    """
    kind, _, body = spec.partition(":")
    kind = kind.strip()
    if kind not in SPEC_KINDS:
        raise ConfigError(f"unknown intervention kind {kind!r} in {spec!r}; {_usage()}")
    required, optional, _, _ = SPEC_KINDS[kind]
    allowed = [*required, *optional]
    values: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in body.split(","))):
        key, eq, value = (s.strip() for s in pair.partition("="))
        if not eq or not key or not value:
            raise ConfigError(f"{kind}: {pair!r} is not key=value; keys: {allowed}")
        if key not in allowed:
            raise ConfigError(f"{kind}: unknown key {key!r}; keys: {allowed}")
        if key in values:
            raise ConfigError(f"{kind}: key {key!r} is given twice")
        values[key] = value
    missing = [k for k in required if k not in values]
    if missing:
        raise ConfigError(f"{kind}: missing {', '.join(missing)}; {kind} needs "
                          f"{', '.join(required)} (optional: "
                          f"{', '.join(f'{k}={v}' for k, v in optional.items()) or 'none'})")
    return kind, {**{k: v for k, v in optional.items() if v}, **values}


def get_intervention(spec: str, toy) -> Intervention:
    """An intervention fitted to ``toy``: a ready-made name (:func:`list_interventions`) or a
    spec ``"kind:key=value,..."`` (:data:`SPEC_KINDS`).

    Args:
        spec: e.g. ``"toxicity-steer"`` or ``"steer:hook=blocks.1.hook_resid_pre,strength=4,
            vector=toxicity"``.
        toy: the :class:`~mechinterp.toyworld.ToyModel` or :class:`TextModel` to fit it to
            (not modified).

    Raises:
        ConfigError: an unknown name or kind, a bad key or value, an unknown hook (the
            message lists valid ones).
        ShapeError: a vector of the wrong size for its hook.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"an intervention spec is a non-empty string; {_usage()}")
    spec = spec.strip()
    if ":" not in spec:
        if spec not in READY_MADE:
            raise ConfigError(f"unknown intervention {spec!r}; {_usage()}")
        if isinstance(toy, TextModel):
            raise ConfigError(f"the ready-made {spec!r} is fitted to a toy-world model; on a "
                              f"pretrained model use a spec of one of "
                              f"{', '.join(PRETRAINED_KINDS)}")
        return READY_MADE[spec][1](toy)
    kind, values = parse_spec(spec)
    if isinstance(toy, TextModel) and kind not in PRETRAINED_KINDS:
        raise ConfigError(f"{kind} is fitted to a toy-world model's own tuning data; on a "
                          f"pretrained model use one of {', '.join(PRETRAINED_KINDS)}")
    intervention = SPEC_KINDS[kind][2](toy, _Params(kind, values))
    intervention.name = spec
    # check layers, heads, neurons and shapes now, so a bad spec fails here and not on apply
    if isinstance(intervention, HookIntervention):
        intervention.hook_fns(toy.model)
    elif isinstance(intervention, WeightIntervention):
        intervention.new_values(toy.model)
    return intervention
