"""The interface every intervention shares, and the hook and weight plumbing behind it.

An :class:`Intervention` changes what a model computes, reversibly: :meth:`~Intervention.apply`
adds forward hooks or writes new weights, :meth:`~Intervention.remove` takes the hooks off or
writes the saved weights back bit for bit, and :meth:`~Intervention.applied` is a context
manager that always removes. Applying an intervention twice to the same model is an error, and
so is removing one that is not applied.

Two families of mechanism:

* :class:`HookIntervention` (steering, clamps, ablations) registers permanent forward hooks
  on the model's hook points (``blocks.1.hook_resid_post``, ``blocks.0.attn.hook_z``...), so
  they stay active through ``model(tokens)``, ``run_with_cache`` and ``run_with_hooks`` until
  removed, and survive ``model.reset_hooks()``.
* :class:`WeightIntervention` (parameter patching, rank-one edits) overwrites slices of
  parameters and keeps the originals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from weakref import WeakKeyDictionary

import torch

from mechinterp.errors import ConfigError, ShapeError

__all__ = ["Intervention", "HookIntervention", "WeightIntervention", "KINDS",
           "active_interventions", "require_unmodified", "resolve_hook", "hook_shape", "common_hook_names",
           "check_vector", "ParamSlice"]

KINDS = ("steering", "clamp", "ablation", "param-patch", "weight-edit")
"""The kinds of intervention: what an :attr:`Intervention.kind` may be."""

HookFn = Callable[[torch.Tensor, Any], torch.Tensor]
ParamSlice = tuple[torch.nn.Parameter, tuple[slice, ...]]
"""A parameter and the index of the part of it an intervention rewrites."""

_ACTIVE: WeakKeyDictionary[torch.nn.Module, list[Intervention]] = WeakKeyDictionary()
_SHAPES: WeakKeyDictionary[torch.nn.Module, dict[str, tuple[int, ...]]] = WeakKeyDictionary()


def active_interventions(model: torch.nn.Module) -> list[Intervention]:
    """The interventions applied to ``model`` and not yet removed, oldest first."""
    return list(_ACTIVE.get(model, []))


def require_unmodified(model: torch.nn.Module, what: str) -> None:
    """Refuse to fit ``what`` on a model that has interventions applied.

    Raises:
        ConfigError: some intervention is applied to ``model``.
    """
    active = [i.name for i in active_interventions(model)]
    if active:
        raise ConfigError(f"{what} is fitted on the model as trained, but {active} "
                          f"{'is' if len(active) == 1 else 'are'} applied to it: build "
                          f"interventions before applying any, or remove those first")


class Intervention:
    """A reversible change to a model's computation.

    Subclasses implement ``_apply(model) -> state`` and ``_remove(model, state)``; this class
    keeps the per-model state and enforces the apply/remove protocol.

    Attributes:
        name: short identifier, e.g. ``"toxicity-steer"``.
        kind: one of :data:`KINDS`.
        description: one line for listings.
        fact: ``(subject, old attribute, new attribute)`` for a fact edit, else ``None``.
        meta: what building the intervention found (the strength a tuning rule chose and
            whether it met its target, ROME's key and value...); empty unless set.
    """

    name: str = "intervention"
    kind: str = ""
    description: str = ""
    fact: tuple[str, str, str] | None = None

    @property
    def meta(self) -> dict[str, Any]:
        return self.__dict__.setdefault("_meta", {})

    @meta.setter
    def meta(self, value: dict[str, Any]) -> None:
        self.__dict__["_meta"] = dict(value)

    @property
    def _states(self) -> WeakKeyDictionary[torch.nn.Module, Any]:
        # created on first use, so subclasses need not call ``super().__init__()``
        if "_model_states" not in self.__dict__:
            self.__dict__["_model_states"] = WeakKeyDictionary()
        return self.__dict__["_model_states"]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r})"

    def is_applied(self, model: torch.nn.Module) -> bool:
        """Whether this intervention is currently applied to ``model``."""
        return model in self._states

    def apply(self, model: torch.nn.Module) -> None:
        """Change ``model`` in place (hooks or weights).

        Raises:
            ConfigError: already applied to this model.
        """
        if self.is_applied(model):
            raise ConfigError(f"intervention {self.name!r} is already applied to this model; "
                              f"call remove(model) first, or use `with intervention.applied("
                              f"model):` which removes it on exit")
        self._states[model] = self._apply(model)
        _ACTIVE.setdefault(model, []).append(self)

    def remove(self, model: torch.nn.Module) -> None:
        """Undo :meth:`apply` exactly: hooks taken off, weights restored bit for bit.

        Raises:
            ConfigError: not applied to this model, or (weight interventions) the weights it
                wrote were changed since by something else that must be removed first.
        """
        if not self.is_applied(model):
            raise ConfigError(f"intervention {self.name!r} is not applied to this model; "
                              f"nothing to remove")
        self._remove(model, self._states[model])
        del self._states[model]
        active = _ACTIVE.get(model, [])
        active[:] = [i for i in active if i is not self]

    @contextmanager
    def applied(self, model: torch.nn.Module) -> Iterator[torch.nn.Module]:
        """Apply, yield the model, and always remove (also when the body raises)."""
        self.apply(model)
        try:
            yield model
        finally:
            self.remove(model)

    def _apply(self, model: torch.nn.Module) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _remove(self, model: torch.nn.Module, state: Any) -> None:  # pragma: no cover
        raise NotImplementedError


# --- hooks ------------------------------------------------------------------------------------

def common_hook_names(model: torch.nn.Module) -> list[str]:
    """The hook names interventions usually target, layer by layer (``model.hook_dict`` has
    every one)."""
    names = []
    for layer in range(model.cfg.n_layers):
        names += [f"blocks.{layer}.{h}" for h in (
            "hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out",
            "hook_mlp_out", "attn.hook_z", "mlp.hook_post")]
    return names


def resolve_hook(model: torch.nn.Module, name: str):
    """The ``HookPoint`` called ``name`` on ``model``.

    Raises:
        ConfigError: no hook point has that name (the message lists the usual ones).
    """
    hooks = getattr(model, "hook_dict", None)
    if hooks is None:
        raise ConfigError(f"{type(model).__name__} has no hook points: interventions need a "
                          f"TransformerLens model (a TransformerBridge or HookedRootModule)")
    if name not in hooks:
        raise ConfigError(f"unknown hook {name!r}; valid hooks include "
                          f"{', '.join(common_hook_names(model))} (model.hook_dict lists all "
                          f"{len(hooks)})")
    return hooks[name]


def hook_shape(model: torch.nn.Module, name: str) -> tuple[int, ...]:
    """The shape of one position's activation at hook ``name`` (e.g. ``(d_model,)``, or
    ``(n_heads, d_head)`` for ``attn.hook_z``), found by running one token once per model.

    Raises:
        ConfigError: unknown hook name.
    """
    resolve_hook(model, name)
    shapes = _SHAPES.setdefault(model, {})
    if name not in shapes:
        device = next(model.parameters()).device
        with torch.no_grad():
            _, cache = model.run_with_cache(torch.zeros(1, 1, dtype=torch.long, device=device))
        for key, value in cache.items():
            shapes[key] = tuple(value.shape[2:])
        hooks = model.hook_dict
        for key in hooks:  # aliases share their canonical point's activation
            canonical = hooks[key].name
            if key not in shapes and canonical in shapes:
                shapes[key] = shapes[canonical]
        if name not in shapes:
            raise ConfigError(f"hook {name!r} does not fire on a forward pass; choose one of "
                              f"{', '.join(common_hook_names(model))}")
    return shapes[name]


def check_vector(model: torch.nn.Module, hook: str, vector: torch.Tensor, what: str
                 ) -> torch.Tensor:
    """``vector`` as a float tensor, checked against the activation shape at ``hook``.

    Raises:
        ShapeError: the shape does not match one position's activation at ``hook``.
    """
    vector = torch.as_tensor(vector).detach().float()
    expected = hook_shape(model, hook)
    if tuple(vector.shape) != expected:
        raise ShapeError(f"the {what} for hook {hook!r} must have shape {expected} (one "
                         f"position's activation there), got {tuple(vector.shape)}")
    return vector.to(next(model.parameters()).device)


def select_positions(act: torch.Tensor, positions: str | int) -> tuple[slice | int, ...]:
    """The index of ``act`` (``(batch, pos, ...)``) that ``positions`` names."""
    if positions == "all":
        return (slice(None), slice(None))
    if positions == "last":
        return (slice(None), act.shape[1] - 1)
    return (slice(None), int(positions))


def check_positions(positions: str | int) -> str | int:
    """Validate a ``positions`` argument: ``"all"``, ``"last"`` or a position index.

    Raises:
        ConfigError: anything else.
    """
    if positions in ("all", "last") or (isinstance(positions, int)
                                        and not isinstance(positions, bool)):
        return positions
    raise ConfigError(f"positions must be 'all', 'last' or an integer position, got "
                      f"{positions!r}")


class HookIntervention(Intervention):
    """An intervention made of permanent forward hooks.

    Subclasses implement :meth:`hook_fns`; its functions receive a hook point's activation
    (``(batch, pos, ...)``) and return the modified activation.
    """

    def hook_fns(self, model: torch.nn.Module) -> list[tuple[str, HookFn]]:
        """``(hook name, function)`` pairs to register on ``model``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _apply(self, model: torch.nn.Module) -> list[tuple[Any, Any]]:
        fns = self.hook_fns(model)
        points = [resolve_hook(model, name) for name, _ in fns]  # validate before registering
        return [(point, point.add_hook(fn, dir="fwd", is_permanent=True))
                for point, (_, fn) in zip(points, fns, strict=True)]

    def _remove(self, model: torch.nn.Module, state: list[tuple[Any, Any]]) -> None:
        for point, handle in state:
            handle.hook.remove()
            point.fwd_hooks[:] = [h for h in point.fwd_hooks if h is not handle]


