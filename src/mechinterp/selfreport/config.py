"""The settings of a self-report experiment: :class:`SelfReportConfig`, read from JSON.

Everything is checked before any work starts: a field that does not exist, a value of the
wrong type, an unknown head or strategy, and (with :func:`check_against_model`, which reads
only the model's shape, never its weights) a layer or neuron outside the model. Each error is
a :class:`~mechinterp.errors.ConfigError` that names the field and what it may be.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from mechinterp.errors import ConfigError, DataError, DataUnavailableError
from mechinterp.selfreport.predictor import HEAD_TYPES
from mechinterp.selfreport.scanner import READ_POINTS, SELECT_BY, mlp_hook, parse_read_hook
from mechinterp.selfreport.trainer import STRATEGIES

__all__ = ["SelfReportConfig", "ModelShape", "load_config", "check_against_model",
           "READ_POINTS", "parse_read_hook", "read_hook_for", "neuron_hook", "leaks"]

def neuron_hook(layer: int) -> str:
    """The hook where the reported neurons live (their MLP's hidden activation)."""
    return mlp_hook(layer)


def read_hook_for(config: SelfReportConfig, layer: int) -> str:
    """The hook the heads and probe read: the config's, or by default the residual stream
    just before the neurons' MLP (``blocks.{layer}.hook_resid_mid``)."""
    return config.read_hook or f"blocks.{layer}.hook_resid_mid"


def leaks(read_hook: str, layer: int) -> bool:
    """Whether ``read_hook`` already holds what the neurons of MLP ``layer`` wrote: any point
    after their MLP (``resid_post`` of that layer or anything in a later block)."""
    read_layer, stage = parse_read_hook(read_hook)
    return read_layer > layer or (read_layer == layer and stage == 2)


@dataclass(frozen=True)
class SelfReportConfig:
    """One self-report experiment. Validated at construction.

    Attributes:
        model: a toy-world model name (``toyworld-2l``), a Hugging Face name (``gpt2``) or a
            folder holding a model saved with ``save_pretrained``.
        model_seed: training seed of a toy-world model.
        model_steps: training steps of a toy-world model (``None``: the profile's).
        layer: the MLP layer whose neurons are reported (``None``: the last).
        neurons: neuron indices, or ``"auto"`` to let the scanner pick ``k``.
        k: how many neurons ``"auto"`` picks.
        select_by: the scanner statistic ``"auto"`` ranks by (see ``SELECT_BY``).
        max_correlation: ``"auto"`` skips a neuron whose activations correlate above this
            with one already picked, so the ``k`` neurons are distinct (``null``: no check).
        heads: head types to train, each a separate fine-tuned copy of the model.
        strategy: unfreezing strategy (``head``, ``last_k``, ``gradual``, ``full``).
        unfreeze_k: blocks ``last_k`` unfreezes.
        steps: optimiser steps per predictor.
        lr: learning rate of the model's weights; head_lr: of the head.
        lm_weight: weight of the model's own next-token loss in the training loss, which keeps
            it a language model while it learns to report (0: report loss only).
        anchor_weight: weight of the reported neurons' own change in the training loss, which
            keeps them close to their frozen values (0: they may drift).
        batch_size: documents per step.
        n_bins: activation bins of the classification and token heads.
        n_documents: documents drawn for the dataset; scan_documents: for the scan (a
            separate draw, so neurons are never chosen on test documents).
        test_fraction: share of documents held out.
        read_hook: the residual stream the heads and the linear probe read, as
            ``blocks.N.hook_resid_pre|mid|post`` (``None``: ``hook_resid_mid`` of the neurons'
            layer, the stream just before their MLP). The token head reads it too, through the
            model's own final norm and unembedding.
        allow_leak: accept a read point at or after the neurons' write (``resid_post`` of
            their layer or later), where the stream already holds what the neurons wrote;
            every number of such a run is labelled as leaking.
        n_ctx: tokens per document (``None``: the toy model's context, or 32).
        corpus: for a pretrained model, a local text file (documents separated by blank lines)
            or a folder of ``.txt`` files to draw documents from (``None``: the built-in
            English sentences). Documents are deduplicated and split into train and test
            before they are cut into windows. A relative path in a config file is read
            relative to that file.
        cross_model: the other model of the cross-prediction baseline: ``"auto"`` (for a
            toy model, the same model trained with seed ``model_seed + 1``; for a pretrained
            one, a sibling sharing its tokenizer, e.g. gpt2-medium for gpt2, skipped with the
            reason when none is known or its weights are absent), a model name, or ``None``.
        cross_model_steps: training steps of a toy cross model (``None``: as many as the
            model itself, so that the two are equally trained).
        seed: draws the documents and the split, orders the batches.
        wandb: log training and results to Weights & Biases (needs the ``wandb`` package).
    """

    model: str = "toyworld-2l"
    model_seed: int = 0
    model_steps: int | None = None
    layer: int | None = None
    neurons: tuple[int, ...] | str = "auto"
    k: int = 4
    select_by: str = "variance"
    max_correlation: float | None = 0.9
    heads: tuple[str, ...] = HEAD_TYPES
    strategy: str = "last_k"
    unfreeze_k: int = 1
    steps: int = 400
    lr: float = 1e-3
    head_lr: float = 1e-2
    lm_weight: float = 1.0
    anchor_weight: float = 10.0
    batch_size: int = 32
    n_bins: int = 20
    n_documents: int = 1200
    scan_documents: int = 400
    test_fraction: float = 0.25
    read_hook: str | None = None
    allow_leak: bool = False
    n_ctx: int | None = None
    corpus: str | None = None
    cross_model: str | None = "auto"
    cross_model_steps: int | None = None
    seed: int = 0
    wandb: bool = False

    def __post_init__(self) -> None:
        def integer(name: str, low: int, optional: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}"
                                  f"{' or null' if optional else ''}, got {value!r}")

        for name in ("model_seed", "seed"):
            integer(name, 0)
        for name in ("k", "unfreeze_k", "steps", "batch_size"):
            integer(name, 1)
        integer("cross_model_steps", 1, optional=True)
        integer("n_bins", 2)
        integer("n_documents", 4)
        integer("scan_documents", 1)
        integer("model_steps", 1, optional=True)
        integer("layer", 0, optional=True)
        if self.read_hook is not None:
            parse_read_hook(self.read_hook)
        if not isinstance(self.allow_leak, bool):
            raise ConfigError(f"allow_leak must be true or false, got {self.allow_leak!r}")
        integer("n_ctx", 2, optional=True)
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError(f"model must be a model name or folder, got {self.model!r}")
        if isinstance(self.neurons, str):
            if self.neurons != "auto":
                raise ConfigError(f"neurons must be a list of neuron indices or 'auto', got "
                                  f"{self.neurons!r}")
        else:
            object.__setattr__(self, "neurons", tuple(self.neurons))
            if not self.neurons or any(not isinstance(n, int) or isinstance(n, bool) or n < 0
                                       for n in self.neurons):
                raise ConfigError(f"neurons must be a non-empty list of non-negative integers "
                                  f"or 'auto', got {list(self.neurons)!r}")
            if len(set(self.neurons)) != len(self.neurons):
                raise ConfigError(f"neurons must not repeat, got {list(self.neurons)}")
        heads = (self.heads,) if isinstance(self.heads, str) else tuple(self.heads)
        object.__setattr__(self, "heads", heads)
        unknown = [h for h in heads if h not in HEAD_TYPES]
        if not heads or unknown:
            raise ConfigError(f"heads must be a non-empty list of {list(HEAD_TYPES)}; unknown: "
                              f"{unknown}")
        for name, value, allowed in (("strategy", self.strategy, STRATEGIES),
                                     ("select_by", self.select_by, SELECT_BY)):
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {list(allowed)}, got {value!r}")
        for name in ("lr", "head_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if self.max_correlation is not None and (
                isinstance(self.max_correlation, bool)
                or not isinstance(self.max_correlation, int | float)
                or not 0 < self.max_correlation <= 1):
            raise ConfigError(f"max_correlation must lie in (0, 1] or be null, got "
                              f"{self.max_correlation!r}")
        for name in ("lm_weight", "anchor_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
        if isinstance(self.test_fraction, bool) or not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must lie strictly between 0 and 1, got "
                              f"{self.test_fraction!r}")
        if self.cross_model is not None and (not isinstance(self.cross_model, str)
                                             or not self.cross_model):
            raise ConfigError(f"cross_model must be 'auto', a model name or null, got "
                              f"{self.cross_model!r}")
        if self.corpus is not None:
            if not isinstance(self.corpus, str) or not Path(self.corpus).expanduser().exists():
                raise ConfigError(f"corpus must be an existing text file or folder, or null; "
                                  f"got {self.corpus!r}")
        if not isinstance(self.wandb, bool):
            raise ConfigError(f"wandb must be true or false, got {self.wandb!r}")
        if self.wandb and importlib.util.find_spec("wandb") is None:
            raise ConfigError("wandb is true but the wandb package is not installed; install "
                              "it (pip install wandb) or set wandb to false")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        out = asdict(self)
        out["heads"] = list(self.heads)
        if not isinstance(self.neurons, str):
            out["neurons"] = list(self.neurons)
        return out


