"""Weight interventions: patch one component's parameters from another model, or edit a fact
with a rank-one update of an MLP's output weights.

* :class:`ParameterPatch` replaces one attention head's query, key, value and output slices
  (and their biases) or one MLP's weights with those of another checkpoint of the same shape,
  e.g. a model trained from another seed or an untrained one. The attention output bias is
  shared by all heads of a layer and is not part of a head.
* :func:`rome_edit` fits a :class:`RankOneEdit` that rewrites a toy-world fact ("the colour of
  zorv is" red -> blue) the way ROME does (Meng et al., 2022, "Locating and Editing Factual
  Associations in GPT"): the key ``k*`` is the MLP's hidden activation at the subject token,
  averaged over the edit prompt in varied contexts; the value is the MLP output that makes the
  new colour win, found by optimising a vector added to the MLP's output at the subject token;
  the update of the output weights ``W`` (``d_model x d_mlp``) is the closed-form rank-one
  ``dW = (v* - W k*) (C^-1 k*)^T / (k*^T C^-1 k*)`` with ``C`` the keys' second-moment matrix.
  As MEMIT does with its preservation term (Meng et al., 2023, "Mass-Editing Memory in a
  Transformer"), ``C`` up-weights the keys of the *other* subjects, which the edit should
  leave alone.

Which layer: the subject token's MLP output can only reach the prediction at the last token
through attention in a later layer, so in a 2-layer model only layer 0 is editable this way
(on ``toyworld-2l``, layer 0 gives the new colour on the edit prompt for every subject).
"""

from __future__ import annotations

import torch

from mechinterp.errors import ConfigError, ShapeError
from mechinterp.interventions.base import ParamSlice, WeightIntervention, require_unmodified
from mechinterp.interventions.steering import _pad
from mechinterp.interventions.tuning import TUNING_SEED, in_context, reference_tokens
from mechinterp.toyworld.tasks import FACT_TEMPLATES, FACTS
from mechinterp.toyworld.vocab import WORD_CLASSES

__all__ = ["component_parameters", "ParameterPatch", "RankOneEdit", "rome_edit",
           "key_second_moment", "parse_component"]

ALL = (slice(None),)


