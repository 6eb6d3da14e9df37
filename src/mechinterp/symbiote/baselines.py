"""Baselines the symbiote is compared with, each turning a class into forward hooks.

* :func:`logit_mask_hooks`: set the inhibited class's logit to minus infinity. It acts at the
  output, which the symbiote is not allowed to do, and is perfect by construction; it shows
  what acting at the output gives for free (the non-target accuracy it keeps is the ceiling).
* Ablation of ``k`` chosen units, where ``k`` is the number of units the symbiote touches for
  that class. Two rules choose the units: :func:`selectivity_scores` (the units whose mean
  activation is most specific to the class) and :func:`attribution_scores` (the units whose
  ablation attribution patching, a first-order Taylor estimate (Nanda, 2023), predicts to
  lower the class's logit margin most). Four values replace them (:data:`ABLATIONS`), each
  per position for a convolution channel (a channel is a map, and a map is what is replaced):

  - ``mean``: the mean over all training images. It can *raise* a unit that prefers the
    class on the images of the other nine classes, so it is kept to show that effect;
  - ``mean_nontarget``: the mean over the training images of the other classes, the value a
    unit takes when the class is absent;
  - ``zero``;
  - ``resample``: each test image gets the activations of a random training image of another
    class.
* :func:`train_unit_gates`: gates trained by gradient on exactly the chosen units, with the
  symbiote's own loss, data and steps. Given the symbiote's own units it separates "a learned
  edit" from "the right units"; given the top-``k`` units by attribution it asks what the
  symbiote's choice of units adds.
"""

from __future__ import annotations

import torch

from mechinterp.ablation import ablation_hook, per_unit, unit_means
from mechinterp.config import seed_everything
from mechinterp.data import DigitData
from mechinterp.errors import ConfigError, ShapeError
from mechinterp.models import HookedClassifier, image_rows
from mechinterp.symbiote.network import SymbioteConfig, _gate_offset, _modulate
from mechinterp.symbiote.training import inhibition_batch, inhibition_loss
from mechinterp.train import predict

__all__ = [
    "ABLATIONS",
    "UNIT_CHOOSERS",
    "logit_mask_hooks",
    "selectivity_scores",
    "attribution_scores",
    "top_units",
    "selective_units",
    "attribution_units",
    "mean_ablation_hooks",
    "all_unit_means",
    "ablation_references",
    "ablation_hooks",
    "ReferenceBank",
    "train_unit_gates",
    "gate_hooks",
]

UnitSet = dict[str, torch.Tensor]
ABLATIONS = ("mean", "mean_nontarget", "zero", "resample")
"""What an ablated unit is set to (see the module docstring)."""
UNIT_CHOOSERS = ("selective", "attribution")
"""How the ablated units are chosen."""


def logit_mask_hooks(digit: int) -> list:
    """Hooks that remove ``digit`` from the output by masking its logit."""

    def hook(logits: torch.Tensor, hook) -> torch.Tensor:
        logits = logits.clone()
        logits[:, digit] = float("-inf")
        return logits

    return [("hook_logits", hook)]


