"""A model that reports its own neurons: :class:`ActivationPredictor`.

The predictor wraps the model (its weights are the predictor's weights, so fine-tuning it
changes the very neurons it reports on) and reads the answer for every position at once with
one of three heads:

* ``regression``: a linear map from the residual stream at ``read_hook`` (by default
  ``blocks.{layer}.hook_resid_mid``, just before the neurons' MLP, so the head must predict
  what the neurons are about to compute rather than read what they wrote) to the activations;
* ``classification``: a linear map to logits over activation bins, whose edges are quantiles of
  the training activations; the reported value is the expected bin value under the softmax;
* ``token``: no new weights at all. Each bin of each neuron is given a token of the model's own
  vocabulary, and the model answers through its own unembedding: the logits of those tokens
  at the position are read as the bin logits. This is the closest
  a toy model gets to saying the answer (it reads the same ``read_hook``, through the model's
  own final norm and unembedding, like a logit lens; at the last block's ``resid_post`` this
  is exactly the model's output), in the spirit of the introspection experiments of
  Binder et al. (2024), "Looking Inward: Language Models Can Learn About Themselves by
  Introspection", and of LatentQA (Pan et al., 2024), which asks a model questions about its
  own activations in its own output space.

Making a network predict its own internal states was studied as *self-modelling* by Premakumar
et al. (2024), "Unexpected Benefits of Self-Modeling in Neural Systems".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mechinterp.errors import ConfigError, ShapeError
from mechinterp.selfreport.scanner import mlp_hook, parse_read_hook

__all__ = ["HEAD_TYPES", "ActivationPredictor", "PredictorOutput", "quantile_bins",
           "assign_bins", "default_bin_tokens"]

HEAD_TYPES = ("regression", "classification", "token")
"""The heads an :class:`ActivationPredictor` can read its answer with."""


def quantile_bins(values: torch.Tensor, n_bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin edges at quantiles of ``values`` and each bin's mean value.

    Args:
        values: ``(rows, n_neurons)`` training activations.
        n_bins: bins per neuron (>= 2).

    Returns:
        ``edges`` ``(n_neurons, n_bins - 1)`` and ``centres`` ``(n_neurons, n_bins)``: the mean
        training value in each bin (a bin left empty by tied quantiles takes its edge).

    Raises:
        ConfigError: fewer than two bins.
        ShapeError: ``values`` is not 2-D.
    """
    if n_bins < 2:
        raise ConfigError(f"n_bins must be at least 2, got {n_bins}")
    if values.ndim != 2:
        raise ShapeError(f"values must be (rows, n_neurons), got {tuple(values.shape)}")
    q = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)[1:-1]
    edges = torch.quantile(values.double().T, q, dim=1).T.float().contiguous()
    bins = assign_bins(values, edges)
    centres = torch.zeros(values.shape[1], n_bins)
    for j in range(values.shape[1]):
        sums = torch.zeros(n_bins).index_add_(0, bins[:, j], values[:, j].float())
        counts = torch.bincount(bins[:, j], minlength=n_bins).float()
        fallback = torch.cat([edges[j, :1], edges[j]])
        centres[j] = torch.where(counts > 0, sums / counts.clamp(min=1), fallback)
    return edges, centres


def assign_bins(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Bin index of each value, ``(..., n_neurons)`` with ``edges`` ``(n_neurons, n_bins-1)``."""
    flat = values.reshape(-1, values.shape[-1])
    out = torch.stack([torch.bucketize(flat[:, j].contiguous(), edges[j].to(flat.device))
                       for j in range(flat.shape[1])], dim=1)
    return out.reshape(values.shape)


def default_bin_tokens(tokenizer: Any, vocab_size: int, n_neurons: int, n_bins: int
                       ) -> torch.Tensor:
    """Token ids the ``token`` head answers with, ``(n_neurons, n_bins)``, all distinct.

    For the toy world's tokenizer these are the copy tokens ``t00, t01, ...`` (then other
    words); for another tokenizer, the last ids of the vocabulary that are not special tokens.

    Raises:
        ConfigError: the vocabulary is too small for ``n_neurons * n_bins`` answer tokens.
    """
    need = n_neurons * n_bins
    if hasattr(tokenizer, "class_ids"):
        special = {tokenizer.bos_id, tokenizer.pad_id}
        preferred = tokenizer.class_ids("token").tolist()
        rest = [i for i in range(vocab_size) if i not in special and i not in preferred]
        pool = preferred + rest
    else:
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        pool = [i for i in range(vocab_size - 1, -1, -1) if i not in special]
    if len(pool) < need:
        raise ConfigError(f"the token head needs n_neurons * n_bins = {need} answer tokens but "
                          f"the vocabulary offers {len(pool)}; use fewer neurons or bins")
    return torch.tensor(pool[:need]).reshape(n_neurons, n_bins)


def _seeded_linear(d_in: int, d_out: int, seed: int) -> nn.Linear:
    """A linear layer initialised from ``seed`` without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Linear(d_in, d_out)


