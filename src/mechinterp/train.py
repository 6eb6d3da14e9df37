"""Training and evaluating the MNIST classifiers, with a resumable checkpoint cache.

The whole data set stays on the device and batches are slices of a shuffled index, which on
one CPU core is far faster than a ``DataLoader`` over in-memory tensors (see
``benchmarks/bench_training.py``). :func:`train_classifier` is the entry point most code wants:
it trains a registered architecture on some digits, or loads the identical run from the cache.
While it trains it saves a partial checkpoint after every epoch, so an interrupted run resumes
where it stopped and ends bit-for-bit where an uninterrupted one would.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mechinterp import __version__
from mechinterp.ablation import per_unit
from mechinterp.checkpoints import (
    cache_lock,
    checkpoint_key,
    checkpoint_paths,
    load_checkpoint,
    save_checkpoint,
    source_digest,
)
from mechinterp.config import Profile, get_profile, seed_everything
from mechinterp.data import DigitData, load_digits, parse_classes
from mechinterp.errors import ConfigError
from mechinterp.models import EVAL_CHUNK, HookedClassifier, build_model

__all__ = [
    "TrainConfig",
    "TrainedClassifier",
    "fit",
    "predict",
    "accuracy",
    "accuracy_by_class",
    "train_classifier",
    "progress_enabled",
    "selectivity_index",
    "classifier_spec",
    "load_or_build",
]


@dataclass(frozen=True)
class TrainConfig:
    """How a classifier is trained. Validated at construction.

    Attributes:
        epochs: passes over the training set.
        batch_size: images per optimiser step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        selectivity_penalty: weight of the mean class selectivity index of the hidden linear
            layers' units (:func:`selectivity_index`, per batch) added to the loss: a positive
            value trains units that answer to many classes instead of one (Leavitt & Morcos,
            2021, regularise selectivity the same way). 0 (the default) trains on
            cross-entropy alone.
    """

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    selectivity_penalty: float = 0.0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ConfigError(f"TrainConfig.lr must be positive, got {self.lr!r}")
        for name in ("weight_decay", "selectivity_penalty"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ConfigError(f"TrainConfig.{name} must be a number >= 0, got {value!r}")

    @classmethod
    def from_profile(cls, profile: Profile | None = None, **overrides: Any) -> TrainConfig:
        """The profile's training sizes, with optional overrides."""
        profile = profile or get_profile()
        values = {"epochs": profile.epochs, "batch_size": profile.batch_size, "lr": profile.lr}
        values.update(overrides)
        return cls(**values)


def selectivity_index(acts: torch.Tensor, labels: torch.Tensor, eps: float = 1e-6
                      ) -> torch.Tensor:
    """Class selectivity index of each unit on a batch (Leavitt & Morcos, 2021), differentiable.

    With ``mu_max`` the largest class-conditional mean activation of a unit over the classes
    present in ``labels`` and ``mu_rest`` the mean of the other classes' means,
    ``(mu_max - mu_rest) / (mu_max + mu_rest + eps)``: 0 for a unit that answers every class
    equally, 1 for one that answers a single class. Meant for non-negative (post-ReLU)
    activations.

    Args:
        acts: ``(batch, units, ...)``; spatial axes are averaged.
        labels: ``(batch,)`` class indices; at least two classes must be present.

    Returns:
        ``(units,)``.

    Raises:
        ConfigError: fewer than two classes in ``labels``, or mismatched batch sizes.
    """
    acts = per_unit(acts)
    if acts.shape[0] != labels.shape[0]:
        raise ConfigError(f"selectivity_index: {acts.shape[0]} activations but "
                          f"{labels.shape[0]} labels")
    present = labels.unique()
    if len(present) < 2:
        raise ConfigError("selectivity_index needs images of at least two classes in the batch")
    onehot = (labels[:, None] == present[None, :]).to(acts.dtype)  # (batch, classes)
    means = (onehot.T @ acts) / onehot.sum(0)[:, None]  # (classes, units)
    top = means.max(0).values
    rest = (means.sum(0) - top) / (len(present) - 1)
    return (top - rest) / (top + rest + eps)


