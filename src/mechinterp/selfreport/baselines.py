"""What a self-report has to beat, scored on exactly the same held-out positions.

* :func:`mean_baseline`: the training mean everywhere (R² about 0, no correlation);
* :func:`token_lookup_baseline`: the mean training activation of the current token (unseen
  tokens get the overall mean): how far the token alone goes;
* :func:`linear_probe_baseline`: ridge regression, in closed form, from the frozen model's
  residual stream to the activations, its penalty chosen on documents held out of the train
  split. Read at the same place as the heads, it is what the ``head`` strategy could at best
  reach with a linear readout and no change to the model;
* :func:`mlp_probe_baseline`: a small nonlinear probe (layer norm, one GELU layer, a linear
  readout) trained on the frozen model's stream at the same point, its stopping step chosen on
  held-out train documents. At a read point just before the neurons' MLP, the neurons are
  themselves a layer norm, a linear map and a GELU of that stream, so this probe has the
  capacity to compute them outright: it is the strong outside reader a self-report must beat
  before it shows anything the model knows about itself;
* :func:`cross_prediction_baseline`: a *different* model with the same head, trained the
  same way to predict *this* model's neurons. Binder et al. (2024) call a model introspective
  when it predicts itself better than another model trained on its behaviour does; here the
  other model has seen the same tokens and labels, so any advantage of self-prediction comes
  from having the neuron inside.

Every function returns a :class:`BaselineResult` whose prediction lines up with
:meth:`ActivationDataset.flat_targets` of the test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mechinterp.errors import ConfigError
from mechinterp.selfreport.dataset import ActivationDataset
from mechinterp.selfreport.predictor import ActivationPredictor
from mechinterp.selfreport.scanner import model_device
from mechinterp.selfreport.scores import score_predictions
from mechinterp.selfreport.trainer import PredictorTrainer, train_predictor

__all__ = ["BaselineResult", "mean_baseline", "token_lookup_baseline", "linear_probe_baseline",
           "mlp_probe_baseline", "cross_prediction_baseline", "residual_features"]


@dataclass
class BaselineResult:
    """A baseline's test predictions and scores.

    Attributes:
        name: the baseline.
        prediction: ``(rows, n_neurons)`` on the test split's example positions.
        scores: :func:`~mechinterp.selfreport.scores.score_predictions` against the frozen
            targets, plus ``n_rows``.
        details: anything else worth recording (the ridge penalty, the other model...).
    """

    name: str
    prediction: torch.Tensor
    scores: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)


def _result(name: str, dataset: ActivationDataset, prediction: torch.Tensor,
            **details: Any) -> BaselineResult:
    scores = score_predictions(prediction, dataset.flat_targets("test"))
    scores["n_rows"] = len(prediction)
    return BaselineResult(name, prediction, scores, details)


def mean_baseline(dataset: ActivationDataset) -> BaselineResult:
    """Predict every neuron's training mean at every test position."""
    mean = dataset.flat_targets("train").mean(0)
    n_rows = len(dataset.flat_targets("test"))
    return _result("mean", dataset, mean.expand(n_rows, -1).clone())


def token_lookup_baseline(dataset: ActivationDataset) -> BaselineResult:
    """Predict the mean training activation of the current token."""
    train, test = dataset.examples("train"), dataset.examples("test")
    vocab = int(torch.cat([train["token"], test["token"]]).max()) + 1
    n = train["target"].shape[1]
    sums = torch.zeros(vocab, n).index_add_(0, train["token"], train["target"])
    counts = torch.bincount(train["token"], minlength=vocab).float()[:, None]
    table = torch.where(counts > 0, sums / counts.clamp(min=1), train["target"].mean(0))
    unseen = int((counts[test["token"]] == 0).sum())
    return _result("token_lookup", dataset, table[test["token"]], unseen_test_rows=unseen)


