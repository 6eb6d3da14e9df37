"""Clamps and ablations: set chosen activations to fixed values, or remove them.

Clamps (``kind="clamp"``) pin what a unit or direction says:

* :class:`NeuronClamp`: MLP neurons (``blocks.{l}.mlp.hook_post``) set to given values;
* :class:`DirectionClamp`: an activation's component along a direction set to a value;
* :class:`SAEFeatureClamp`: sparse-autoencoder features set to values, with the change
  decoded back into the activation (the SAE's reconstruction error is left in place, so only
  the clamped features move), as in feature-steering experiments with SAEs (Templeton et al.,
  2024, "Scaling Monosemanticity").

Ablations (``kind="ablation"``) remove a component's contribution:

* :class:`HeadAblation` / :class:`MLPAblation`: zero or mean ablation of one attention head's
  output (``attn.hook_z``) or one MLP's output (``hook_mlp_out``); the mean, taken over
  ordinary text, keeps the activation's typical offset while removing what it says about this
  input;
* :class:`DirectionalAblation`: project a direction out of the activation at each of several
  hooks, ``x - (x . r) r``, as Arditi et al. (2024, "Refusal in Language Models Is Mediated by
  a Single Direction") remove the refusal direction from every layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from mechinterp.errors import ConfigError, ShapeError
from mechinterp.interventions.base import (
    HookIntervention,
    check_positions,
    check_vector,
    hook_shape,
    resolve_hook,
    select_positions,
)
from mechinterp.sae import SparseAutoencoder

__all__ = ["NeuronClamp", "DirectionClamp", "SAEFeatureClamp", "HeadAblation", "MLPAblation",
           "DirectionalAblation", "mean_activation", "readout_direction", "ABLATION_MODES"]

ABLATION_MODES = ("zero", "mean")


@torch.no_grad()
def mean_activation(model, tokens: torch.Tensor, hook: str, *, skip_first: bool = True
                    ) -> torch.Tensor:
    """Mean activation at ``hook`` over every batch row and position of ``tokens``: one
    position's activation shape, e.g. ``(d_model,)`` or ``(n_heads, d_head)``.

    Args:
        model: a TransformerLens model.
        tokens: ``(batch, pos)`` token ids of ordinary text.
        hook: hook name.
        skip_first: leave out position 0 (``<bos>``), whose activations are atypical and can
            be far larger than the rest.

    Raises:
        ConfigError: unknown hook.
    """
    resolve_hook(model, hook)
    _, cache = model.run_with_cache(tokens.to(next(model.parameters()).device),
                                    names_filter=[hook])
    act = cache[hook].float()
    return (act[:, 1:] if skip_first and act.shape[1] > 1 else act).flatten(0, 1).mean(0)


def readout_direction(model, tokens_a: int | Sequence[int], tokens_b: int | Sequence[int]
                      ) -> torch.Tensor:
    """The direction of the final residual stream (``blocks.{last}.hook_resid_post``) along
    which ``logit(a) - logit(b)`` changes: the final LayerNorm's gain times
    ``W_U[:, a] - W_U[:, b]``, centred because LayerNorm subtracts each vector's mean. For
    groups of tokens, their mean unembedding columns are used. Projecting it out there makes
    that logit difference the same for every input (the LayerNorm bias and unembedding bias
    terms). ``(d_model,)``.

    Raises:
        ConfigError: a token id outside the vocabulary, or an empty group.
    """
    w_u = model.W_U.detach().float()

    def column(tokens: int | Sequence[int]) -> torch.Tensor:
        ids = torch.as_tensor(tokens, dtype=torch.long).flatten()
        if len(ids) == 0 or ids.min() < 0 or ids.max() >= w_u.shape[1]:
            raise ConfigError(f"token ids must be a non-empty group in 0..{w_u.shape[1] - 1}, "
                              f"got {ids.tolist()}")
        return w_u[:, ids.to(w_u.device)].mean(1)
    direction = column(tokens_a) - column(tokens_b)
    gain = getattr(model.ln_final, "w", None)
    if gain is not None:
        direction = direction * gain.detach().float()
    if getattr(model.cfg, "normalization_type", "LN") in ("LN", "LNPre"):
        direction = direction - direction.mean()
    return direction


def _unit(direction: torch.Tensor, what: str) -> torch.Tensor:
    norm = direction.norm()
    if not torch.isfinite(norm) or norm == 0:
        raise ConfigError(f"the {what} must be a non-zero finite vector")
    return direction / norm


def _layer(model, layer: int, what: str) -> int:
    n = model.cfg.n_layers
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < n:
        raise ConfigError(f"{what}: layer must be an integer in 0..{n - 1}, got {layer!r}")
    return layer


def _mode(mode: str) -> str:
    if mode not in ABLATION_MODES:
        raise ConfigError(f"ablation mode must be one of {list(ABLATION_MODES)}, got {mode!r}")
    return mode


class NeuronClamp(HookIntervention):
    """Clamp MLP neurons of one layer (``blocks.{layer}.mlp.hook_post``) to fixed values.

    Args:
        layer: the MLP's layer.
        neurons: neuron indices.
        values: one value for all, or one per neuron.
        positions: ``"all"``, ``"last"`` or a position index.
        name, description: for listings.

    Raises:
        ConfigError: no neurons, or the number of values does not match (on construction); a
            neuron index or layer out of range (on apply).
    """

    kind = "clamp"

    def __init__(self, layer: int, neurons: Sequence[int], values: float | Sequence[float] = 0.0,
                 *, positions: str | int = "all", name: str = "neuron-clamp",
                 description: str = "") -> None:
        self.layer, self.neurons = layer, [int(n) for n in neurons]
        if not self.neurons:
            raise ConfigError("NeuronClamp needs at least one neuron index")
        values = torch.as_tensor(values, dtype=torch.float).flatten()
        if len(values) not in (1, len(self.neurons)):
            raise ConfigError(f"NeuronClamp got {len(values)} values for {len(self.neurons)} "
                              f"neurons; give one value or one per neuron")
        self.values = values.expand(len(self.neurons)).clone()
        self.positions = check_positions(positions)
        self.name = name
        self.description = description or (f"clamp {len(self.neurons)} neurons of layer "
                                           f"{layer}'s MLP")

    def hook_fns(self, model):
        hook = f"blocks.{_layer(model, self.layer, 'NeuronClamp')}.mlp.hook_post"
        (width,) = hook_shape(model, hook)
        bad = [n for n in self.neurons if not 0 <= n < width]
        if bad:
            raise ConfigError(f"neuron indices {bad} are out of range: {hook} has {width} "
                              f"neurons (0..{width - 1})")
        index, values, positions = torch.tensor(self.neurons), self.values, self.positions

        def clamp(act: torch.Tensor, hook) -> torch.Tensor:
            act = act.clone()
            where = select_positions(act, positions)
            part = act[where]
            part[..., index.to(act.device)] = values.to(act.device, act.dtype)
            act[where] = part
            return act
        return [(hook, clamp)]


class DirectionClamp(HookIntervention):
    """Set the component of the activation at ``hook`` along ``direction`` to ``value``:
    ``x + (value - x . r) r`` with ``r`` the unit direction.

    Args:
        hook: hook name.
        direction: one position's activation shape at the hook (normalised here).
        value: the component's new value.
        positions: ``"all"``, ``"last"`` or a position index.
        name, description: for listings.

    Raises:
        ConfigError: a zero direction.
        ShapeError: the direction does not fit the hook (on apply).
    """

    kind = "clamp"

    def __init__(self, hook: str, direction: torch.Tensor, value: float = 0.0, *,
                 positions: str | int = "all", name: str = "direction-clamp",
                 description: str = "") -> None:
        self.hook, self.value = hook, float(value)
        self.direction = _unit(torch.as_tensor(direction).float(), "clamped direction")
        self.positions = check_positions(positions)
        self.name = name
        self.description = description or f"clamp a direction at {hook} to {value:g}"

    def hook_fns(self, model):
        r = check_vector(model, self.hook, self.direction, "clamped direction")
        value, positions = self.value, self.positions

        def clamp(act: torch.Tensor, hook) -> torch.Tensor:
            act = act.clone()
            where = select_positions(act, positions)
            part = act[where]
            d = r.to(act.dtype)
            act[where] = part + (value - part @ d).unsqueeze(-1) * d
            return act
        return [(self.hook, clamp)]


class SAEFeatureClamp(HookIntervention):
    """Clamp sparse-autoencoder features of the activation at ``hook``: encode, set the
    features, decode, and add the decoded difference to the activation.

    Args:
        hook: hook name whose activations the SAE was trained on.
        sae: a :class:`~mechinterp.sae.SparseAutoencoder` with ``d_in`` matching the hook.
        features: latent indices.
        values: one value for all, or one per feature (0 switches a feature off).
        positions: ``"all"``, ``"last"`` or a position index.
        name, description: for listings.

    Raises:
        ConfigError: a feature index out of range, or the number of values does not match.
        ShapeError: the SAE's input size does not fit the hook (on apply).
    """

    kind = "clamp"

    def __init__(self, hook: str, sae: SparseAutoencoder, features: Sequence[int],
                 values: float | Sequence[float] = 0.0, *, positions: str | int = "all",
                 name: str = "sae-clamp", description: str = "") -> None:
        self.hook, self.sae, self.features = hook, sae, [int(f) for f in features]
        n = sae.config.n_latents
        if not self.features or any(not 0 <= f < n for f in self.features):
            raise ConfigError(f"SAE features must be indices in 0..{n - 1}, got {self.features}")
        values = torch.as_tensor(values, dtype=torch.float).flatten()
        if len(values) not in (1, len(self.features)):
            raise ConfigError(f"SAEFeatureClamp got {len(values)} values for "
                              f"{len(self.features)} features")
        self.values = values.expand(len(self.features)).clone()
        self.positions = check_positions(positions)
        self.name = name
        self.description = description or f"clamp SAE features {self.features} at {hook}"

    def hook_fns(self, model):
        expected = hook_shape(model, self.hook)
        if expected != (self.sae.d_in,):
            raise ShapeError(f"the SAE reads {self.sae.d_in} features but {self.hook} has "
                             f"activations of shape {expected}")
        sae, positions = self.sae, self.positions
        index, values = torch.tensor(self.features), self.values

        def clamp(act: torch.Tensor, hook) -> torch.Tensor:
            act = act.clone()
            where = select_positions(act, positions)
            part = act[where]
            flat = part.reshape(-1, part.shape[-1]).float()
            with torch.no_grad():
                z = sae.to(flat.device).encode(flat)
                z_new = z.clone()
                z_new[:, index.to(z.device)] = values.to(z.device)
                change = (z_new - z) @ sae.W_dec.T  # decode(z_new) - decode(z)
            act[where] = part + change.reshape(part.shape).to(act.dtype)
            return act
        return [(self.hook, clamp)]


class HeadAblation(HookIntervention):
    """Zero or mean ablation of one attention head's output (its slice of ``attn.hook_z``,
    the per-head value-weighted sum before the output projection).

    Args:
        layer, head: the head.
        mode: ``"zero"`` or ``"mean"``.
        mean: for ``"mean"``: the head's mean ``hook_z`` ``(d_head,)`` or the whole layer's
            ``(n_heads, d_head)`` (see :func:`mean_activation`).
        name, description: for listings.

    Raises:
        ConfigError: an unknown mode, ``"mean"`` without a mean or ``"zero"`` with one; a
            layer or head out of range (on apply).
        ShapeError: the mean does not fit (on apply).
    """

    kind = "ablation"

    def __init__(self, layer: int, head: int, mode: str = "zero", *,
                 mean: torch.Tensor | None = None, name: str = "head-ablation",
                 description: str = "") -> None:
        self.layer, self.head, self.mode = layer, head, _mode(mode)
        if mode == "mean" and mean is None:
            raise ConfigError("mean ablation needs the head's mean activation: pass mean="
                              "mean_activation(model, tokens, 'blocks.L.attn.hook_z')")
        if mode == "zero" and mean is not None:
            raise ConfigError("zero ablation takes no mean; use mode='mean' to ablate to it")
        self.mean = None if mean is None else torch.as_tensor(mean).float()
        self.name = name
        self.description = description or f"{mode}-ablate head L{layer}.H{head}"

    def hook_fns(self, model):
        hook = f"blocks.{_layer(model, self.layer, 'HeadAblation')}.attn.hook_z"
        n_heads, d_head = hook_shape(model, hook)
        if not 0 <= self.head < n_heads:
            raise ConfigError(f"head must be in 0..{n_heads - 1}, got {self.head}")
        head, value = self.head, torch.zeros(d_head)
        if self.mean is not None:
            mean = self.mean[head] if self.mean.shape == (n_heads, d_head) else self.mean
            if tuple(mean.shape) != (d_head,):
                raise ShapeError(f"the mean for a head must be ({d_head},) or ({n_heads}, "
                                 f"{d_head}), got {tuple(self.mean.shape)}")
            value = mean

        def ablate(act: torch.Tensor, hook) -> torch.Tensor:
            act = act.clone()
            act[:, :, head] = value.to(act.device, act.dtype)
            return act
        return [(hook, ablate)]


class MLPAblation(HookIntervention):
    """Zero or mean ablation of one layer's MLP output (``blocks.{layer}.hook_mlp_out``).

    Args:
        layer: the MLP's layer.
        mode: ``"zero"`` or ``"mean"``.
        mean: for ``"mean"``: the MLP's mean output ``(d_model,)``.
        name, description: for listings.

    Raises:
        ConfigError: an unknown mode, ``"mean"`` without a mean or ``"zero"`` with one; a
            layer out of range (on apply).
        ShapeError: the mean does not fit (on apply).
    """

    kind = "ablation"

    def __init__(self, layer: int, mode: str = "zero", *, mean: torch.Tensor | None = None,
                 name: str = "mlp-ablation", description: str = "") -> None:
        self.layer, self.mode = layer, _mode(mode)
        if mode == "mean" and mean is None:
            raise ConfigError("mean ablation needs the MLP's mean output: pass mean="
                              "mean_activation(model, tokens, 'blocks.L.hook_mlp_out')")
        if mode == "zero" and mean is not None:
            raise ConfigError("zero ablation takes no mean; use mode='mean' to ablate to it")
        self.mean = None if mean is None else torch.as_tensor(mean).float()
        self.name = name
        self.description = description or f"{mode}-ablate the MLP of layer {layer}"

    def hook_fns(self, model):
        hook = f"blocks.{_layer(model, self.layer, 'MLPAblation')}.hook_mlp_out"
        if self.mean is None:
            value = torch.zeros(hook_shape(model, hook))
        else:
            value = check_vector(model, hook, self.mean, "mean MLP output")

        def ablate(act: torch.Tensor, hook) -> torch.Tensor:
            return value.to(act.device, act.dtype).expand_as(act).clone()
        return [(hook, ablate)]


class DirectionalAblation(HookIntervention):
    """Project a direction out of the activation at each of several hooks:
    ``x - (x . r) r`` with ``r`` that hook's unit direction (Arditi et al., 2024).

    Args:
        directions: hook name -> direction at that hook (normalised here).
        name, description: for listings.

    Raises:
        ConfigError: no hooks, or a zero direction; unknown hooks (on apply).
        ShapeError: a direction does not fit its hook (on apply).
    """

    kind = "ablation"

    def __init__(self, directions: Mapping[str, torch.Tensor], *,
                 name: str = "directional-ablation", description: str = "") -> None:
        if not directions:
            raise ConfigError("DirectionalAblation needs at least one (hook, direction)")
        self.directions = {h: _unit(torch.as_tensor(d).float(), f"direction at {h}")
                           for h, d in directions.items()}
        self.name = name
        self.description = description or (f"project a direction out of "
                                           f"{', '.join(self.directions)}")

    def hook_fns(self, model):
        fns = []
        for hook, direction in self.directions.items():
            r = check_vector(model, hook, direction, "ablated direction")

            def ablate(act: torch.Tensor, hook, r=r) -> torch.Tensor:
                d = r.to(act.dtype)
                return act - (act @ d).unsqueeze(-1) * d
            fns.append((hook, ablate))
        return fns
