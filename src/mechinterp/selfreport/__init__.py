"""Neuron self-report: fine-tune a transformer to report the activations of its own MLP neurons.

* :mod:`.scanner`: :class:`NeuronScanner` ranks neurons (variance, kurtosis, frequency, token
  selectivity) and shows their top activating contexts.
* :mod:`.dataset`: :class:`ActivationDatasetGenerator` turns documents into per-position
  targets, split by document.
* :mod:`.predictor`: :class:`ActivationPredictor`, the model with a regression,
  classification or token head (the token head answers through the model's own unembedding).
* :mod:`.trainer`: :class:`PredictorTrainer` with the unfreezing strategies, scores against
  frozen and live targets, and drift.
* :mod:`.baselines`: mean, token lookup, linear and nonlinear probes, cross-prediction.
* :mod:`.scores`: Pearson r, R² and drift.
* :mod:`.config` and :mod:`.pipeline`: a JSON config, :func:`prepare` and :func:`fit_head`
  (the pieces, for notebooks) and :func:`run_pipeline` (all of it, scored).

The question follows Binder et al. (2024), "Looking Inward": does a model predict itself
better than another model trained on the same answers (self- vs cross-prediction)? The
training of a network to model its own states follows Premakumar et al. (2024) on
self-modelling; scoring a predicted activation against the real one is the "simulate and
score" step of Bills et al. (2023); and asking a model about its activations in its own output
space is the idea of LatentQA (Pan et al., 2024).
"""

from mechinterp.selfreport.baselines import (
    BaselineResult,
    cross_prediction_baseline,
    linear_probe_baseline,
    mean_baseline,
    mlp_probe_baseline,
    residual_features,
    token_lookup_baseline,
)
from mechinterp.selfreport.config import (
    ModelShape,
    SelfReportConfig,
    check_against_model,
    load_config,
)
from mechinterp.selfreport.dataset import (
    ActivationDataset,
    ActivationDatasetGenerator,
    neuron_targets,
    pretrained_documents,
    toyworld_documents,
)
from mechinterp.selfreport.pipeline import (
    Prepared,
    Subject,
    cli_command,
    fit_head,
    load_subject,
    prepare,
    run_pipeline,
    scan_documents,
)
from mechinterp.selfreport.predictor import (
    HEAD_TYPES,
    ActivationPredictor,
    PredictorOutput,
    assign_bins,
    default_bin_tokens,
    quantile_bins,
)
from mechinterp.selfreport.scanner import (
    SELECT_BY,
    NeuronExample,
    NeuronScanner,
    NeuronStats,
    plot_scan,
)
from mechinterp.selfreport.scores import activation_drift, pearson_r, r2_score, score_predictions
from mechinterp.selfreport.trainer import (
    STRATEGIES,
    PredictorTrainer,
    next_token_loss,
    train_predictor,
)

__all__ = [
    "HEAD_TYPES",
    "SELECT_BY",
    "STRATEGIES",
    "ActivationDataset",
    "ActivationDatasetGenerator",
    "ActivationPredictor",
    "BaselineResult",
    "ModelShape",
    "NeuronExample",
    "NeuronScanner",
    "NeuronStats",
    "PredictorOutput",
    "PredictorTrainer",
    "Prepared",
    "SelfReportConfig",
    "Subject",
    "activation_drift",
    "assign_bins",
    "check_against_model",
    "cli_command",
    "cross_prediction_baseline",
    "default_bin_tokens",
    "fit_head",
    "linear_probe_baseline",
    "mlp_probe_baseline",
    "load_config",
    "load_subject",
    "mean_baseline",
    "neuron_targets",
    "next_token_loss",
    "pearson_r",
    "plot_scan",
    "prepare",
    "pretrained_documents",
    "quantile_bins",
    "r2_score",
    "residual_features",
    "run_pipeline",
    "scan_documents",
    "score_predictions",
    "toyworld_documents",
    "token_lookup_baseline",
    "train_predictor",
]