def _is_conv1d(module) -> bool:
    """Hugging Face's ``Conv1D`` (GPT-2's projections): a linear layer whose weight is stored
    ``(in_features, out_features)``, the transpose of ``nn.Linear``'s."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def _linear(model, layer: int, name: str) -> torch.nn.Module:
    """The linear map ``name`` (``q``, ``k``, ``v``, ``o``, ``in``, ``out``) of a layer: an
    ``nn.Linear`` (toy-world models; GPT-2's q/k/v, which the bridge exposes as views of the
    fused ``c_attn``) or a ``Conv1D`` (GPT-2's ``c_proj`` and ``c_fc``)."""
    block = model.blocks[layer]
    part = block.attn if name in ("q", "k", "v", "o") else block.mlp
    module = getattr(getattr(part, name, None), "original_component", None)
    if not (isinstance(module, torch.nn.Linear) or _is_conv1d(module)):
        raise ConfigError(f"weight interventions need a TransformerBridge whose attention and "
                          f"MLP expose q/k/v/o and in/out linear maps (toy-world and GPT-2 "
                          f"models do); {type(model).__name__} has no linear {name!r} in "
                          f"layer {layer}")
    return module


def _out_index(module, index: slice) -> tuple[slice, ...]:
    """Index of output features ``index`` in ``module``'s weight."""
    return (slice(None), index) if _is_conv1d(module) else (index,)


def _in_index(module, index: slice) -> tuple[slice, ...]:
    """Index of input features ``index`` in ``module``'s weight."""
    return (index,) if _is_conv1d(module) else (slice(None), index)


def parse_component(model, component: str) -> tuple[int, int | None]:
    """``"L1.H2"`` -> ``(1, 2)``; ``"L0.mlp"`` -> ``(0, None)``.

    Raises:
        ConfigError: malformed, or a layer or head out of range.
    """
    cfg = model.cfg
    try:
        layer_part, unit = component.split(".")
        if not layer_part.startswith("L"):
            raise ValueError
        layer = int(layer_part[1:])
        if unit == "mlp":
            head = None
        elif unit.startswith("H"):
            head = int(unit[1:])
        else:
            raise ValueError
    except ValueError:
        raise ConfigError(f"a component is 'L<layer>.H<head>' or 'L<layer>.mlp', e.g. 'L1.H2' "
                          f"or 'L0.mlp'; got {component!r}") from None
    if not 0 <= layer < cfg.n_layers or (head is not None and not 0 <= head < cfg.n_heads):
        raise ConfigError(f"component {component!r} is out of range: layers 0..{cfg.n_layers - 1}"
                          f", heads 0..{cfg.n_heads - 1}")
    if head is None and getattr(cfg, "attn_only", False):
        raise ConfigError(f"component {component!r}: this model has no MLPs")
    return layer, head


def component_parameters(model, component: str) -> dict[str, ParamSlice]:
    """The parameter slices that make up a component: for a head ``W_Q``/``W_K``/``W_V`` rows,
    their bias entries and ``W_O`` columns; for an MLP its input and output weights and biases.

    Raises:
        ConfigError: a malformed or out-of-range component, or a model without separate
            linear layers.
    """
    layer, head = parse_component(model, component)
    if head is None:
        out = {}
        for name in ("in", "out"):
            linear = _linear(model, layer, name)
            out[f"{name}.weight"] = (linear.weight, ALL)
            if linear.bias is not None:
                out[f"{name}.bias"] = (linear.bias, ALL)
        return out
    d_head = model.cfg.d_head
    rows = slice(head * d_head, (head + 1) * d_head)
    out = {}
    for name in ("q", "k", "v"):
        linear = _linear(model, layer, name)
        out[f"{name}.weight"] = (linear.weight, _out_index(linear, rows))
        if linear.bias is not None:
            out[f"{name}.bias"] = (linear.bias, (rows,))
    o = _linear(model, layer, "o")
    out["o.weight"] = (o.weight, _in_index(o, rows))
    return out


class ParameterPatch(WeightIntervention):
    """Replace one component's parameters with another model's.

    Args:
        component: ``"L<layer>.H<head>"`` or ``"L<layer>.mlp"``.
        source: a model of the same architecture (weights are copied at apply time).
        name, description: for listings.
    """

    kind = "param-patch"

    def __init__(self, component: str, source: torch.nn.Module, *, name: str = "param-patch",
                 description: str = "") -> None:
        self.component, self.source = component, source
        self.name = name
        self.description = description or f"replace {component}'s weights with another model's"

    def new_values(self, model):
        mine = component_parameters(model, self.component)
        theirs = component_parameters(self.source, self.component)
        out = []
        for key, (param, index) in mine.items():
            if key not in theirs:
                raise ShapeError(f"the source model has no {key} for {self.component}")
            src, src_index = theirs[key]
            out.append(((param, index), src[src_index].detach().clone()))
        return out


class RankOneEdit(WeightIntervention):
    """Add a fixed ``(d_model, d_mlp)`` update to one MLP's output weights.

    Args:
        layer: the MLP's layer.
        update: the weight change (``out.weight`` has shape ``(d_model, d_mlp)``).
        fact: ``(subject, old, new)`` when the edit rewrites a fact.
        name, description: for listings.
        meta: what the fitting found (e.g. ROME's key, value and traced effects).
    """

    kind = "weight-edit"

    def __init__(self, layer: int, update: torch.Tensor, *,
                 fact: tuple[str, str, str] | None = None, name: str = "rank-one-edit",
                 description: str = "", meta: dict | None = None) -> None:
        self.layer, self.update, self.fact = layer, update.detach(), fact
        self.meta = dict(meta or {})
        self.name = name
        self.description = description or f"rank-one edit of layer {layer}'s MLP output weights"

    def new_values(self, model):
        linear = _linear(model, self.layer, "out")
        weight = linear.weight
        # a Conv1D (GPT-2) stores the (d_model, d_mlp) map transposed
        update = self.update.T if _is_conv1d(linear) else self.update
        if weight.shape != update.shape:
            expected = tuple(weight.T.shape if _is_conv1d(linear) else weight.shape)
            raise ShapeError(f"the update has shape {tuple(self.update.shape)} but layer "
                             f"{self.layer}'s MLP output map is {expected} (d_model, d_mlp)")
        return [((weight, ALL), weight.detach() + update.to(weight.device, weight.dtype))]


@torch.no_grad()
def key_second_moment(model, tokens: torch.Tensor, layer: int, *,
                      preserve: torch.Tensor | None = None, weight: float = 0.0) -> torch.Tensor:
    """``E[k k^T]`` of the MLP hidden activations ``k`` (``blocks.{layer}.mlp.hook_post``)
    over every position of ``tokens``, plus ``weight * E[k k^T]`` over the positions where
    ``preserve`` (a boolean ``tokens``-shaped mask) is true: ``(d_mlp, d_mlp)``."""
    hook = f"blocks.{layer}.mlp.hook_post"
    _, cache = model.run_with_cache(tokens.to(next(model.parameters()).device),
                                    names_filter=[hook])
    keys = cache[hook].float()
    flat = keys.flatten(0, 1)
    moment = flat.T @ flat / len(flat)
    if preserve is not None and weight > 0 and preserve.any():
        kept = keys[preserve.to(keys.device)]
        moment = moment + weight * kept.T @ kept / len(kept)
    return moment


def _check_fact(subject: str, new: str) -> str:
    if subject not in FACTS:
        raise ConfigError(f"unknown subject {subject!r}; subjects: {', '.join(FACTS)}")
    colours = [c for c in WORD_CLASSES["colour"] if c != FACTS[subject]]
    if new not in colours:
        raise ConfigError(f"{subject!r} is {FACTS[subject]!r}; the new colour must be one of "
                          f"{', '.join(colours)}, got {new!r}")
    return FACTS[subject]


def rome_edit(toy, subject: str, new: str, *, layer: int = 0, steps: int = 150,
              lr: float = 0.1, weight_decay: float = 1e-4, preservation: float = 3.0,
              ridge: float = 1e-3, n_contexts: int = 20, seed: int = TUNING_SEED,
              name: str = "fact-edit") -> RankOneEdit:
    """Fit a ROME-style rank-one edit that makes ``subject``'s colour ``new``.

    Args:
        toy: a :class:`~mechinterp.toyworld.ToyModel` (its model is not changed here).
        subject: a subject of :data:`~mechinterp.toyworld.tasks.FACTS`, e.g. ``"zorv"``.
        new: the new colour.
        layer: the edited MLP; its output at the subject token must be read by a later
            attention layer, so ``layer < n_layers - 1``.
        steps, lr, weight_decay: Adam steps, learning rate and squared-norm penalty of the
            value optimisation.
        preservation: weight of the other subjects' keys in the key second moment.
        ridge: added to the second moment, as a fraction of its mean diagonal.
        n_contexts: contexts of the edit prompt ("the colour of zorv is" after random
            training sentences) for the key and the value.
        seed: tuning-stream seed (contexts and reference text).
        name: the returned intervention's name.

    Raises:
        ConfigError: an unknown subject, a colour that is not a new one, a layer that cannot
            reach the prediction, or interventions applied to the model.
    """
    model, tok = toy.model, toy.tokenizer
    old = _check_fact(subject, new)
    last_layer = model.cfg.n_layers - 1
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < last_layer:
        raise ConfigError(f"rome_edit edits the MLP at the subject token, whose output reaches "
                          f"the last token only through a later attention layer: layer must "
                          f"be in 0..{last_layer - 1}, got {layer!r}")
    if steps < 1 or n_contexts < 1:
        raise ConfigError(f"rome_edit needs steps >= 1 and n_contexts >= 1, got {steps}, "
                          f"{n_contexts}")
    require_unmodified(model, "a fact edit")
    prompt = FACT_TEMPLATES[0].format(s=subject)
    words = prompt.split()
    from_end = len(words) - 1 - words.index(subject)
    # as ROME's context templates do, the edit prompt is also used on its own (min_prefix=0)
    tokens, last = _pad(in_context(tok, [prompt] * n_contexts, seed=seed, min_prefix=0,
                                   n_ctx=toy.spec.n_ctx))
    device = next(model.parameters()).device
    tokens, last = tokens.to(device), last.to(device)
    rows, subject_pos = torch.arange(len(tokens), device=device), last - from_end
    key_hook, out_hook = f"blocks.{layer}.mlp.hook_post", f"blocks.{layer}.hook_mlp_out"
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=[key_hook])
    k_star = cache[key_hook][rows, subject_pos].float().mean(0)

    delta = torch.zeros(model.cfg.d_model, device=device, requires_grad=True)
    target = int(tok.ids([new])[0])

    def add_delta(act: torch.Tensor, hook) -> torch.Tensor:
        act = act.clone()
        act[rows, subject_pos] = act[rows, subject_pos] + delta
        return act

    params = list(model.parameters())
    trainable = [p.requires_grad for p in params]
    optimizer = torch.optim.Adam([delta], lr=lr)
    try:  # only the value vector is optimised: no gradients land on the model
        for p in params:
            p.requires_grad_(False)
        for _ in range(steps):
            with model.hooks(fwd_hooks=[(out_hook, add_delta)]):
                logp = model(tokens)[rows, last].log_softmax(-1)
            loss = -logp[:, target].mean() + weight_decay * delta.pow(2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        for p, flag in zip(params, trainable, strict=True):
            p.requires_grad_(flag)

    reference = reference_tokens(tok, toy.spec.mixture, n=512, n_ctx=toy.spec.n_ctx, seed=seed)
    others = torch.isin(reference, tok.class_ids("subject")) & (reference != tok.index[subject])
    moment = key_second_moment(model, reference, layer, preserve=others, weight=preservation)
    moment = moment + ridge * moment.diagonal().mean() * torch.eye(len(moment), device=device)
    u = torch.linalg.solve(moment, k_star)
    update = torch.outer(delta.detach(), u) / (u @ k_star)
    return RankOneEdit(layer, update, fact=(subject, old, new), name=name,
                       description=f"ROME rank-one edit of layer {layer}'s MLP: {subject} is "
                                   f"{new} (was {old})")