@torch.no_grad()
def residual_features(model: torch.nn.Module, tokens: torch.Tensor, hook: str,
                      first_position: int = 1, batch_size: int = 32) -> torch.Tensor:
    """``(rows, d_model)`` activations of a hook at every example position (document-major)."""
    found: dict[str, torch.Tensor] = {}

    def keep(act: torch.Tensor, hook: Any) -> torch.Tensor:
        found["x"] = act
        return act

    out = []
    for i in range(0, len(tokens), batch_size):
        model.run_with_hooks(tokens[i:i + batch_size].to(model_device(model)),
                             fwd_hooks=[(hook, keep)])
        x = found["x"][:, first_position:]
        out.append(x.reshape(-1, x.shape[-1]).double().cpu())
    return torch.cat(out)


def _ridge(x: torch.Tensor, y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and intercept of ridge regression (penalty ``alpha * rows``) on centred data."""
    mx, my = x.mean(0), y.mean(0)
    xc = x - mx
    gram = xc.T @ xc + alpha * len(x) * torch.eye(x.shape[1], dtype=x.dtype)
    w = torch.linalg.solve(gram, xc.T @ (y - my))
    return w, my - mx @ w


def linear_probe_baseline(model: torch.nn.Module, dataset: ActivationDataset, hook: str, *,
                          alphas: Sequence[float] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
                          validation_fraction: float = 0.2) -> BaselineResult:
    """Ridge regression from the frozen model's activations at ``hook`` to the neurons.

    Args:
        model: the original (unmodified) model.
        dataset: the activation dataset.
        hook: where to read, e.g. ``blocks.1.hook_resid_mid``.
        alphas: penalties tried (relative to the number of rows).
        validation_fraction: share of the train documents used to choose the penalty; the
            probe is then refit on the whole train split.

    Raises:
        ConfigError: no penalty given or a bad validation fraction.
    """
    if not alphas:
        raise ConfigError("alphas must hold at least one ridge penalty")
    x, y, cut = _train_features(model, dataset, hook, validation_fraction)
    first = dataset.first_position
    val_r2 = {}
    for alpha in alphas:
        w, b = _ridge(x[:cut], y[:cut], alpha)
        val_r2[alpha] = score_predictions(x[cut:] @ w + b, y[cut:])["r2"]
    best = max(alphas, key=lambda a: val_r2[a])
    w, b = _ridge(x, y, best)
    test = residual_features(model, dataset.split("test")[0], hook, first)
    return _result("linear_probe", dataset, (test @ w + b).float(), hook=hook, alpha=best,
                   validation_r2={str(a): round(v, 6) for a, v in val_r2.items()})


def _train_features(model: torch.nn.Module, dataset: ActivationDataset, hook: str,
                    validation_fraction: float) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Train-split features and targets at ``hook`` and the row where the validation
    documents (the last ``validation_fraction`` of them, whole documents) begin."""
    if not 0 < validation_fraction < 1:
        raise ConfigError(f"validation_fraction must lie in (0, 1), got {validation_fraction}")
    train_tokens, train_targets = dataset.split("train")
    first = dataset.first_position
    x = residual_features(model, train_tokens, hook, first)
    y = train_targets[:, first:].reshape(-1, len(dataset.neurons)).double()
    per_doc = train_tokens.shape[1] - first
    n_val_docs = max(1, round(len(train_tokens) * validation_fraction))
    return x, y, (len(train_tokens) - n_val_docs) * per_doc


def mlp_probe_baseline(model: torch.nn.Module, dataset: ActivationDataset, hook: str, *,
                       hidden: int = 64, steps: int = 500, lr: float = 1e-2,
                       validation_fraction: float = 0.2, seed: int = 0) -> BaselineResult:
    """A small nonlinear probe from the frozen model's activations at ``hook`` to the neurons.

    ``LayerNorm -> Linear(d_model, hidden) -> GELU -> Linear(hidden, n_neurons)``, trained
    full-batch with AdamW on squared error of the standardised targets, on the train split
    less its last ``validation_fraction`` of documents; the step kept is the one with the
    best validation R² (checked every 50 steps).

    Args:
        model: the original (unmodified) model.
        dataset: the activation dataset.
        hook: where to read.
        hidden: width of the hidden layer.
        steps: most optimiser steps.
        lr: AdamW learning rate.
        validation_fraction: share of the train documents that chooses the step.
        seed: initialisation.

    Raises:
        ConfigError: a bad width, step count or validation fraction.
    """
    if hidden < 1 or steps < 1:
        raise ConfigError(f"hidden and steps must be at least 1, got {hidden} and {steps}")
    x, y, cut = _train_features(model, dataset, hook, validation_fraction)
    x, y = x.float(), y.float()
    mean, std = y[:cut].mean(0), y[:cut].std(0).clamp(min=1e-6)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = torch.nn.Sequential(torch.nn.LayerNorm(x.shape[1]),
                                    torch.nn.Linear(x.shape[1], hidden), torch.nn.GELU(),
                                    torch.nn.Linear(hidden, y.shape[1]))
    opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=0.0)
    target = (y[:cut] - mean) / std
    best_r2, best_step, best_state = -float("inf"), 0, None
    for step in range(1, steps + 1):
        loss = torch.nn.functional.mse_loss(probe(x[:cut]), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps:
            with torch.no_grad():
                r2 = score_predictions(probe(x[cut:]) * std + mean, y[cut:])["r2"]
            if r2 > best_r2:
                best_r2, best_step = r2, step
                best_state = {k: v.clone() for k, v in probe.state_dict().items()}
    probe.load_state_dict(best_state)
    test = residual_features(model, dataset.split("test")[0], hook,
                             dataset.first_position).float()
    with torch.no_grad():
        prediction = probe(test) * std + mean
    return _result("mlp_probe", dataset, prediction, hook=hook, hidden=hidden,
                   step=best_step, validation_r2=round(best_r2, 6))


def cross_prediction_baseline(other: torch.nn.Module, dataset: ActivationDataset, head: str,
                              trainer_settings: dict[str, Any], run: dict[str, Any], *,
                              n_bins: int = 10, tokenizer: Any = None,
                              read_hook: str | None = None,
                              bin_tokens: torch.Tensor | None = None,
                              retrain: bool = False) -> BaselineResult:
    """Train another model, with the same head and strategy, to report this model's neurons.

    The other model trains with the same settings except ``anchor_weight``, which is set to
    0: the anchor keeps a model's own reported neurons in place, and the other model's
    neurons are not the ones reported.

    Args:
        other: the other model (trained in place; pass a copy to keep the original).
        dataset: targets of *this* model.
        head: the head type.
        trainer_settings: keyword arguments of :class:`PredictorTrainer` (strategy, steps...).
        run: cache description of the other model and the data (see :func:`train_predictor`).
        n_bins, tokenizer, read_hook, bin_tokens: as for
            :meth:`ActivationPredictor.for_dataset`.
        retrain: ignore a cached predictor.
    """
    predictor = ActivationPredictor.for_dataset(other, dataset, head, n_bins=n_bins,
                                                tokenizer=tokenizer, read_hook=read_hook,
                                                bin_tokens=bin_tokens,
                                                seed=trainer_settings.get("seed", 0))
    # The anchor holds a model's *own* reported neurons at their original values. The other
    # model's neurons at the same indices are unrelated units; anchoring them to this model's
    # targets would train the outsider to grow a copy of the neuron. It trains without one.
    settings = {**trainer_settings, "anchor_weight": 0.0}
    trainer = PredictorTrainer(predictor, dataset, **settings)
    trained = train_predictor(trainer, {**run, "role": "cross"}, retrain=retrain)
    prediction, _ = trainer.predict("test")
    return _result(f"cross_prediction/{head}", dataset, prediction, head=head,
                   train_seconds=trained["train_seconds"], cached=trained["cached"])
