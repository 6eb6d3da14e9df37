"""Several seeds of one classifier trained together, as one batched model.

:func:`fit_stacked` trains ``N`` copies of an architecture at once: their weights are stacked
along a leading seed dimension (``torch.func.stack_module_state``), every step runs all of
them with ``torch.func.vmap`` over ``functional_call``, and one Adam optimiser updates the
stacked tensors. Adam, its weight decay and cross-entropy act element by element or per
copy, so copy ``i`` follows exactly the updates that :func:`mechinterp.train.fit` applies to
that seed alone: the same initial weights (built from seed ``i``), the same batches in the
same order (from seed ``i``'s generator), the same learning-rate steps. Only float rounding
may differ (a batched kernel can sum in another order); the tests check the two agree to
tolerance.

What it buys depends on the device. On a GPU a small model's step is launch-bound, so ``N``
seeds cost little more than one. On one CPU thread the arithmetic is the cost and grows with
``N``; ``benchmarks/bench_training.py --seeds N`` measures both ratios honestly.

:func:`train_classifiers_stacked` is :func:`mechinterp.train.train_classifier` for several
seeds: each trained copy is cached under its own key, which records that it was trained
stacked (so it never stands in for a separately trained run of the same seed).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

from mechinterp.checkpoints import (
    cache_lock,
    checkpoint_key,
    checkpoint_paths,
    save_checkpoint,
)
from mechinterp.config import Profile, get_profile, seed_everything
from mechinterp.data import DigitData, load_digits, parse_classes
from mechinterp.errors import ConfigError, ShapeError
from mechinterp.train import (
    TrainConfig,
    TrainedClassifier,
    accuracy,
    classifier_spec,
    load_or_build,
)

__all__ = ["fit_stacked", "train_classifiers_stacked", "unstack"]


def unstack(stacked: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
    """Copy ``index``'s tensors out of a stacked state (``{name: (N, ...)}``)."""
    return {name: value[index].detach().clone() for name, value in stacked.items()}


def fit_stacked(models: Sequence[nn.Module], images: torch.Tensor, labels: torch.Tensor,
                config: TrainConfig, generators: Sequence[torch.Generator]
                ) -> list[list[dict[str, float]]]:
    """Train ``models`` (one architecture, one per seed) together, in place.

    Args:
        models: ``N`` modules of the same architecture (their weights are the starting point).
        images, labels: the training set, on the models' device.
        config: epochs, batch size, learning rate, weight decay (as :func:`~mechinterp.train.fit`).
        generators: one CPU generator per model that orders its batches.

    Returns:
        Each model's history: one dict per epoch with ``loss`` and ``train_accuracy``.

    Raises:
        ConfigError: no models, or not one generator per model.
        ShapeError: the models do not share one architecture.
    """
    if not models:
        raise ConfigError("fit_stacked needs at least one model")
    if len(generators) != len(models):
        raise ConfigError(f"one generator per model: got {len(generators)} for "
                          f"{len(models)} models")
    shapes = {k: tuple(v.shape) for k, v in models[0].state_dict().items()}
    for m in models[1:]:
        if {k: tuple(v.shape) for k, v in m.state_dict().items()} != shapes:
            raise ShapeError("fit_stacked trains copies of one architecture; the models' "
                             "parameters differ in names or shapes")
    for m in models:
        m.train()
    params, buffers = stack_module_state(list(models))
    base = copy.deepcopy(models[0]).to("meta")
    n_models, n = len(models), len(labels)

    def loss_of(p: dict, b: dict, x: torch.Tensor, y: torch.Tensor):
        logits = functional_call(base, (p, b), (x,))
        loss = F.cross_entropy(logits, y)
        return loss, (loss.detach(), logits.detach())

    step = vmap(grad(loss_of, has_aux=True))
    leaves = list(params.values())
    optimizer = torch.optim.Adam(leaves, lr=config.lr, weight_decay=config.weight_decay)
    histories: list[list[dict[str, float]]] = [[] for _ in models]
    for epoch in range(config.epochs):
        orders = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(
            images.device)
        losses = torch.zeros(n_models)
        correct = torch.zeros(n_models)
        for i in range(0, n, config.batch_size):
            idx = orders[:, i : i + config.batch_size]  # (N, batch): each seed's own batch
            grads, (loss, logits) = step(params, buffers, images[idx], labels[idx])
            for name, leaf in params.items():
                leaf.grad = grads[name]
            optimizer.step()
            losses += loss.detach().cpu() * idx.shape[1]
            correct += (logits.argmax(-1) == labels[idx]).sum(-1).cpu().float()
        for k in range(n_models):
            histories[k].append({"epoch": epoch + 1, "loss": float(losses[k]) / n,
                                 "train_accuracy": float(correct[k]) / n})
    with torch.no_grad():
        for k, m in enumerate(models):
            m.load_state_dict({**unstack(params, k), **unstack(buffers, k)})
            m.eval()
    return histories