def _penalised(model: nn.Module, penalty: float):
    """A loss ``(images, labels) -> (logits, loss)``: cross-entropy, plus ``penalty`` times the
    mean selectivity index of the hidden linear layers' units when ``penalty`` is positive
    (and the batch holds two classes or more)."""
    if not penalty:
        def plain(images, labels):
            logits = model(images)
            return logits, F.cross_entropy(logits, labels)
        return plain
    names = [n for n in model.hidden_hooks if n.startswith("fc")]
    if not names:
        raise ConfigError(f"selectivity_penalty needs hidden linear layers; "
                          f"{getattr(model, 'arch', type(model).__name__)} has none")

    def penalised(images, labels):
        if len(labels.unique()) < 2:  # a last short batch of one class: nothing to compare
            logits = model(images)
            return logits, F.cross_entropy(logits, labels)
        acts: list[torch.Tensor] = []
        logits = model.run_with_hooks(images, fwd_hooks=[(n, lambda a, hook: acts.append(a))
                                                         for n in names])
        selectivity = torch.cat([selectivity_index(a, labels) for a in acts]).mean()
        return logits, F.cross_entropy(logits, labels) + penalty * selectivity
    return penalised


def progress_enabled() -> bool:
    """Progress bars are on unless ``$MECHINTERP_PROGRESS`` is ``0``."""
    return os.environ.get("MECHINTERP_PROGRESS", "1") != "0"


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = EVAL_CHUNK
            ) -> torch.Tensor:
    """Predicted class of each image, ``(batch, 1, 28, 28) -> (batch,)``, in eval mode."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(images[i : i + batch_size]).argmax(-1)
                     for i in range(0, len(images), batch_size)])
    model.train(was_training)
    return out


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images classified correctly (``nan`` for an empty set)."""
    if len(labels) == 0:
        return float("nan")
    return (predict(model, images) == labels).float().mean().item()


def accuracy_by_class(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> dict[int, float]:
    """Accuracy on the images of each class present in ``labels``."""
    preds = predict(model, images)
    return {int(c): (preds[labels == c] == c).float().mean().item() for c in labels.unique()}


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    tensors = {}
    for idx, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value)
    return tensors


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    full = optimizer.state_dict()
    full["state"] = state
    optimizer.load_state_dict(full)


@dataclass
class _Resume:
    """Where to keep a partial checkpoint of a run in progress."""

    weights: Path
    sidecar: Path
    key: str