@dataclass
class PredictorOutput:
    """What one forward pass of an :class:`ActivationPredictor` returns.

    Attributes:
        prediction: ``(batch, pos, n_neurons)`` reported activations.
        logits: ``(batch, pos, n_neurons, n_bins)`` bin logits (``None`` for regression).
        raw: ``(batch, pos, n_neurons)`` the regression head's standardised output (else None).
        live: ``(batch, pos, n_neurons)`` the neurons' activations in the model as it is now.
        model_logits: ``(batch, pos, d_vocab)`` the model's next-token logits of the same pass
            (what the language-modelling term of the training loss is computed on).
    """

    prediction: torch.Tensor
    logits: torch.Tensor | None
    raw: torch.Tensor | None
    live: torch.Tensor
    model_logits: torch.Tensor


class ActivationPredictor(nn.Module):
    """A model wrapped with a head that reports some of its own MLP neurons.

    Args:
        model: the ``TransformerBridge``; it becomes a submodule (not copied).
        layer: the MLP layer of the neurons.
        neurons: the neurons' indices.
        head: one of :data:`HEAD_TYPES`.
        read_hook: the residual stream every head reads,
            ``blocks.N.hook_resid_pre|mid|post`` (default: ``hook_resid_mid`` of ``layer``).
        target_mean, target_std: ``(n_neurons,)`` training statistics (regression head).
        bin_edges, bin_values: from :func:`quantile_bins` (classification and token heads).
        bin_tokens: ``(n_neurons, n_bins)`` answer token ids (token head).
        seed: initialises the readout (the same seed gives the same head).

    Raises:
        ConfigError: an unknown head, or what the head needs is missing or out of range.
    """

    def __init__(self, model: nn.Module, layer: int, neurons: Sequence[int], head: str, *,
                 read_hook: str | None = None, target_mean: torch.Tensor | None = None,
                 target_std: torch.Tensor | None = None, bin_edges: torch.Tensor | None = None,
                 bin_values: torch.Tensor | None = None,
                 bin_tokens: torch.Tensor | None = None, seed: int = 0) -> None:
        super().__init__()
        if head not in HEAD_TYPES:
            raise ConfigError(f"head must be one of {list(HEAD_TYPES)}, got {head!r}")
        cfg = model.cfg
        self.model, self.layer, self.neurons, self.head = model, layer, list(neurons), head
        self.read_hook = read_hook or f"blocks.{layer}.hook_resid_mid"
        if not 0 <= parse_read_hook(self.read_hook)[0] < cfg.n_layers:
            raise ConfigError(f"read_hook must name a block in [0, {cfg.n_layers - 1}], got "
                              f"{self.read_hook!r}")
        n = len(self.neurons)
        self.register_buffer("neuron_index", torch.tensor(self.neurons))
        self.register_buffer("target_mean", torch.zeros(n) if target_mean is None
                             else target_mean.float().clone())
        self.register_buffer("target_std", torch.ones(n) if target_std is None
                             else target_std.float().clamp(min=1e-6).clone())
        self.readout: nn.Linear | None = None
        if head == "regression":
            self.readout = _seeded_linear(cfg.d_model, n, seed)
            return
        if bin_edges is None or bin_values is None:
            raise ConfigError(f"the {head} head needs bin_edges and bin_values "
                              f"(see quantile_bins)")
        self.n_bins = bin_values.shape[1]
        self.register_buffer("bin_edges", bin_edges.float().clone())
        self.register_buffer("bin_values", bin_values.float().clone())
        if head == "classification":
            self.readout = _seeded_linear(cfg.d_model, n * self.n_bins, seed)
            return
        if bin_tokens is None or tuple(bin_tokens.shape) != (n, self.n_bins):
            raise ConfigError(f"the token head needs bin_tokens of shape ({n}, {self.n_bins})")
        if bin_tokens.min() < 0 or bin_tokens.max() >= cfg.d_vocab:
            raise ConfigError(f"bin_tokens must be token ids in [0, {cfg.d_vocab - 1}]")
        if len(bin_tokens.unique()) != bin_tokens.numel():
            raise ConfigError("bin_tokens must all be different tokens")
        self.register_buffer("bin_tokens", bin_tokens.long().clone())

    @classmethod
    def for_dataset(cls, model: nn.Module, dataset: Any, head: str, *, n_bins: int = 10,
                    tokenizer: Any = None, read_hook: str | None = None,
                    bin_tokens: torch.Tensor | None = None, seed: int = 0
                    ) -> ActivationPredictor:
        """A predictor whose target statistics and bins come from a dataset's train split.

        Args:
            model: the model to wrap (may differ from the one that produced the targets: that
                is cross-prediction).
            dataset: an :class:`~mechinterp.selfreport.dataset.ActivationDataset`.
            head: one of :data:`HEAD_TYPES`.
            n_bins: bins per neuron (classification and token heads).
            tokenizer: picks the answer tokens of the token head (see
                :func:`default_bin_tokens`) unless ``bin_tokens`` is given.
            read_hook: the residual stream the heads read (default: just before the neurons'
                MLP).
            bin_tokens: ``(n_neurons, n_bins)`` answer token ids for the token head.
            seed: initialises the readout.
        """
        train = dataset.flat_targets("train")
        kwargs: dict[str, Any] = {"read_hook": read_hook, "target_mean": train.mean(0),
                                  "target_std": train.std(0)}
        if head != "regression":
            kwargs["bin_edges"], kwargs["bin_values"] = quantile_bins(train, n_bins)
        if head == "token":
            kwargs["bin_tokens"] = bin_tokens if bin_tokens is not None else default_bin_tokens(
                tokenizer, model.cfg.d_vocab, train.shape[1], n_bins)
        return cls(model, dataset.layer, dataset.neurons, head, seed=seed, **kwargs)

    @property
    def residual_hook(self) -> str:
        """Hook name of the residual stream the heads read."""
        return self.read_hook

    def head_parameters(self) -> list[nn.Parameter]:
        """The parameters trained under every strategy: the readout, or for the token head
        the model's own unembedding (only the answer tokens' columns receive gradients)."""
        if self.readout is not None:
            return list(self.readout.parameters())
        return list(self.model.unembed.parameters())

    def forward(self, tokens: torch.Tensor) -> PredictorOutput:
        """Report the neurons at every position of ``tokens`` ``(batch, pos)``.

        Raises:
            ShapeError: tokens are not ``(batch, pos)``.
        """
        if tokens.ndim != 2:
            raise ShapeError(f"tokens must be (batch, pos), got {tuple(tokens.shape)}")
        found: dict[str, torch.Tensor] = {}

        def keep(name: str):
            def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
                found[name] = act
                return act
            return hook

        hooks = [(mlp_hook(self.layer), keep("live")), (self.residual_hook, keep("resid"))]
        logits = self.model.run_with_hooks(tokens, fwd_hooks=hooks)
        live = found["live"][..., self.neuron_index]
        n = len(self.neurons)
        if self.head == "regression":
            raw = self.readout(found["resid"])
            return PredictorOutput(raw * self.target_std + self.target_mean, None, raw, live,
                                   logits)
        if self.head == "classification":
            bin_logits = self.readout(found["resid"]).unflatten(-1, (n, self.n_bins))
        else:  # the model's own answer tokens, read from the read point (a logit lens)
            lens = self.model.unembed(self.model.ln_final(found["resid"]))
            bin_logits = lens[..., self.bin_tokens]
        prediction = (bin_logits.softmax(-1) * self.bin_values).sum(-1)
        return PredictorOutput(prediction, bin_logits, None, live, logits)

    def loss(self, output: PredictorOutput, targets: torch.Tensor,
             first_position: int = 1) -> torch.Tensor:
        """Training loss against ``targets`` ``(batch, pos, n_neurons)`` from
        ``first_position`` on: mean squared error of standardised values for regression,
        cross-entropy over bins otherwise."""
        t = targets[:, first_position:]
        if self.head == "regression":
            assert output.raw is not None
            z = (t - self.target_mean) / self.target_std
            return F.mse_loss(output.raw[:, first_position:], z)
        assert output.logits is not None
        bins = assign_bins(t, self.bin_edges)
        logits = output.logits[:, first_position:]
        return F.cross_entropy(logits.reshape(-1, self.n_bins), bins.reshape(-1))

    def anchor_loss(self, output: PredictorOutput, targets: torch.Tensor,
                    first_position: int = 1) -> torch.Tensor:
        """Mean squared change of the reported neurons from ``targets`` (their frozen values),
        in units of the training standard deviation."""
        change = (output.live[:, first_position:] - targets[:, first_position:]) / self.target_std
        return change.pow(2).mean()
