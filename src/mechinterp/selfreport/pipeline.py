"""One call from a JSON config to a scored self-report: :func:`run_pipeline`.

scan -> dataset -> train -> evaluate:

1. validate the config against the model's shape (before loading anything heavy);
2. load the model; scan the chosen layer's neurons on a separate draw of documents and, with
   ``neurons: "auto"``, pick ``k`` by the scanner's statistic (never by a test score);
3. draw the documents, record the frozen targets, split by document;
4. score the baselines (mean, token lookup, linear probe) on the test positions;
5. for each head, fine-tune a fresh copy of the model with the strategy (cached, so an
   interrupted run picks up at the first unfinished predictor) and score it against the frozen
   and the live targets;
6. train the same head on the *frozen* model (the ``head`` strategy): what a readout learns
   with no change to the model, so the table shows what fine-tuning adds;
7. train the cross-prediction baseline: another model, same heads, this model's neurons.

The result is one JSON-ready dict; :func:`cli_command` runs it for ``mechinterp self-report``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from mechinterp.bridge import copy_bridge
from mechinterp.errors import ConfigError, DataError, DataUnavailableError
from mechinterp.selfreport.baselines import (
    BaselineResult,
    cross_prediction_baseline,
    linear_probe_baseline,
    mean_baseline,
    mlp_probe_baseline,
    token_lookup_baseline,
)
from mechinterp.selfreport.config import (
    SelfReportConfig,
    check_against_model,
    leaks,
    load_config,
    neuron_hook,
    read_hook_for,
)
from mechinterp.selfreport.dataset import (
    ActivationDataset,
    ActivationDatasetGenerator,
    DocumentSource,
    pretrained_documents,
    read_corpus,
    toyworld_documents,
)
from mechinterp.selfreport.predictor import ActivationPredictor, default_bin_tokens
from mechinterp.selfreport.scanner import NeuronScanner
from mechinterp.selfreport.trainer import PredictorTrainer, lm_loss, train_predictor

__all__ = ["Subject", "Prepared", "load_subject", "scan_documents", "prepare", "fit_head",
           "run_pipeline", "cli_command"]

SCAN_SEED_OFFSET = 104_729  # the scan's documents come from a stream the dataset never draws


@dataclass
class Subject:
    """A loaded model with what the pipeline needs around it.

    Attributes:
        model: the ``TransformerBridge``.
        tokenizer: its tokenizer.
        documents: a document source for it.
        identity: what identifies its weights in cache keys.
    """

    model: Any
    tokenizer: Any
    documents: DocumentSource
    identity: dict[str, Any]


def _text_digest(texts: list[str]) -> str:
    """A short digest of a corpus's documents (cache keys change when its text does)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:16]


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def load_subject(name: str, *, seed: int = 0, steps: int | None = None,
                 n_ctx: int | None = None, corpus: str | None = None,
                 test_fraction: float = 0.25, data_seed: int = 0) -> Subject:
    """Load a toy-world model (training it if it is not cached) or a pretrained one.

    Args:
        name: toy-world model name, Hugging Face name, or folder.
        seed, steps: training seed and steps of a toy-world model.
        n_ctx: tokens per document (default: the toy model's context, or 32).
        corpus, test_fraction, data_seed: a pretrained model's documents (see
            :func:`~mechinterp.selfreport.dataset.pretrained_documents`).
    """
    from mechinterp.toyworld import TOY_MODELS, load_toy_model

    if name in TOY_MODELS:
        toy = load_toy_model(name, seed=seed, steps=steps)
        docs = toyworld_documents(toy.tokenizer, n_ctx or toy.spec.n_ctx, toy.spec.mixture)
        return Subject(toy.model, toy.tokenizer, docs, {"toy": name, "key": toy.meta["key"],
                                                        "seed": seed, "steps": toy.meta["steps"]})
    from mechinterp.pretrained import load_pretrained, pretrained_tokenizer

    model = load_pretrained(name)
    tokenizer = pretrained_tokenizer(model)
    folder = Path(name).expanduser()
    identity = {"pretrained": name}
    if folder.is_dir():
        identity["files"] = _folder_digest(folder)
    documents = pretrained_documents(tokenizer, n_ctx or 32, corpus=corpus,
                                     test_fraction=test_fraction, seed=data_seed)
    return Subject(model, tokenizer, documents, identity)


