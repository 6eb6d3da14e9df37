"""Building blocks shared by the transfer methods: features, alignment maps, probes,
calibration, and the wrapper module that adds a concept logit to a recipient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mechinterp.errors import ShapeError
from mechinterp.models import HookedClassifier
from mechinterp.transfer.context import TransferContext
from mechinterp.transfer.protocol import FALSE_POSITIVE_CAP

__all__ = [
    "Affine",
    "fit_regressor",
    "features",
    "penultimate_hook",
    "ridge_map",
    "orthogonal_procrustes",
    "logistic_probe",
    "calibrate_threshold",
    "ConceptLogit",
    "concept_override",
    "OpenSetGate",
    "gated",
    "copy_units",
    "set_concept_row",
    "importance_by_layer",
]


def penultimate_hook(model: HookedClassifier) -> str:
    """The hook of the last hidden layer (the features the output layer reads)."""
    return model.hidden_hooks[-1]


@torch.no_grad()
def features(model: HookedClassifier, images: torch.Tensor, hook: str,
             batch_size: int = 2048) -> torch.Tensor:
    """Activations at ``hook``, flattened: ``(batch, d)``."""
    model.eval()
    chunks = []
    for i in range(0, len(images), batch_size):
        _, cache = model.run_with_cache(images[i: i + batch_size], names_filter=hook)
        chunks.append(cache[hook].flatten(1))
    return torch.cat(chunks)


class Affine(nn.Module):
    """``x @ weight + bias`` with fixed (precomputed) parameters."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight.float())
        self.register_buffer("bias", bias.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight + self.bias


def fit_regressor(module: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  generator: torch.Generator, *, steps: int, lr: float = 1e-3,
                  weight_decay: float = 0.0, batch_size: int = 256) -> nn.Module:
    """Fit ``module(x) ~ y`` by mean squared error with Adam on random batches; eval mode."""
    optimizer = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            idx = torch.randint(0, len(x), (batch_size,), generator=generator).to(x.device)
            loss = ((module(x[idx]) - y[idx]) ** 2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return module.eval()


def ridge_map(x: torch.Tensor, y: torch.Tensor, ridge: float = 1e-2
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares affine map with an L2 penalty: ``y ~ x @ W + b``.

    Args:
        x: ``(n, d_in)`` source activations.
        y: ``(n, d_out)`` target activations for the same inputs.
        ridge: penalty, relative to the mean variance of ``x``.

    Returns:
        ``(W, b)`` with shapes ``(d_in, d_out)`` and ``(d_out,)``.
    """
    if x.shape[0] != y.shape[0]:
        raise ShapeError(f"ridge_map needs paired rows, got {x.shape[0]} and {y.shape[0]}")
    x = x.double()
    y = y.double()
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    scale = xc.pow(2).mean() * x.shape[0]
    gram = xc.T @ xc + ridge * scale * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    w = torch.linalg.solve(gram, xc.T @ yc)
    b = my - mx @ w
    return w.float(), b.float()


def orthogonal_procrustes(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The rotation ``R`` minimising ``||x @ R - y||`` (both ``(n, d)``, centred by the caller)."""
    if x.shape != y.shape:
        raise ShapeError(f"Procrustes needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    u, _, vh = torch.linalg.svd(x.double().T @ y.double())
    return (u @ vh).float()


def logistic_probe(x: torch.Tensor, positive: torch.Tensor, steps: int = 300,
                   weight_decay: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """A linear probe ``sigmoid(x @ w + b)`` for a boolean label, fit by L-BFGS.

    Returns:
        ``(w, b)`` in the coordinates of ``x``.
    """
    if positive.sum() == 0 or positive.all():
        raise ShapeError("a probe needs both positive and negative examples")
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    w = torch.zeros(x.shape[1], requires_grad=True, device=x.device)
    b = torch.zeros(1, requires_grad=True, device=x.device)
    target = positive.float()
    pos_weight = (1 - target).sum() / target.sum()
    optimizer = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(z @ w + b, target, pos_weight=pos_weight)
        loss = loss + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    w_raw = (w / std).detach()
    return w_raw, (b - (mean * w_raw).sum()).detach().squeeze()


def calibrate_threshold(negatives: torch.Tensor, max_false_positive: float = FALSE_POSITIVE_CAP
                        ) -> float:
    """The score threshold that lets through ``max_false_positive`` of the negatives.

    Negatives are images that must *not* be called the concept (the recipient's own images,
    donor images of other digits); the threshold is their ``1 - max_false_positive`` quantile.
    """
    return torch.quantile(negatives.detach().float(), 1 - max_false_positive).item()


class ConceptLogit(nn.Module):
    """A recipient plus a concept detector that can override its answer.

    The concept's logit becomes ``max(other logits) + sharpness * (score(x) - threshold)``,
    so the edited model answers the concept exactly when the detector's score passes the
    threshold, and otherwise answers as the recipient did.

    Args:
        recipient: the (possibly edited) recipient.
        concept: the concept digit.
        scorer: maps images ``(batch, 1, 28, 28)`` to scores ``(batch,)``.
        threshold: the calibrated decision threshold.
        sharpness: how steep the override is (only matters for soft outputs).
    """

    def __init__(self, recipient: nn.Module, concept: int, scorer: nn.Module, threshold: float,
                 sharpness: float = 10.0) -> None:
        super().__init__()
        self.recipient = recipient
        self.scorer = scorer
        self.concept = concept
        self.threshold = threshold
        self.sharpness = sharpness

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.recipient(x).clone()
        others = logits.clone()
        others[:, self.concept] = float("-inf")
        score = self.scorer(x)
        logits[:, self.concept] = (others.max(1).values
                                   + self.sharpness * (score - self.threshold))
        return logits


@torch.no_grad()
def set_concept_row(model: HookedClassifier, concept: int, weight: torch.Tensor,
                    bias: float | torch.Tensor) -> None:
    """Overwrite the output layer's row for ``concept``."""
    layer = model.output_layer
    if weight.shape != layer.weight[concept].shape:
        raise ShapeError(f"concept row must have shape {tuple(layer.weight[concept].shape)}, "
                         f"got {tuple(weight.shape)}")
    layer.weight[concept] = weight.to(layer.weight.device)
    layer.bias[concept] = torch.as_tensor(bias, device=layer.bias.device)


@torch.no_grad()
def copy_units(target: HookedClassifier, source: HookedClassifier, layer: str,
               units: torch.Tensor) -> None:
    """Copy the incoming weights and biases of ``units`` of ``layer`` from source to target."""
    t, s = target.get_submodule(layer), source.get_submodule(layer)
    idx = units.to(t.weight.device).long()
    t.weight[idx] = s.weight[idx]
    t.bias[idx] = s.bias[idx]


@torch.no_grad()
def importance_by_layer(model: HookedClassifier, concept: int) -> dict[str, torch.Tensor]:
    """Weight-magnitude importance of every hidden unit for the concept's output row.

    The last hidden layer's units get ``|w_out[concept]|``; each earlier layer's units get
    the importance of the next layer pushed back through ``|W|`` (a path-strength score).
    Keys are the fully connected layer names (``fc1``...); convolutions are not scored.
    """
    layers = [h.rsplit(".", 1)[0] for h in model.hidden_hooks if h.startswith("fc")]
    scores = {}
    current = model.output_layer.weight[concept].abs()
    for i in range(len(layers) - 1, -1, -1):
        scores[layers[i]] = current.clone()
        if i > 0:
            current = model.get_submodule(layers[i]).weight.abs().T @ current
    return scores


class OpenSetGate(nn.Module):
    """``score(x) - relu(max_{d in own digits} logit_A(x)[d])``: a detector's score less A's
    evidence for its own best digit (the protocol's ``"open-set"`` gate)."""

    def __init__(self, scorer: nn.Module, recipient: nn.Module, own_digits: tuple[int, ...]
                 ) -> None:
        super().__init__()
        self.scorer, self.recipient, self.own_digits = scorer, recipient, list(own_digits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        own = self.recipient(x)[:, self.own_digits].max(1).values
        return self.scorer(x) - own.clamp_min(0)


def concept_override(recipient: nn.Module, concept: int, scorer: nn.Module,
                     negatives: torch.Tensor, max_false_positive: float = FALSE_POSITIVE_CAP
                     ) -> ConceptLogit:
    """Wrap ``recipient`` so ``concept`` wins where ``scorer`` passes a threshold calibrated to
    let through ``max_false_positive`` of ``negatives``."""
    with torch.no_grad():
        threshold = calibrate_threshold(scorer(negatives), max_false_positive)
    return ConceptLogit(recipient, concept, scorer, threshold).eval()


def override_concept(ctx: TransferContext, scorer: nn.Module, *, concept: int | None = None,
                     recipient: nn.Module | None = None,
                     negatives: torch.Tensor | None = None) -> ConceptLogit:
    """The one calibration rule, for every method and baseline that adds a detector.

    The detector's score goes through the protocol's gate (:class:`OpenSetGate` when it is
    ``"open-set"``, reading the context's copy of A, which a method that adds a
    detector leaves unedited) and its threshold lets
    through :data:`~mechinterp.transfer.protocol.FALSE_POSITIVE_CAP` of the calibration
    negatives (:meth:`TransferContext.calibration_negatives`).

    Args:
        ctx: the method's context.
        scorer: images -> concept scores.
        concept: the digit the override adds (default: the protocol's concept).
        recipient: the model to wrap (default: the context's copy of A; a method adding a
            second concept wraps its first override).
        negatives: calibration negatives (default: those of ``concept``).
    """
    concept = ctx.protocol.concept if concept is None else concept
    recipient = ctx.recipient if recipient is None else recipient
    if negatives is None:
        negatives = ctx.calibration_negatives((concept,))
    return concept_override(recipient, concept, gated(ctx, scorer), negatives)


def gated(ctx: TransferContext, scorer: nn.Module) -> nn.Module:
    """``scorer`` through the protocol's gate: as it is (``"closed-set"``), or less A's
    evidence for its own best digit (``"open-set"``, :class:`OpenSetGate`)."""
    if ctx.protocol.gate == "open-set":
        return OpenSetGate(scorer, ctx.recipient, ctx.protocol.recipient_digits)
    return scorer
