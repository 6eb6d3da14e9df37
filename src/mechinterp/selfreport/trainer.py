"""Train an :class:`~mechinterp.selfreport.predictor.ActivationPredictor`: :class:`PredictorTrainer`.

How much of the model may change is the *unfreezing strategy*:

* ``head``: only the head (for the token head, the model's unembedding); the model's neurons
  cannot move;
* ``last_k``: the head, the final layer norm and the last ``k`` blocks;
* ``gradual``: starts as ``head`` and unfreezes one more group from the top (final block with
  the final layer norm, the block below, ..., the embeddings) at evenly spaced steps, ending
  with the whole model;
* ``full``: everything from the first step.

Once a block at or below the neuron's layer trains, the neuron the model is asked about is no
longer the neuron it had: self-prediction then partly chases a moving target (a concern Binder
et al., 2024, address by comparing a model with a copy of itself before fine-tuning). Every
evaluation therefore scores the report twice, against the *frozen* targets (the original
model's activations, what the dataset holds) and against the *live* ones (the fine-tuned
model's own activations on the same positions), and measures the *drift* between the two
(:func:`~mechinterp.selfreport.scores.activation_drift`). It also reports the next-token loss
before and after, the price the model paid for learning to report.

A model that learns to report and nothing else stops being a language model: the token head
in particular is pulled towards answering with bin tokens everywhere. ``lm_weight`` adds the
model's own next-token cross-entropy on the same batch to the loss, so the report has to be
learned *alongside* the job the model already does (0 turns it off). ``anchor_weight`` adds
the mean squared change of the reported neurons themselves (standardised, against the frozen
targets), so that fine-tuning may reorganise how the model represents what it knows about the
neurons but not the neurons: the report then stays a report on the neuron the model had.

:func:`train_predictor` wraps training in the checkpoint cache, so a finished predictor is never
trained twice and an interrupted pipeline resumes at the first unfinished one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from mechinterp.checkpoints import (
    cache_lock,
    checkpoint_key,
    checkpoint_paths,
    load_checkpoint,
    save_checkpoint,
    source_digest,
)
from mechinterp.errors import ConfigError
from mechinterp.selfreport.dataset import ActivationDataset
from mechinterp.selfreport.predictor import ActivationPredictor
from mechinterp.selfreport.scanner import model_device, parse_read_hook
from mechinterp.selfreport.scores import activation_drift, score_predictions
from mechinterp.train import progress_enabled

__all__ = ["STRATEGIES", "PredictorTrainer", "train_predictor", "next_token_loss", "lm_loss"]

STRATEGIES = ("head", "last_k", "gradual", "full")
"""Unfreezing strategies of :class:`PredictorTrainer`."""


class PredictorTrainer:
    """Fine-tune a predictor on an activation dataset with one unfreezing strategy.

    Args:
        predictor: the predictor (its model is trained in place).
        dataset: documents and frozen targets; only the train split is used for training.
        strategy: one of :data:`STRATEGIES`.
        steps: optimiser steps.
        lr: AdamW learning rate of the model's weights.
        head_lr: learning rate of the head.
        batch_size: documents per step (every example position of each is used).
        unfreeze_k: blocks unfrozen by ``last_k``.
        seed: orders the batches.
        lm_weight: weight of the next-token cross-entropy added to the report loss (0: none).
        anchor_weight: weight of the standardised squared change of the reported neurons
            (0: the neurons may drift freely).
        log: called with ``{"step", "loss", "report_loss", "lm_loss", "trainable"}`` every 25
            steps (e.g. ``wandb.log``).

    Raises:
        ConfigError: unknown strategy, non-positive sizes, a negative ``lm_weight`` or
            ``anchor_weight``, or ``unfreeze_k`` out of range.
    """

    def __init__(self, predictor: ActivationPredictor, dataset: ActivationDataset, *,
                 strategy: str = "last_k", steps: int = 400, lr: float = 1e-3,
                 head_lr: float = 1e-2, batch_size: int = 32, unfreeze_k: int = 1,
                 seed: int = 0, lm_weight: float = 1.0, anchor_weight: float = 10.0,
                 log: Callable[[dict[str, Any]], Any] | None = None) -> None:
        if strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}")
        for name, value in (("steps", steps), ("batch_size", batch_size)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name, value in (("lr", lr), ("head_lr", head_lr)):
            if not value > 0:
                raise ConfigError(f"{name} must be positive, got {value!r}")
        for name, value in (("lm_weight", lm_weight), ("anchor_weight", anchor_weight)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
        n_layers = predictor.model.cfg.n_layers
        if strategy == "last_k" and not 1 <= unfreeze_k <= n_layers:
            raise ConfigError(f"unfreeze_k must lie in [1, {n_layers}], got {unfreeze_k}")
        self.predictor, self.dataset, self.strategy = predictor, dataset, strategy
        self._n_groups: int | None = None  # len(parameter_groups()), counted on first use
        self.steps, self.lr, self.head_lr, self.batch_size = steps, lr, head_lr, batch_size
        self.unfreeze_k, self.seed, self.log = unfreeze_k, seed, log
        self.lm_weight, self.anchor_weight = lm_weight, anchor_weight
        self.history: list[dict[str, float]] = []

    def settings(self) -> dict[str, Any]:
        """What determines the training run (for cache keys and records)."""
        return {"strategy": self.strategy, "steps": self.steps, "lr": self.lr,
                "head_lr": self.head_lr, "batch_size": self.batch_size,
                "unfreeze_k": self.unfreeze_k, "seed": self.seed, "lm_weight": self.lm_weight,
                "anchor_weight": self.anchor_weight}

    def parameter_groups(self) -> list[list[torch.nn.Parameter]]:
        """Parameters in unfreezing order, counted down from the read point: the head; the
        final layer norm with the highest block that feeds the read point (the read block
        itself when the heads read its ``resid_mid`` or ``resid_post``, the block below for
        ``resid_pre``); the blocks below it; the embeddings; and last the blocks above the
        read point, which only the language-modelling term reaches."""
        model = self.predictor.model
        head = self.predictor.head_parameters()
        taken = {id(p) for p in head}

        def fresh(*modules: torch.nn.Module) -> list[torch.nn.Parameter]:
            out = [p for m in modules for p in m.parameters() if id(p) not in taken]
            taken.update(id(p) for p in out)
            return out

        blocks = list(model.blocks)
        read_layer, stage = parse_read_hook(self.predictor.residual_hook)
        top = read_layer if stage >= 1 else read_layer - 1  # highest block feeding the read
        upstream, downstream = blocks[:top + 1], blocks[top + 1:]
        groups = [head, fresh(model.ln_final, *upstream[-1:])]
        groups += [fresh(block) for block in reversed(upstream[:-1])]
        groups.append(fresh(model.embed, model.pos_embed))
        groups += [fresh(block) for block in downstream]
        return groups

    def n_unfrozen(self, step: int) -> int:
        """How many of :meth:`parameter_groups` train at ``step``."""
        if self._n_groups is None:
            self._n_groups = len(self.parameter_groups())
        n_groups = self._n_groups
        if self.strategy == "head":
            return 1
        if self.strategy == "last_k":
            return 1 + self.unfreeze_k
        if self.strategy == "full":
            return n_groups
        return min(n_groups, 1 + step * n_groups // self.steps)

    def trained_parameter_names(self) -> list[str]:
        """Names of the predictor's parameters that this strategy trains at some step."""
        groups = self.parameter_groups()
        unfrozen = max(self.n_unfrozen(s) for s in (0, self.steps - 1))
        ids = {id(p) for g in groups[:unfrozen] for p in g}
        return [n for n, p in self.predictor.named_parameters() if id(p) in ids]

    def _set_trainable(self, groups: list[list[torch.nn.Parameter]], n: int) -> None:
        for i, group in enumerate(groups):
            for p in group:
                p.requires_grad_(i < n)

    def train(self) -> list[dict[str, float]]:
        """Run the optimiser; returns (and keeps in :attr:`history`) the loss every 25 steps."""
        predictor, data = self.predictor, self.dataset
        device = model_device(predictor.model)
        tokens, targets = (t.to(device) for t in data.split("train"))
        groups = self.parameter_groups()
        optimizer = torch.optim.AdamW(
            [{"params": groups[0], "lr": self.head_lr},
             {"params": [p for g in groups[1:] for p in g], "lr": self.lr}], weight_decay=0.0)
        generator = torch.Generator().manual_seed(self.seed)
        predictor.eval()  # no dropout; gradients still flow
        self.history = []
        current = -1
        for step in tqdm(range(self.steps), desc=f"self-report {predictor.head}/{self.strategy}",
                         disable=not progress_enabled(), leave=False):
            if self.n_unfrozen(step) != current:
                current = self.n_unfrozen(step)
                self._set_trainable(groups, current)
            rows = torch.randint(0, len(tokens), (self.batch_size,), generator=generator)
            rows = rows.to(device)
            batch = tokens[rows]
            output = predictor(batch)
            report = predictor.loss(output, targets[rows], data.first_position)
            logged = step % 25 == 0 or step == self.steps - 1
            lm = next_token_loss(output.model_logits, batch) if self.lm_weight or logged \
                else None
            loss = report + self.lm_weight * lm if self.lm_weight else report
            if self.anchor_weight:
                loss = loss + self.anchor_weight * predictor.anchor_loss(
                    output, targets[rows], data.first_position)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g], 1.0)
            optimizer.step()
            if logged:
                record = {"step": step, "loss": loss.item(), "report_loss": report.item(),
                          "lm_loss": lm.item(), "trainable": current}
                self.history.append(record)
                if self.log is not None:
                    self.log(record)
        self._set_trainable(groups, len(groups))
        return self.history

    @torch.no_grad()
    def _run(self, split: str, batch_size: int = 32
             ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Prediction, live activations and next-token loss over a split, in one pass."""
        tokens, _ = self.dataset.split(split)
        first, n = self.dataset.first_position, len(self.dataset.neurons)
        device = model_device(self.predictor.model)
        preds, lives, total = [], [], 0.0
        for i in range(0, len(tokens), batch_size):
            batch = tokens[i:i + batch_size].to(device)
            out = self.predictor(batch)
            preds.append(out.prediction[:, first:].reshape(-1, n).float().cpu())
            lives.append(out.live[:, first:].reshape(-1, n).float().cpu())
            total += float(next_token_loss(out.model_logits, batch)) * len(batch)
        return torch.cat(preds), torch.cat(lives), total / len(tokens)

    def predict(self, split: str = "test", batch_size: int = 32
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(prediction, live)`` ``(rows, n_neurons)`` over a split's example positions, in the
        order of :meth:`ActivationDataset.flat_targets`."""
        prediction, live, _ = self._run(split, batch_size)
        return prediction, live

    def lm_loss(self, split: str = "test", batch_size: int = 32) -> float:
        """The model's next-token loss on a split's documents."""
        return lm_loss(self.predictor.model, self.dataset.split(split)[0], batch_size)

    def evaluate(self, split: str = "test") -> dict[str, Any]:
        """Scores against the frozen and the live targets, and the drift between them.

        Returns:
            ``pearson_r``, ``r2`` (frozen targets), ``pearson_r_live``, ``r2_live``, ``drift``,
            ``activation_correlation``, ``relative_change``, per-neuron lists and ``lm_loss``.
        """
        prediction, live, loss = self._run(split)
        frozen = self.dataset.flat_targets(split)
        out = score_predictions(prediction, frozen)
        live_scores = score_predictions(prediction, live)
        drift = activation_drift(frozen, live)
        out.update({"pearson_r_live": live_scores["pearson_r"], "r2_live": live_scores["r2"],
                    "pearson_r_live_per_neuron": live_scores["pearson_r_per_neuron"],
                    "drift": drift["drift"], "activation_correlation": drift["correlation"],
                    "relative_change": drift["relative_change"],
                    "drift_per_neuron": drift["drift_per_neuron"], "lm_loss": loss})
        return out


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of ``logits`` ``(batch, pos, d_vocab)`` on ``tokens``
    ``(batch, pos)``."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())


@torch.no_grad()
def lm_loss(model: torch.nn.Module, tokens: torch.Tensor, batch_size: int = 32) -> float:
    """A model's mean next-token loss on ``tokens`` ``(documents, pos)``."""
    total = 0.0
    for i in range(0, len(tokens), batch_size):
        batch = tokens[i:i + batch_size].to(model_device(model))
        total += float(next_token_loss(model(batch), batch)) * len(batch)
    return total / len(tokens)


def train_predictor(trainer: PredictorTrainer, run: dict[str, Any], *, retrain: bool = False
                    ) -> dict[str, Any]:
    """Train with :meth:`PredictorTrainer.train`, or load the identical run from the cache.

    Args:
        trainer: the trainer (its predictor is trained, or loaded, in place).
        run: JSON-serialisable description of everything else that determines the result
            (model identity, layer, neurons, head, data seed...).
        retrain: ignore a cached entry.

    Returns:
        ``{"history", "train_seconds", "cached", "key"}``.
    """
    spec = {**run, "trainer": trainer.settings(), "head": trainer.predictor.head,
            "source": source_digest("selfreport.predictor", "selfreport.trainer",
                                    "selfreport.dataset", "bridge")}
    key = checkpoint_key(spec)
    names = trainer.trained_parameter_names()
    params = dict(trainer.predictor.named_parameters())
    shapes = {n: tuple(params[n].shape) for n in names}
    with cache_lock("selfreport", key):
        weights, sidecar = checkpoint_paths("selfreport", key)
        found = None if retrain else load_checkpoint(weights, sidecar, key, shapes)
        if found is not None:
            with torch.no_grad():
                for name in names:
                    params[name].copy_(found[0][name])
            trainer.history = list(found[1]["history"])
            return {"history": trainer.history, "train_seconds": found[1]["train_seconds"],
                    "cached": True, "key": key}
        started = time.perf_counter()
        history = trainer.train()
        seconds = time.perf_counter() - started
        save_checkpoint({n: params[n] for n in names},
                        {**spec, "key": key, "history": history, "train_seconds": seconds},
                        weights, sidecar)
        return {"history": history, "train_seconds": seconds, "cached": False, "key": key}