SIBLINGS = {"gpt2": "gpt2-medium", "gpt2-medium": "gpt2", "gpt2-large": "gpt2-medium",
            "gpt2-xl": "gpt2-large", "distilgpt2": "gpt2"}
"""The other model ``cross_model: "auto"`` picks for a pretrained model: a sibling that shares
its tokenizer (another size of the same family)."""


def auto_cross_model(name: str) -> str | None:
    """The sibling ``"auto"`` names for a pretrained model (``None``: none is known, e.g. a
    local folder)."""
    from mechinterp.pretrained import hub_name

    return SIBLINGS.get(hub_name(name))


def _cross_subject(config: SelfReportConfig, subject: Subject) -> tuple[Subject | None, str]:
    """The other model of the cross-prediction baseline, or ``None`` with the reason."""
    from mechinterp.toyworld import TOY_MODELS

    if config.cross_model is None:
        return None, "cross_model is null"
    if config.cross_model == "auto" and config.model not in TOY_MODELS:
        sibling = auto_cross_model(config.model)
        if sibling is None:
            return None, ("no other model is known to share this tokenizer; set cross_model to "
                          "one that does")
        try:
            other = load_subject(sibling, n_ctx=config.n_ctx)
        except DataUnavailableError as exc:
            return None, f"the automatic choice {sibling!r} is not available here ({exc})"
        layer = subject.model.cfg.n_layers - 1 if config.layer is None else config.layer
        if other.model.cfg.n_layers <= layer:
            return None, (f"the automatic choice {sibling!r} has no layer {layer}; set "
                          "cross_model to a model that has")
        return other, f"{sibling} (same tokenizer, another size)"
    if config.cross_model == "auto":
        other = load_subject(config.model, seed=config.model_seed + 1,
                             steps=config.cross_model_steps or config.model_steps,
                             n_ctx=config.n_ctx)
        steps = other.identity.get("steps")
        return other, f"{config.model} seed {config.model_seed + 1}, {steps} steps"
    other = load_subject(config.cross_model, seed=config.model_seed + 1,
                         steps=config.cross_model_steps if config.cross_model in TOY_MODELS
                         else None, n_ctx=config.n_ctx)
    if other.model.cfg.d_vocab != subject.model.cfg.d_vocab:
        raise DataError(f"cross_model {config.cross_model!r} has {other.model.cfg.d_vocab} "
                        f"tokens but {config.model!r} has {subject.model.cfg.d_vocab}: the two "
                        f"must share a tokenizer")
    return other, config.cross_model


def scan_documents(config: SelfReportConfig, subject: Subject) -> torch.Tensor:
    """The documents neurons are chosen on: a draw of ``config.scan_documents`` from a seed
    stream the dataset never uses, so no neuron is chosen on a test document."""
    generator = torch.Generator().manual_seed(config.seed + SCAN_SEED_OFFSET)
    return subject.documents(config.scan_documents, generator)


def _scan(config: SelfReportConfig, subject: Subject, layer: int
          ) -> tuple[NeuronScanner, list[int]]:
    scanner = NeuronScanner(subject.model, subject.tokenizer, layers=[layer])
    scanner.scan(scan_documents(config, subject))
    if isinstance(config.neurons, str):
        picked = scanner.select(config.k, by=config.select_by, layer=layer,
                                max_correlation=config.max_correlation)
        return scanner, [n for _, n in picked]
    return scanner, list(config.neurons)


