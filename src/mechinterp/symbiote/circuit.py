"""Reading the primary's circuitry off a trained symbiote.

* :func:`circuit_map`: for every class, how far B moves each unit's gate from 1, per layer (a
  classes x units matrix per hook), the raw material of the circuit-map heatmaps.
* :func:`overlap_matrix`: Jaccard overlap between the unit sets B changes for each pair of
  classes: do classes share inhibition circuitry?
* :func:`causal_check`: mean-ablate only the units B *suppresses* for a class, without B, and
  measure how much the class is suppressed; compared with as many random units.
* :func:`fold_gates`: write B's gates for a class into a copy of A's weights (a gate ``g`` on a
  post-ReLU unit equals scaling that unit's incoming weights and bias by ``g``, since
  ``g * relu(z) = relu(g * z)`` for ``g >= 0``), which gives the per-class weight difference
  of the weight-inhibition view.
"""

from __future__ import annotations

import copy

import torch

from mechinterp.data import DigitData
from mechinterp.errors import ConfigError
from mechinterp.models import HookedClassifier
from mechinterp.symbiote.baselines import all_unit_means, mean_ablation_hooks
from mechinterp.symbiote.metrics import changed_units, evaluate_inhibition, jaccard
from mechinterp.symbiote.network import Symbiote

__all__ = ["circuit_map", "overlap_matrix", "causal_check", "fold_gates", "weight_diff"]


@torch.no_grad()
def circuit_map(symbiote: Symbiote, classes: list[int]) -> dict[str, torch.Tensor]:
    """``{hook: (len(classes), n_units)}`` gate minus 1 (negative = suppressed)."""
    return {name: (gate - 1).cpu() for name, (gate, _) in symbiote.table(classes).items()}


def overlap_matrix(symbiote: Symbiote, classes: list[int]) -> torch.Tensor:
    """``(len(classes), len(classes))`` Jaccard overlap of the changed-unit sets."""
    sets = [changed_units(symbiote, c) for c in classes]
    n = len(classes)
    out = torch.zeros(n, n)
    for i in range(n):
        for j in range(n):
            out[i, j] = jaccard(sets[i], sets[j])
    return out


@torch.no_grad()
def suppressed_units(symbiote: Symbiote, digit: int) -> dict[str, torch.Tensor]:
    """Units whose gate for ``digit`` is below ``1 - change_threshold``."""
    threshold = symbiote.config.change_threshold
    return {name: torch.nonzero(gate[0] < 1 - threshold).flatten().cpu()
            for name, (gate, _) in symbiote.table([digit]).items()}


@torch.no_grad()
def causal_check(
    model: HookedClassifier,
    symbiote: Symbiote,
    data: DigitData,
    digit: int,
    *,
    n_random: int = 5,
    seed: int = 0,
    means: dict[str, torch.Tensor] | None = None,
) -> dict[str, float]:
    """Mean-ablate B's suppressed units for ``digit`` without B; compare with random units.

    Returns:
        ``digit_accuracy_before``, ``digit_accuracy_ablated`` (accuracy on the digit's test
        images after ablating B's units), ``digit_accuracy_random`` (mean over ``n_random``
        random unit sets of the same size per layer), ``nontarget_drop_ablated`` and
        ``n_units``. ``means`` (from :func:`all_unit_means` on the training images) can be
        passed to avoid recomputing them for every digit.
    """
    units = suppressed_units(symbiote, digit)
    means = means or all_unit_means(model, data.train_images)
    result = evaluate_inhibition(model, data, digit, mean_ablation_hooks(units, means))
    of_digit = data.test_labels == digit
    before = (model(data.test_images[of_digit]).argmax(-1) == digit).float().mean().item()
    ablated = result["confusion"].get(int(digit), 0.0)
    generator = torch.Generator().manual_seed(seed)
    sizes = model.unit_counts()
    random_scores = []
    for _ in range(n_random):
        rand_units = {name: torch.randperm(sizes[name], generator=generator)[: len(idx)]
                      for name, idx in units.items()}
        rand = evaluate_inhibition(model, data, digit, mean_ablation_hooks(rand_units, means))
        random_scores.append(rand["confusion"].get(int(digit), 0.0))
    return {
        "n_units": int(sum(len(v) for v in units.values())),
        "digit_accuracy_before": before,
        "digit_accuracy_ablated": ablated,
        "digit_accuracy_random": sum(random_scores) / len(random_scores),
        "nontarget_drop_ablated": result["nontarget_accuracy_drop"],
    }


@torch.no_grad()
def fold_gates(model: HookedClassifier, symbiote: Symbiote, digit: int) -> HookedClassifier:
    """A copy of ``model`` whose weights implement B's gates for ``digit`` with no hooks.

    Raises:
        ConfigError: the symbiote also shifts activations (``film`` mode), which does not
            fold exactly into the same layer's weights.
    """
    if symbiote.config.mode != "gate":
        raise ConfigError("only gate-mode symbiotes fold exactly into the primary's weights; "
                          "train with SymbioteConfig(mode='gate')")
    folded = copy.deepcopy(model)
    for name, (gate, _) in symbiote.table([digit]).items():
        layer = folded.get_submodule(name.rsplit(".", 1)[0])
        g = gate[0].to(layer.weight.device)
        layer.weight.mul_(g.view(-1, *[1] * (layer.weight.dim() - 1)))
        layer.bias.mul_(g)
    return folded


def weight_diff(original: HookedClassifier, folded: HookedClassifier) -> dict[str, torch.Tensor]:
    """``{layer weight name: folded - original}`` for every weight that changed."""
    before = dict(original.named_parameters())
    out = {}
    for name, param in folded.named_parameters():
        if name.endswith("weight"):
            diff = (param - before[name]).detach().cpu()
            if diff.abs().max() > 0:
                out[name] = diff
    return out