def load_config(config: SelfReportConfig | dict[str, Any] | str | Path) -> SelfReportConfig:
    """A validated config from a dict, a JSON file's path, or a config (returned as is).

    Raises:
        ConfigError: an unknown field (the message lists the allowed ones), a bad value, or a
            file that is missing or not a JSON object.
    """
    if isinstance(config, SelfReportConfig):
        return config
    if isinstance(config, str | Path):
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            config = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid JSON: {exc}") from None
        if isinstance(config, dict) and isinstance(config.get("corpus"), str):
            corpus = Path(config["corpus"]).expanduser()
            if not corpus.is_absolute():  # relative to the config file, not the working folder
                config["corpus"] = str(path.parent / corpus)
    if not isinstance(config, dict):
        raise ConfigError(f"a config must be a JSON object, got {type(config).__name__}")
    allowed = [f.name for f in fields(SelfReportConfig)]
    if "read_layer" in config:
        old = config["read_layer"] if isinstance(config["read_layer"], int) else "N"
        raise ConfigError("read_layer was replaced by read_hook: write "
                          f"\"read_hook\": \"blocks.{old}.hook_resid_post\" "
                          "for the old behaviour (it reads after the neurons' MLP when that is "
                          "their layer, so it also needs \"allow_leak\": true), or leave it "
                          "out to read just before the neurons' MLP")
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown config field(s) {unknown}; allowed fields: {allowed}")
    return SelfReportConfig(**config)


