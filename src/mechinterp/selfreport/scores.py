"""How well a prediction of neuron activations matches the activations: Pearson r and R².

Both are computed per neuron over every held-out position and then averaged over neurons, so a
neuron with many positions does not outweigh another. A constant prediction (the mean
predictor) has no correlation with anything; its Pearson r is reported as 0.
"""

from __future__ import annotations

import torch

from mechinterp.errors import ShapeError

__all__ = ["pearson_r", "r2_score", "score_predictions", "activation_drift"]


def _check(prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if prediction.shape != target.shape:
        raise ShapeError(f"prediction has shape {tuple(prediction.shape)} but the target has "
                         f"{tuple(target.shape)}; both must be (rows, n_neurons)")
    if prediction.ndim == 1:
        prediction, target = prediction[:, None], target[:, None]
    if prediction.ndim != 2 or len(prediction) < 2:
        raise ShapeError(f"scores need (rows, n_neurons) with at least 2 rows, got "
                         f"{tuple(prediction.shape)}")
    return prediction.detach().double().cpu(), target.detach().double().cpu()


def pearson_r(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per neuron, ``(rows, n_neurons) -> (n_neurons,)``.

    A column with no variance (a constant prediction) gets 0.

    Raises:
        ShapeError: the shapes differ or there are fewer than two rows.
    """
    prediction, target = _check(prediction, target)
    p = prediction - prediction.mean(0)
    t = target - target.mean(0)
    denom = p.norm(dim=0) * t.norm(dim=0)
    r = (p * t).sum(0) / denom.clamp(min=1e-300)
    return torch.where(denom > 1e-12, r, torch.zeros_like(r)).float()


def r2_score(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Coefficient of determination per neuron, ``1 - SS_res / SS_tot`` (can be negative).

    Raises:
        ShapeError: the shapes differ or there are fewer than two rows.
    """
    prediction, target = _check(prediction, target)
    ss_res = (target - prediction).pow(2).sum(0)
    ss_tot = (target - target.mean(0)).pow(2).sum(0).clamp(min=1e-12)
    return (1 - ss_res / ss_tot).float()


def score_predictions(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, object]:
    """``pearson_r`` and ``r2`` averaged over neurons, and both per neuron.

    Args:
        prediction: ``(rows, n_neurons)`` predicted activations.
        target: ``(rows, n_neurons)`` actual activations.
    """
    r = pearson_r(prediction, target)
    r2 = r2_score(prediction, target)
    return {"pearson_r": float(r.mean()), "r2": float(r2.mean()),
            "pearson_r_per_neuron": [round(float(x), 6) for x in r],
            "r2_per_neuron": [round(float(x), 6) for x in r2]}


def activation_drift(before: torch.Tensor, after: torch.Tensor) -> dict[str, object]:
    """How far fine-tuning moved the neurons: ``1 - r`` between the activations before and
    after training on the same positions (0: unchanged up to an affine map).

    Args:
        before: ``(rows, n_neurons)`` activations of the original model.
        after: ``(rows, n_neurons)`` activations of the fine-tuned model.

    Returns:
        ``drift`` (mean over neurons), ``correlation`` (mean ``r``), ``relative_change``
        (RMS of the change over the RMS of the original) and ``drift_per_neuron``.
    """
    r = pearson_r(after, before)
    b, a = before.detach().double().cpu(), after.detach().double().cpu()
    change = ((a - b).pow(2).mean() / b.pow(2).mean().clamp(min=1e-12)).sqrt()
    return {"drift": float((1 - r).mean()), "correlation": float(r.mean()),
            "relative_change": float(change),
            "drift_per_neuron": [round(float(1 - x), 6) for x in r]}