def train_classifiers_stacked(
    arch: str,
    seeds: Sequence[int],
    digits: str | list[int] | tuple[int, ...] | None = None,
    *,
    data: DigitData | None = None,
    config: TrainConfig | None = None,
    profile: Profile | None = None,
    retrain: bool = False,
) -> list[TrainedClassifier]:
    """:func:`~mechinterp.train.train_classifier` for several seeds, trained together.

    Each seed is cached under its own key (with ``"trainer": "stacked"``); seeds found in the
    cache are loaded and the rest are trained in one :func:`fit_stacked` run.

    Raises:
        ConfigError: no seeds, repeated seeds, an unknown architecture or a bad config.
    """
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct and at least one, got {seeds!r}")
    profile = profile or get_profile()
    config = config or TrainConfig.from_profile(profile)
    data = data or load_digits()
    classes = parse_classes(digits, available=data.classes)
    subset = data.subset(classes)

    if config.selectivity_penalty:
        raise ConfigError("stacked training does not apply a selectivity_penalty; train those "
                          "seeds with mechinterp.train.train_classifier")

    def spec(seed: int) -> dict[str, Any]:
        return classifier_spec(arch, subset, classes, seed, config, profile, trainer="stacked",
                               source_modules=("stacked",))

    keys = {seed: checkpoint_key(spec(seed)) for seed in seeds}
    out: dict[int, TrainedClassifier] = {}
    # one lock over the whole set, taken before the cache is read: two processes asking for
    # the same seeds train them once
    with cache_lock("classifiers", "-".join(keys.values())[:40]):
        todo: list[tuple[int, torch.Generator, nn.Module]] = []
        for seed in seeds:
            generator = seed_everything(seed)
            model, cached = load_or_build(arch, keys[seed], data.device, classes, seed,
                                          retrain=retrain)
            if cached is not None:
                out[seed] = cached
            else:
                todo.append((seed, generator, model))
        if todo:
            started = time.perf_counter()
            histories = fit_stacked([m for _, _, m in todo], subset.train_images,
                                    subset.train_labels, config, [g for _, g, _ in todo])
            seconds = time.perf_counter() - started
            for (seed, _, model), history in zip(todo, histories, strict=True):
                weights, sidecar = checkpoint_paths("classifiers", keys[seed])
                test_acc = accuracy(model, subset.test_images, subset.test_labels)
                meta = {**spec(seed), "key": keys[seed], "test_accuracy": test_acc,
                        "history": history, "train_seconds": seconds,
                        "trained_with": len(todo), "device": str(data.device)}
                save_checkpoint(model.state_dict(), meta, weights, sidecar)
                out[seed] = TrainedClassifier(model, arch, classes, seed, test_acc, False,
                                              weights, {**meta, "format": 1})
    return [out[seed] for seed in seeds]