# --- weights ----------------------------------------------------------------------------------

class WeightIntervention(Intervention):
    """An intervention that overwrites parts of parameters and restores them on removal.

    Subclasses implement :meth:`new_values`. The originals are cloned on apply; on removal
    they are written back exactly (``torch.equal`` to before), after checking that the
    rewritten parts still hold what this intervention wrote.
    """

    def new_values(self, model: torch.nn.Module) -> list[tuple[ParamSlice, torch.Tensor]]:
        """``((parameter, index), new value)`` for every part to overwrite."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _apply(self, model: torch.nn.Module) -> list[tuple[ParamSlice, torch.Tensor,
                                                          torch.Tensor]]:
        state = []
        edits = self.new_values(model)
        for (param, index), value in edits:
            if tuple(param[index].shape) != tuple(value.shape):
                raise ShapeError(f"{self.name}: a new weight of shape {tuple(value.shape)} "
                                 f"cannot replace one of shape {tuple(param[index].shape)}")
        with torch.no_grad():
            for (param, index), value in edits:
                original = param[index].detach().clone()
                param[index] = value.to(param.device, param.dtype)
                state.append(((param, index), original, param[index].detach().clone()))
        return state

    def _remove(self, model: torch.nn.Module, state) -> None:
        for (param, index), _, written in state:
            if not torch.equal(param[index], written):
                later = [i.name for i in active_interventions(model) if i is not self]
                raise ConfigError(f"the weights {self.name!r} wrote were changed after it was "
                                  f"applied; remove the interventions applied since ({later}) "
                                  f"first, in reverse order")
        with torch.no_grad():
            for (param, index), original, _ in reversed(state):
                param[index] = original