@dataclass
class Prepared:
    """Everything a self-report run trains on, from :func:`prepare`.

    Attributes:
        config: the validated config.
        subject: the loaded model.
        layer: the neurons' MLP layer; read_hook: the residual stream the heads and probe read.
        neurons: the chosen neurons.
        scanner: the scan they were chosen from (layer ``layer`` only).
        dataset: documents and frozen targets, split by document.
        bin_tokens: answer tokens of the token head (``None`` without a token head).
    """

    config: SelfReportConfig
    subject: Subject
    layer: int
    read_hook: str
    neurons: list[int]
    scanner: NeuronScanner
    dataset: ActivationDataset
    bin_tokens: torch.Tensor | None

    def trainer_settings(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments of :class:`PredictorTrainer` from the config, with overrides
        (e.g. ``strategy="head"``).

        Raises:
            ConfigError: an override that is not a trainer setting.
        """
        c = self.config
        settings = {"strategy": c.strategy, "steps": c.steps, "lr": c.lr, "head_lr": c.head_lr,
                    "batch_size": c.batch_size, "unfreeze_k": c.unfreeze_k, "seed": c.seed,
                    "lm_weight": c.lm_weight, "anchor_weight": c.anchor_weight}
        unknown = sorted(set(overrides) - set(settings))
        if unknown:
            raise ConfigError(f"unknown trainer setting(s) {unknown}; allowed: {sorted(settings)}")
        return {**settings, **overrides}

    @cached_property
    def lm_loss_before(self) -> float:
        """The unmodified model's next-token loss on the test documents."""
        return lm_loss(self.subject.model, self.dataset.split("test")[0])

    def data_run(self) -> dict[str, Any]:
        """What identifies the data in cache keys."""
        c = self.config
        return {"layer": self.layer, "neurons": self.neurons, "read_hook": self.read_hook,
                "n_bins": c.n_bins, "n_documents": c.n_documents,
                "test_fraction": c.test_fraction, "data_seed": c.seed,
                "n_ctx": int(self.dataset.tokens.shape[1]),
                "corpus": None if c.corpus is None else _text_digest(read_corpus(c.corpus))}


def prepare(config: SelfReportConfig | dict[str, Any] | str | Path) -> Prepared:
    """Validate the config, load the model, scan and choose neurons, and build the dataset.

    Raises:
        ConfigError: any invalid field, before any model is loaded.
    """
    config = load_config(config)
    shape = check_against_model(config)
    subject = load_subject(config.model, seed=config.model_seed, steps=config.model_steps,
                           n_ctx=config.n_ctx, corpus=config.corpus,
                           test_fraction=config.test_fraction, data_seed=config.seed)
    layer = shape.n_layers - 1 if config.layer is None else config.layer
    read_hook = read_hook_for(config, layer)
    scanner, neurons = _scan(config, subject, layer)
    dataset = ActivationDatasetGenerator(subject.model, layer, neurons, subject.documents
                                         ).generate(config.n_documents, seed=config.seed,
                                                    test_fraction=config.test_fraction)
    bin_tokens = default_bin_tokens(subject.tokenizer, subject.model.cfg.d_vocab, len(neurons),
                                    config.n_bins) if "token" in config.heads else None
    return Prepared(config, subject, layer, read_hook, neurons, scanner, dataset, bin_tokens)


def fit_head(prep: Prepared, head: str, *, retrain: bool = False,
             log: Any = None, **overrides: Any) -> tuple[PredictorTrainer, dict[str, Any]]:
    """Fine-tune a fresh copy of the model with one head (or load the same run from the
    cache) and score it on the test documents.

    Args:
        prep: from :func:`prepare`.
        head: one of :data:`~mechinterp.selfreport.predictor.HEAD_TYPES`.
        retrain: ignore a cached predictor.
        log: called with training records (e.g. ``wandb.log``).
        **overrides: trainer settings that differ from the config (``strategy``,
            ``anchor_weight``, ``lm_weight``, ``steps``...).

    Returns:
        The trainer (its predictor holds the fine-tuned copy) and its scores:
        :meth:`PredictorTrainer.evaluate` plus ``lm_loss_before``, ``train_seconds``,
        ``cached``, ``final_loss`` (the whole training loss, with its language-modelling and
        anchor terms) and ``final_report_loss`` (the report's own term).
    """
    bin_tokens = prep.bin_tokens
    if head == "token" and bin_tokens is None:
        bin_tokens = default_bin_tokens(prep.subject.tokenizer, prep.subject.model.cfg.d_vocab,
                                        len(prep.neurons), prep.config.n_bins)
    predictor = ActivationPredictor.for_dataset(
        copy_bridge(prep.subject.model), prep.dataset, head, n_bins=prep.config.n_bins,
        read_hook=prep.read_hook, bin_tokens=bin_tokens, seed=prep.config.seed)
    trainer = PredictorTrainer(predictor, prep.dataset, **prep.trainer_settings(**overrides),
                               log=log)
    trained = train_predictor(trainer, {"model": prep.subject.identity, **prep.data_run()},
                              retrain=retrain)
    last = trained["history"][-1]
    return trainer, {**trainer.evaluate(), "lm_loss_before": prep.lm_loss_before,
                     "train_seconds": round(trained["train_seconds"], 2),
                     "cached": trained["cached"], "final_loss": last["loss"],
                     "final_report_loss": last.get("report_loss", last["loss"])}


def _scores(result: BaselineResult) -> dict[str, Any]:
    return {**result.scores, **result.details}


def _table(heads: dict[str, dict[str, Any]], baselines: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{"method": f"self/{h}", "pearson_r": round(s["pearson_r"], 4),
             "r2": round(s["r2"], 4), "pearson_r_live": round(s["pearson_r_live"], 4),
             "drift": round(s["drift"], 4)} for h, s in heads.items()]
    for name, s in baselines.items():
        if name in ("frozen_model", "cross_prediction"):
            prefix = "frozen" if name == "frozen_model" else "cross"
            rows += [{"method": f"{prefix}/{h}", "pearson_r": round(c["pearson_r"], 4),
                      "r2": round(c["r2"], 4)} for h, c in s.items() if h != "skipped"]
        else:
            rows.append({"method": name, "pearson_r": round(s["pearson_r"], 4),
                         "r2": round(s["r2"], 4)})
    return rows


def _wandb_run(config: SelfReportConfig) -> Any:
    if not config.wandb:
        return None
    import wandb

    return wandb.init(project="mechinterp-selfreport", config=config.as_dict())


def run_pipeline(config: Prepared | SelfReportConfig | dict[str, Any] | str | Path, *,
                 retrain: bool = False) -> dict[str, Any]:
    """Scan, build the dataset, train every head, score against the baselines.

    Args:
        config: a :class:`SelfReportConfig`, a dict of its fields, the path of a JSON file,
            or what :func:`prepare` returned for one (so the scan and dataset are reused).
        retrain: ignore cached predictors.

    Returns:
        A JSON-ready dict: ``pearson_r`` and ``r2`` (test split, against the frozen targets) of
        the ``best_head``, the head with the highest Pearson r on the *training* documents
        (``best_head_train_r``; the test split plays no part in the choice), ``heads``
        (per head: frozen and live scores, drift, next-token loss, training seconds), ``baselines`` (``mean``, ``token_lookup``, ``linear_probe``, per head
        ``frozen_model`` unless the strategy is ``head``, and per head ``cross_prediction``),
        ``table``, ``drift`` (per head), ``beats_linear_probe``, ``beats_mlp_probe`` and
        ``beats_frozen_head`` (the same head on the unchanged model; ``None`` under the
        ``head`` strategy), ``neurons`` with their scan
        statistics, ``dataset`` sizes, ``seconds`` and the ``config``.

    Raises:
        ConfigError: any invalid field, before any model is loaded or trained.
    """
    started = time.perf_counter()
    prep = config if isinstance(config, Prepared) else None
    config = prep.config if prep is not None else load_config(config)
    check_against_model(config)  # cheap (the shape only): before W&B starts or a model loads
    run = _wandb_run(config)
    prep = prep or prepare(config)
    dataset, layer = prep.dataset, prep.layer
    baselines: dict[str, Any] = {
        "mean": _scores(mean_baseline(dataset)),
        "token_lookup": _scores(token_lookup_baseline(dataset)),
        "linear_probe": _scores(linear_probe_baseline(
            prep.subject.model, dataset, prep.read_hook)),
        "mlp_probe": _scores(mlp_probe_baseline(prep.subject.model, dataset, prep.read_hook,
                                                seed=config.seed))}
    log = run.log if run is not None else None
    fitted = {head: fit_head(prep, head, retrain=retrain, log=log) for head in config.heads}
    heads = {head: scores for head, (_, scores) in fitted.items()}
    # the headline head is chosen on the training documents, never on the test ones
    train_r = {head: trainer.evaluate("train")["pearson_r"] for head, (trainer, _) in
               fitted.items()}
    if config.strategy != "head":
        baselines["frozen_model"] = {head: fit_head(prep, head, retrain=retrain,
                                                    strategy="head")[1]
                                     for head in config.heads}
    other, described = _cross_subject(config, prep.subject)
    if other is None:
        baselines["cross_prediction"] = {"skipped": described}
    else:
        baselines["cross_prediction"] = {
            head: {**_scores(cross_prediction_baseline(
                copy_bridge(other.model), dataset, head, prep.trainer_settings(),
                {"model": other.identity, "targets_of": prep.subject.identity,
                 **prep.data_run()},
                n_bins=config.n_bins, read_hook=prep.read_hook, bin_tokens=prep.bin_tokens,
                retrain=retrain)), "other_model": described} for head in config.heads}
    best = max(heads, key=lambda h: train_r[h])
    frozen_best = baselines.get("frozen_model", {}).get(best)
    scanner, neurons = prep.scanner, prep.neurons
    result = {
        "model": config.model, "layer": layer, "neurons": neurons,
        "read_hook": prep.read_hook, "neuron_hook": neuron_hook(layer),
        "leak": leaks(prep.read_hook, layer),
        "selected_by": config.select_by if isinstance(config.neurons, str) else "config",
        "neuron_stats": {str(n): scanner.stats[layer].row(n) for n in neurons},
        "top_examples": {str(n): [e.context for e in scanner.top_examples(layer, n, 3)]
                         for n in neurons},
        "dataset": dataset.summary(), "best_head": best,
        "pearson_r": heads[best]["pearson_r"], "r2": heads[best]["r2"],
        "pearson_r_live": heads[best]["pearson_r_live"], "r2_live": heads[best]["r2_live"],
        "heads": heads, "baselines": baselines, "table": _table(heads, baselines),
        "drift": {h: heads[h]["drift"] for h in heads},
        "best_head_train_r": train_r,
        "beats_linear_probe": heads[best]["pearson_r"] > baselines["linear_probe"]["pearson_r"],
        "beats_mlp_probe": heads[best]["pearson_r"] > baselines["mlp_probe"]["pearson_r"],
        "beats_frozen_head": (None if frozen_best is None
                              else heads[best]["pearson_r"] > frozen_best["pearson_r"]),
        "config": config.as_dict(), "seconds": round(time.perf_counter() - started, 2)}
    if run is not None:
        run.log({f"table/{row['method']}/pearson_r": row["pearson_r"] for row in result["table"]})
        run.finish()
    return result


def cli_command(args: argparse.Namespace) -> dict[str, Any]:
    """Run the pipeline from parsed ``self-report`` arguments.

    Raises:
        ConfigError: a malformed ``--set`` or any invalid field.
    """
    fields: dict[str, Any] = {}
    if args.config:
        loaded = load_config(args.config)
        fields = {k: v for k, v in loaded.as_dict().items()}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes FIELD=VALUE, got {item!r}")
        try:
            fields[key] = json.loads(value)
        except json.JSONDecodeError:
            fields[key] = value
    return run_pipeline(fields, retrain=args.retrain)