def all_unit_means(model: HookedClassifier, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean activation of every hidden unit over ``images``: ``{hook: (n_units,)}``."""
    return {name: unit_means(model, name, images) for name in model.hidden_hooks}


def mean_ablation_hooks(units: UnitSet, means: dict[str, torch.Tensor]) -> list:
    """Hooks that set the given units to one value each (a channel to one constant over its
    map; see :func:`ablation_hooks` for values per position)."""
    return [(name, ablation_hook(idx, "mean", means[name]))
            for name, idx in units.items() if len(idx)]


class ReferenceBank:
    """The primary's hidden activations on every training image, read once, from which
    :func:`ablation_references` draws its values for any class and ablation."""

    @torch.no_grad()
    def __init__(self, model: HookedClassifier, data: DigitData) -> None:
        _, cache = model.run_with_cache(data.train_images,
                                        names_filter=lambda name: name in model.hidden_hooks)
        self.acts = {name: cache[name] for name in model.hidden_hooks}
        self.labels = data.train_labels
        self.n_test = data.n_test
        self.totals = {name: act.sum(0) for name, act in self.acts.items()}

    def references(self, digit: int, mode: str, *, n: int | None = None, seed: int = 0
                   ) -> dict[str, torch.Tensor]:
        """See :func:`ablation_references`."""
        if mode not in ABLATIONS:
            raise ConfigError(f"unknown ablation {mode!r}; choose one of {list(ABLATIONS)}")
        others = self.labels != digit
        if mode == "resample":
            pool = torch.nonzero(others).flatten()
            g = torch.Generator().manual_seed(seed)
            pick = pool[torch.randint(len(pool), (self.n_test if n is None else n,),
                                      generator=g).to(pool.device)]
            return {name: act[pick] for name, act in self.acts.items()}
        if mode == "mean_nontarget":
            return {name: (self.totals[name] - act[~others].sum(0)) / int(others.sum())
                    for name, act in self.acts.items()}
        means = {name: total / len(self.labels) for name, total in self.totals.items()}
        return {name: torch.zeros_like(v) for name, v in means.items()} if mode == "zero" \
            else means


def ablation_references(model: HookedClassifier, data: DigitData, digit: int, mode: str, *,
                        n: int | None = None, seed: int = 0,
                        bank: ReferenceBank | None = None) -> dict[str, torch.Tensor]:
    """What each hidden hook's ablated units are replaced by, per position.

    Returns ``{hook: tensor}``: ``(n_units, *spatial)`` for ``mean`` and ``mean_nontarget``
    (the same for every image), zeros of that shape for ``zero``, and
    ``(n, n_units, *spatial)`` for ``resample`` (one random training image of another class
    per evaluated image; ``n`` defaults to the test split's size).

    Args:
        bank: the training activations, when the caller has read them already.

    Raises:
        ConfigError: unknown mode.
    """
    if mode not in ABLATIONS:
        raise ConfigError(f"unknown ablation {mode!r}; choose one of {list(ABLATIONS)}")
    return (bank or ReferenceBank(model, data)).references(digit, mode, n=n, seed=seed)


def _replace_hook(index: torch.Tensor, reference: torch.Tensor):
    def hook(act: torch.Tensor, hook) -> torch.Tensor:
        per_image = reference.dim() == act.dim()
        rows = image_rows(reference, act) if per_image else reference
        if per_image and rows.shape[0] != act.shape[0]:
            raise ShapeError(f"resample references hold {reference.shape[0]} images, the batch "
                             f"at {hook.name} has {act.shape[0]}; build them with n={act.shape[0]}")
        act = act.clone()
        value = rows[:, index] if per_image else reference[index].unsqueeze(0)
        act[:, index] = value.to(act.device).expand_as(act[:, index])
        return act

    return hook


def ablation_hooks(units: UnitSet, references: dict[str, torch.Tensor]) -> list:
    """Hooks that replace the given units by their references
    (:func:`ablation_references`)."""
    return [(name, _replace_hook(idx.to(references[name].device), references[name]))
            for name, idx in units.items() if len(idx)]


def top_units(scores: dict[str, torch.Tensor], budget: int) -> UnitSet:
    """The ``budget`` highest-scoring units across all hooks: ``{hook: sorted indices}``."""
    if budget < 0:
        raise ConfigError(f"unit budget must be >= 0, got {budget}")
    names = list(scores)
    flat = torch.cat([scores[n].flatten() for n in names])
    owner = torch.cat([torch.full((scores[n].numel(),), i) for i, n in enumerate(names)])
    local = torch.cat([torch.arange(scores[n].numel()) for n in names])
    chosen = torch.argsort(flat, descending=True)[:budget]
    return {n: torch.sort(local[chosen][owner[chosen] == i]).values for i, n in enumerate(names)}


@torch.no_grad()
def selectivity_scores(model: HookedClassifier, data: DigitData, digit: int
                       ) -> dict[str, torch.Tensor]:
    """How specific each unit is to ``digit``: (mean on the digit - mean on the rest) / std."""
    _, cache = model.run_with_cache(data.train_images,
                                    names_filter=lambda n: n in model.hidden_hooks)
    is_digit = data.train_labels == digit
    scores = {}
    for name in model.hidden_hooks:
        act = per_unit(cache[name])
        spread = act.std(0).clamp_min(1e-6)
        scores[name] = ((act[is_digit].mean(0) - act[~is_digit].mean(0)) / spread).cpu()
    return scores


def attribution_scores(model: HookedClassifier, data: DigitData, digit: int,
                       means: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Predicted drop of ``digit``'s logit margin when each unit is replaced by its reference.

    The metric is the digit's logit minus the mean of the other logits, on the digit's
    training images. For each unit the estimated change is ``sum((reference - act) * grad)``
    over its positions, averaged over images (attribution patching: one forward and one
    backward pass for all units). Larger score = larger predicted drop.

    Args:
        means: the reference per hook, ``(n_units,)`` or per position ``(n_units, *spatial)``
            (default: each unit's mean over all training images).
    """
    # the input requires grad so activations carry gradients even when A's weights are frozen
    images = data.train_images[data.train_labels == digit].clone().requires_grad_(True)
    if len(images) == 0:
        raise ConfigError(f"no training images of class {digit} to attribute with")
    means = means or all_unit_means(model, data.train_images)
    cache: dict[str, torch.Tensor] = {}

    def keep(act, hook):
        act.retain_grad()
        cache[hook.name] = act
        return act

    model.eval()
    with torch.enable_grad():
        logits = model.run_with_hooks(images, fwd_hooks=[(n, keep) for n in model.hidden_hooks])
        others = torch.cat([logits[:, :digit], logits[:, digit + 1:]], dim=1)
        metric = (logits[:, digit] - others.mean(1)).mean()
        metric.backward()
    scores = {}
    for name in model.hidden_hooks:
        act, grad = cache[name], cache[name].grad
        reference = means[name]
        reference = reference.view(1, *reference.shape, *[1] * (act.dim() - 1 - reference.dim()))
        delta = (reference - act) * grad
        estimate = delta.sum(dim=tuple(range(2, act.dim()))) if act.dim() > 2 else delta
        scores[name] = (-estimate.mean(0)).detach().cpu()
    return scores


def selective_units(model: HookedClassifier, data: DigitData, digit: int, budget: int) -> UnitSet:
    """The ``budget`` units most selective for ``digit`` on the training images."""
    return top_units(selectivity_scores(model, data, digit), budget)


def attribution_units(model: HookedClassifier, data: DigitData, digit: int, budget: int,
                      means: dict[str, torch.Tensor] | None = None) -> UnitSet:
    """The ``budget`` units whose ablation most lowers ``digit``'s logit margin (estimated)."""
    return top_units(attribution_scores(model, data, digit, means), budget)


def _unit_mask(model: HookedClassifier, units: UnitSet) -> torch.Tensor:
    """``(n_units_total,)`` 1 on the given units, hooks in ``model.hidden_hooks`` order."""
    parts = []
    for name, size in model.unit_counts().items():
        mask = torch.zeros(size)
        idx = units.get(name, torch.zeros(0, dtype=torch.long))
        if len(idx) and int(idx.max()) >= size:
            raise ShapeError(f"unit {int(idx.max())} is out of range for {name} with {size} "
                             f"units")
        mask[idx.long().cpu()] = 1.0
        parts.append(mask)
    return torch.cat(parts)


def gate_hooks(model: HookedClassifier, gates: torch.Tensor) -> list:
    """Hooks that multiply every hidden unit by its gate; ``gates`` is
    ``(batch, n_units_total)``, hooks in ``model.hidden_hooks`` order."""
    hooks, start = [], 0
    for name, size in model.unit_counts().items():
        gate = gates[:, start : start + size]
        hooks.append((name, _modulate(gate, torch.zeros_like(gate))))
        start += size
    return hooks


def train_unit_gates(model: HookedClassifier, data: DigitData, units: dict[int, UnitSet],
                     config: SymbioteConfig | None = None, *, seed: int = 0
                     ) -> dict[int, torch.Tensor]:
    """Gates on exactly the given units of each class, trained with the symbiote's loss.

    One table of gates (a row per class, one entry per hidden unit, held at 1 outside the
    class's units) is trained the way :func:`~mechinterp.symbiote.training.train_symbiote`
    trains B: the same batches (half the images inhibit their own label, half a random
    class), the same inhibition, preservation and sparsity terms, steps and learning rate.
    Gates lie in ``(0, max_gate)`` and start at 1, as B's do.

    Args:
        model: the frozen primary.
        data: its data; training uses the training split only.
        units: for each class, the units its gates may move (``{hook: indices}``); a class
            left out keeps all its gates at 1.
        config: the symbiote settings whose loss, steps and learning rate are used.
        seed: the batches' seed.

    Returns:
        ``{class: (n_units_total,) gates}``, hooks in ``model.hidden_hooks`` order.
    """
    config = config or SymbioteConfig()
    if config.mode != "gate":
        raise ConfigError("trained unit gates are multiplicative only; use mode='gate'")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    n_total = sum(model.unit_counts().values())
    mask = torch.zeros(model.n_classes, n_total, device=data.device)
    for digit, chosen in units.items():
        if not 0 <= digit < model.n_classes:
            raise ConfigError(f"class {digit} is not an output of the primary "
                              f"(0..{model.n_classes - 1})")
        mask[digit] = _unit_mask(model, chosen).to(data.device)
    raw = torch.zeros(model.n_classes, n_total, device=data.device, requires_grad=True)
    offset = _gate_offset(config.max_gate)

    def table() -> torch.Tensor:
        return 1.0 + mask * (config.max_gate * torch.sigmoid(raw + offset) - 1.0)

    generator = seed_everything(seed)
    classes = torch.tensor(data.classes, device=data.device)
    original = predict(model, data.train_images)
    optimizer = torch.optim.Adam([raw], lr=config.lr)
    for _ in range(config.steps):
        idx, labels, targets = inhibition_batch(data, classes, config.batch_size, generator)
        gates = table()[targets]
        logits = model.run_with_hooks(data.train_images[idx], fwd_hooks=gate_hooks(model, gates))
        loss = inhibition_loss(logits, targets, original[idx], labels, (gates - 1).abs(),
                               config.margin, config.sparsity, config.preservation)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        final = table()
    return {digit: final[digit].detach() for digit in units}