@dataclass(frozen=True)
class ModelShape:
    """What validation needs to know of a model: ``n_layers``, ``d_mlp``, ``n_ctx``,
    ``d_vocab`` and whether it is a toy-world model."""

    n_layers: int
    d_mlp: int
    n_ctx: int
    d_vocab: int
    toy: bool


def model_shape(name: str) -> ModelShape:
    """The shape of a toy-world model (from its spec) or a pretrained one (from its
    ``config.json``), without loading weights.

    Raises:
        DataError: a folder holds no model config.
        DataUnavailableError: a pretrained model that is neither cached nor downloadable.
    """
    from mechinterp.toyworld import TOY_MODELS, default_tokenizer

    if name in TOY_MODELS:
        spec = TOY_MODELS[name]
        return ModelShape(spec.n_layers, 0 if spec.attn_only else spec.d_mlp, spec.n_ctx,
                          len(default_tokenizer()), True)
    from transformers import AutoConfig

    from mechinterp.pretrained import hub_name

    name = hub_name(name)
    folder = Path(name).expanduser()
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise DataError(f"model folder {str(folder)!r} holds no config.json; save a model there "
                        f"with save_pretrained, or use a toy-world model such as toyworld-2l")
    try:
        cfg = AutoConfig.from_pretrained(str(folder) if folder.is_dir() else name)
    except OSError as exc:
        raise DataUnavailableError(
            f"model {name!r} is neither a toy-world model nor an available pretrained model "
            f"({str(exc).splitlines()[0]}); toy-world models: {sorted(TOY_MODELS)}") from None
    d_model = cfg.hidden_size
    d_mlp = getattr(cfg, "n_inner", None) or getattr(cfg, "intermediate_size", None) \
        or 4 * d_model
    return ModelShape(cfg.num_hidden_layers, d_mlp, getattr(cfg, "max_position_embeddings", 1024),
                      cfg.vocab_size, False)


