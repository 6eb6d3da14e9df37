"""How well an inhibitor works, and how polysemantic a primary is.

An *inhibitor* is anything that turns a class to inhibit into forward hooks on the primary:
the symbiote, or one of the baselines. :func:`evaluate_inhibition` measures it on the test
split with the metrics the project reports everywhere:

* ``target_output_rate``: share of *all* test images for which the primary now outputs the
  inhibited class (goal 0);
* ``nontarget_accuracy`` and ``baseline_nontarget_accuracy``: accuracy on the images of the
  other classes with and without the inhibitor, and their difference
  ``nontarget_accuracy_drop`` (goal: at most half a point);
* ``confusion``: where the images of the inhibited class go instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from mechinterp.ablation import per_unit
from mechinterp.data import DigitData
from mechinterp.errors import ConfigError
from mechinterp.models import HookedClassifier
from mechinterp.symbiote.network import Symbiote
from mechinterp.train import predict, selectivity_index

__all__ = [
    "evaluate_inhibition",
    "changed_units",
    "class_means",
    "unit_class_entropy",
    "unit_class_count",
    "selectivity_index",
    "class_sharing",
    "jaccard",
    "summarise",
]


@torch.no_grad()
def evaluate_inhibition(
    model: HookedClassifier, data: DigitData, digit: int, fwd_hooks: list, *,
    split: str = "test", before: torch.Tensor | None = None
) -> dict[str, object]:
    """Metrics of inhibiting ``digit`` with ``fwd_hooks`` on one split (``"test"``, or
    ``"train"`` for choices that must not look at the test images).

    Hooks that hold one value per image must have been built for that split's size.
    ``before``: the primary's own predictions on that split, when the caller has them.
    """
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    model.eval()
    images, labels = ((data.test_images, data.test_labels) if split == "test"
                      else (data.train_images, data.train_labels))
    before = predict(model, images) if before is None else before
    after = model.run_in_chunks(images, fwd_hooks).argmax(-1)
    other = labels != digit
    of_digit = labels == digit
    base = (before[other] == labels[other]).float().mean().item()
    now = (after[other] == labels[other]).float().mean().item()
    moved = after[of_digit]
    confusion = {int(c): (moved == c).float().mean().item() for c in moved.unique()}
    return {
        "digit": int(digit),
        "target_output_rate": (after == digit).float().mean().item(),
        "target_output_rate_before": (before == digit).float().mean().item(),
        "nontarget_accuracy": now,
        "baseline_nontarget_accuracy": base,
        "nontarget_accuracy_drop": base - now,
        "confusion": dict(sorted(confusion.items())),
    }


@torch.no_grad()
def changed_units(symbiote: Symbiote, digit: int, threshold: float | None = None
                  ) -> dict[str, torch.Tensor]:
    """Indices of the units whose modulation for ``digit`` leaves the identity by > threshold.

    Returns:
        ``{hook_name: (n_changed,) int64}``.
    """
    threshold = symbiote.config.change_threshold if threshold is None else threshold
    out = {}
    for name, (gate, shift) in symbiote.table([digit]).items():
        deviation = (gate[0] - 1).abs() + shift[0].abs()
        out[name] = torch.nonzero(deviation > threshold).flatten().cpu()
    return out


ClassMeans = dict[str, torch.Tensor]
"""``{hook: (n_classes, n_units)}`` class-conditional mean activations (:func:`class_means`)."""


@torch.no_grad()
def class_means(model: HookedClassifier, data: DigitData) -> ClassMeans:
    """``{hook: (n_classes, n_units)}`` mean (spatially averaged) activation of every hidden
    unit on the training images of each class: one forward pass over the training images,
    which the per-unit measures below can share (their ``means`` argument)."""
    _, cache = model.run_with_cache(data.train_images, names_filter=lambda n: n in
                                    model.hidden_hooks)
    return {name: torch.stack([per_unit(cache[name])[data.train_labels == c].mean(0)
                               for c in data.classes]) for name in model.hidden_hooks}


@torch.no_grad()
def unit_class_entropy(model: HookedClassifier, data: DigitData, *,
                       means: ClassMeans | None = None) -> dict[str, torch.Tensor]:
    """Normalised entropy of each unit's class-conditional mean activation, in ``[0, 1]``.

    For unit ``u`` let ``m_c`` be its mean (spatially averaged) activation on the training
    images of class ``c``, and ``p_c`` proportional to ``m_c - min(m)``: how much more the unit
    answers to each class than to the class it answers to least (this also works for units
    that take negative values, such as those of a mixed basis). The entropy of ``p`` divided
    by ``log(n_classes)`` is near 0 for a unit that answers to one class and near 1 for a unit
    whose answer is spread over all of them. Units with the same mean on every class get
    ``nan``.
    """
    out = {}
    for name, by_class in (means or class_means(model, data)).items():
        above = by_class - by_class.min(0, keepdim=True).values
        total = above.sum(0, keepdim=True)
        p = above / total.clamp_min(1e-12)
        entropy = -(p * p.clamp_min(1e-12).log()).sum(0) / math.log(len(data.classes))
        entropy[total[0] <= 1e-9] = float("nan")
        out[name] = entropy.cpu()
    return out


@torch.no_grad()
def unit_class_count(model: HookedClassifier, data: DigitData, *,
                     means: ClassMeans | None = None) -> dict[str, torch.Tensor]:
    """How many classes each unit answers to: the number of classes ``c`` whose
    class-conditional mean ``m_c`` (spatially averaged, training images) is at least half way
    from the unit's weakest class to its strongest, ``m_c - min(m) >= (max(m) - min(m)) / 2``.

    A unit tuned to one digit counts 1; a unit that answers about equally to every digit counts
    all of them but its weakest (9 of 10), the most there can be, since the weakest class is
    the zero point. Measured against the weakest class, as :func:`unit_class_entropy` is, so
    units of a mixed basis (negative values) are read the same way. Units with the same mean on
    every class get ``nan``. This is the per-unit polysemanticity the SymbioteNet pages report
    (``polysemanticity`` is its mean over all hidden units).
    """
    out = {}
    for name, by_class in (means or class_means(model, data)).items():
        above = by_class - by_class.min(0, keepdim=True).values
        top = above.max(0).values
        count = (above >= top / 2).sum(0).float()
        count[top <= 1e-9] = float("nan")
        out[name] = count.cpu()
    return out


@torch.no_grad()
def class_sharing(model: HookedClassifier, data: DigitData, *,
                  means: ClassMeans | None = None) -> dict[str, dict[str, float]]:
    """How much the classes have to share each layer's units.

    Per hidden hook, from the ``(n_classes, n_units)`` matrix of class-conditional mean
    activations:

    * ``classes_without_own_unit``: classes that are not the strongest response of any unit;
    * ``max_class_cosine``: the largest cosine similarity between two classes' mean activation
      patterns (after removing the mean over classes), i.e. how close the two most confusable
      classes sit in that layer.
    """
    classes = list(data.classes)
    out = {}
    for name, by_class in (means or class_means(model, data)).items():
        owners = set(by_class.argmax(0)[by_class.max(0).values > 0].tolist())
        centred = by_class - by_class.mean(0)
        centred = centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-12)
        cosine = centred @ centred.T
        off_diagonal = cosine[~torch.eye(len(classes), dtype=torch.bool, device=cosine.device)]
        out[name] = {"classes_without_own_unit": float(len(classes) - len(owners)),
                     "max_class_cosine": off_diagonal.max().item()}
    return out


def jaccard(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Jaccard overlap of two unit sets given as ``{hook: indices}`` (1.0 when both empty)."""
    set_a = {(k, int(i)) for k, v in a.items() for i in v}
    set_b = {(k, int(i)) for k, v in b.items() for i in v}
    if not set_a and not set_b:
        return 1.0
    return len(set_a & set_b) / len(set_a | set_b)


def summarise(rows: Sequence[dict[str, object]]) -> dict[str, float]:
    """Mean of each numeric metric over per-digit rows."""
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and k != "digit"]
    return {k: sum(float(r[k]) for r in rows) / len(rows) for k in keys}