def fit(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    generator: torch.Generator,
    *,
    desc: str = "training",
    resume: _Resume | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` with Adam and cross-entropy (plus the config's selectivity penalty,
    when it has one) on device-resident tensors.

    Args:
        model: the classifier; trained in place.
        images: ``(batch, 1, 28, 28)`` on the model's device.
        labels: ``(batch,)`` class indices.
        config: epochs, batch size, learning rate, weight decay, selectivity penalty.
        generator: CPU generator that orders the batches (seeded by the caller).
        desc: label of the progress bar.
        resume: partial-checkpoint location; when given, progress is saved after every epoch
            and a matching partial checkpoint is picked up where it stopped.

    Returns:
        One dict per epoch with ``loss`` (mean training loss) and ``train_accuracy``.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    history: list[dict[str, float]] = []
    start = 0
    if resume is not None:
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        found = load_checkpoint(resume.weights, resume.sidecar, resume.key)
        if found is not None:
            tensors, meta = found
            model_tensors = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
            if {k: tuple(v.shape) for k, v in model_tensors.items()} == shapes:
                model.load_state_dict(model_tensors)
                _restore_optimizer(optimizer, tensors)
                generator.set_state(tensors["rng.generator"])
                history = list(meta["history"])
                start = int(meta["epochs_done"])
    n = len(labels)
    device = images.device
    loss_of = _penalised(model, config.selectivity_penalty)
    model.train()
    bar = tqdm(range(start, config.epochs), desc=desc, initial=start, total=config.epochs,
               disable=not progress_enabled(), leave=False)
    for epoch in bar:
        order = torch.randperm(n, generator=generator).to(device)
        total_loss, correct = 0.0, 0
        for i in range(0, n, config.batch_size):
            idx = order[i : i + config.batch_size]
            logits, loss = loss_of(images[idx], labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
            correct += (logits.argmax(-1) == labels[idx]).sum().item()
        history.append({"epoch": epoch + 1, "loss": total_loss / n, "train_accuracy": correct / n})
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", acc=f"{correct / n:.3f}")
        if resume is not None and epoch + 1 < config.epochs:
            tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
            tensors.update(_optimizer_tensors(optimizer))
            tensors["rng.generator"] = generator.get_state()
            save_checkpoint(tensors, {"key": resume.key, "epochs_done": epoch + 1,
                                      "history": history}, resume.weights, resume.sidecar)
    model.eval()
    if resume is not None:
        resume.weights.unlink(missing_ok=True)
        resume.sidecar.unlink(missing_ok=True)
    return history


@dataclass
class TrainedClassifier:
    """A trained (or cache-loaded) classifier and what is known about it.

    Attributes:
        model: the classifier, in eval mode, on the data's device.
        arch: registry name.
        digits: classes it was trained on.
        seed: training seed.
        test_accuracy: accuracy on the test images of ``digits``.
        cached: whether it was loaded from the cache rather than trained now.
        checkpoint: path of the weights file.
        meta: the full sidecar (config, history, provenance).
    """

    model: HookedClassifier
    arch: str
    digits: tuple[int, ...]
    seed: int
    test_accuracy: float
    cached: bool
    checkpoint: Path
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The JSON-friendly fields the CLI prints."""
        return {
            "arch": self.arch,
            "digits": list(self.digits),
            "seed": self.seed,
            "test_accuracy": self.test_accuracy,
            "cached": self.cached,
            "checkpoint": str(self.checkpoint),
            "data_source": self.meta.get("data_source"),
            "profile": self.meta.get("profile"),
            "train_seconds": self.meta.get("train_seconds"),
        }


def classifier_spec(arch: str, subset: DigitData, classes: tuple[int, ...], seed: int,
                    config: TrainConfig, profile: Profile, **extra: Any) -> dict[str, Any]:
    """Everything a trained classifier depends on: its cache key is the hash of this dict.
    ``extra`` marks other trainers (e.g. ``trainer="stacked"``), whose results are kept
    apart from :func:`train_classifier`'s."""
    modules = ("models", "train", *extra.pop("source_modules", ()))
    return {"arch": arch, "classes": list(classes), "data_source": subset.source,
            "n_train": subset.n_train, "profile": profile.name, "seed": seed,
            "train": asdict(config), "code": __version__, **extra,
            "source": source_digest(*modules)}


def load_or_build(arch: str, key: str, device: torch.device, classes: tuple[int, ...],
                  seed: int, *, retrain: bool = False
                  ) -> tuple[HookedClassifier, TrainedClassifier | None]:
    """A freshly built ``arch`` on ``device`` (weights from torch's RNG as it stands), and the
    cached classifier stored under ``key`` when there is one (``None`` otherwise, or with
    ``retrain``). Call it holding ``cache_lock("classifiers", key)``."""
    weights, sidecar = checkpoint_paths("classifiers", key)
    model = build_model(arch).to(device)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = None if retrain else load_checkpoint(weights, sidecar, key, shapes)
    if found is None:
        return model, None
    tensors, meta = found
    model.load_state_dict(tensors)
    model.eval()
    return model, TrainedClassifier(model, arch, classes, seed, meta["test_accuracy"], True,
                                    weights, meta)


def train_classifier(
    arch: str,
    digits: str | list[int] | tuple[int, ...] | None = None,
    *,
    seed: int = 0,
    data: DigitData | None = None,
    source: str | None = None,
    config: TrainConfig | None = None,
    profile: Profile | None = None,
    retrain: bool = False,
) -> TrainedClassifier:
    """Train ``arch`` on ``digits`` (ten-way head), or load the same run from the cache.

    Args:
        arch: a name from :data:`mechinterp.models.MODEL_REGISTRY`.
        digits: classes to train on (``"0-3"``...); default: every class of the data.
        seed: seeds weight initialisation and batch order.
        data: an already loaded data set (its source is used for the cache key).
        source: data source when ``data`` is not given; default: the profile's.
        config: training sizes; default: the profile's.
        profile: default: the active profile.
        retrain: ignore a cached entry and train again.

    Raises:
        ConfigError: unknown architecture or bad training config.
        DataError: bad source or digits.
    """
    profile = profile or get_profile()
    config = config or TrainConfig.from_profile(profile)
    if data is None:
        data = load_digits(source)
    classes = parse_classes(digits, available=data.classes)
    subset = data.subset(classes)
    spec = classifier_spec(arch, subset, classes, seed, config, profile)
    key = checkpoint_key(spec)
    with cache_lock("classifiers", key):
        weights, sidecar = checkpoint_paths("classifiers", key)
        generator = seed_everything(seed)
        model, cached = load_or_build(arch, key, data.device, classes, seed, retrain=retrain)
        if cached is not None:
            return cached
        partial = checkpoint_paths("partial", key)
        started = time.perf_counter()
        history = fit(model, subset.train_images, subset.train_labels, config, generator,
                      desc=f"{arch} on {classes}", resume=_Resume(*partial, key))
        seconds = time.perf_counter() - started
        test_acc = accuracy(model, subset.test_images, subset.test_labels)
        meta = {**spec, "key": key, "test_accuracy": test_acc, "history": history,
                "train_seconds": seconds, "device": str(data.device)}
        save_checkpoint(model.state_dict(), meta, weights, sidecar)
        return TrainedClassifier(model, arch, classes, seed, test_acc, False, weights,
                                 {**meta, "format": 1})