def check_against_model(config: SelfReportConfig) -> ModelShape:
    """Check the fields that depend on the model (layers, neurons, sizes) against its shape.

    Raises:
        ConfigError: a field out of the model's range; the message names the field and range.
        DataError, DataUnavailableError: the model cannot be found (see :func:`model_shape`).
    """
    shape = model_shape(config.model)
    if shape.d_mlp == 0:
        raise ConfigError(f"model {config.model!r} has no MLP layers, so no neurons to report; "
                          f"use a model with MLPs such as toyworld-2l")
    top = shape.n_layers - 1
    if config.layer is not None and config.layer > top:
        raise ConfigError(f"layer must lie in [0, {top}] for {config.model} "
                          f"({shape.n_layers} layers), got {config.layer}")
    layer = top if config.layer is None else config.layer
    read = read_hook_for(config, layer)
    if parse_read_hook(read)[0] > top:
        raise ConfigError(f"read_hook must name a block in [0, {top}] for {config.model} "
                          f"({shape.n_layers} layers), got {read!r}")
    if leaks(read, layer) and not config.allow_leak:
        raise ConfigError(
            f"read_hook {read!r} is at or after {neuron_hook(layer)!r}: that stream already "
            f"holds what the reported neurons wrote, so a head reading it can copy the answer "
            f"instead of predicting it. Read before their MLP (e.g. "
            f"'blocks.{layer}.hook_resid_mid', the default), or set allow_leak to true to "
            f"measure the leaking setting on purpose (its numbers are labelled)")
    if not isinstance(config.neurons, str):
        bad = [n for n in config.neurons if n >= shape.d_mlp]
        if bad:
            raise ConfigError(f"neurons {bad} are out of range: neurons must lie in "
                              f"[0, {shape.d_mlp - 1}] (d_mlp of {config.model})")
    elif config.k > shape.d_mlp:
        raise ConfigError(f"k must lie in [1, {shape.d_mlp}] (d_mlp of {config.model}), got "
                          f"{config.k}")
    if config.unfreeze_k > shape.n_layers:
        raise ConfigError(f"unfreeze_k must lie in [1, {shape.n_layers}] for {config.model}, "
                          f"got {config.unfreeze_k}")
    if config.n_ctx is not None and config.n_ctx > shape.n_ctx:
        raise ConfigError(f"n_ctx must lie in [2, {shape.n_ctx}] for {config.model}, got "
                          f"{config.n_ctx}")
    n_neurons = config.k if isinstance(config.neurons, str) else len(config.neurons)
    if "token" in config.heads and n_neurons * config.n_bins > shape.d_vocab - 2:
        raise ConfigError(f"the token head needs n_neurons * n_bins = {n_neurons * config.n_bins}"
                          f" answer tokens but {config.model} has {shape.d_vocab} tokens; lower "
                          f"n_bins or the number of neurons")
    if config.cross_model not in (None, "auto"):
        other = model_shape(config.cross_model)
        if other.d_vocab != shape.d_vocab or other.d_mlp == 0 or other.n_layers <= layer:
            raise ConfigError(f"cross_model {config.cross_model!r} must share {config.model}'s "
                              f"vocabulary ({shape.d_vocab} tokens) and have MLP layers up to "
                              f"layer {layer}; set it to 'auto', another model, or null")
    if shape.toy and config.corpus is not None:
        raise ConfigError(f"corpus applies to pretrained models; {config.model!r} is a toy-world "
                          "model, which reads its own world's documents (set corpus to null)")
    if not shape.toy and config.model_steps is not None:
        raise ConfigError("model_steps applies to toy-world models only; set it to null for "
                          f"{config.model!r}")
    return shape
