"""Find MLP neurons worth asking a model about: :class:`NeuronScanner`.

Before a model is trained to report a neuron, the neuron has to be chosen, and it has to be
chosen on the scan documents alone (never by how well it is later predicted). The scanner runs
the model over documents, streams moments of every neuron's activation (after the
nonlinearity, ``blocks.{l}.mlp.hook_post``) and keeps, per ``(layer, neuron)``:

* ``variance`` and excess ``kurtosis`` (heavy tails: a neuron that is quiet and fires rarely);
* ``frequency``: share of positions where the activation is positive (GELU is positive exactly
  where its input is);
* ``selectivity``: share of the variance explained by the identity of the current token
  (an eta-squared; 1 means a token lookup table reproduces the neuron), and the token whose
  mean activation is highest (``top_token``, with ``top_token_z``, how many standard deviations
  its mean lies above the rest);
* ``context_variance``: ``variance * (1 - selectivity)``, what the current token does not
  explain, i.e. what depends on context.

Neurons that never move (``max |activation|`` below ``dead_threshold``) are dead and dropped
from every ranking. The statistics follow the explain/simulate/score view of neurons of Bills et
al. (2023): a neuron's top activating contexts (:meth:`NeuronScanner.top_examples`) are what an
explanation would be written from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from mechinterp.errors import ConfigError, ShapeError
from mechinterp.train import progress_enabled

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["NeuronStats", "NeuronExample", "NeuronScanner", "SELECT_BY", "plot_scan",
           "mlp_hook", "model_device"]

SELECT_BY = ("variance", "kurtosis", "frequency", "selectivity", "context_variance")
"""Statistics a neuron can be ranked by in :meth:`NeuronScanner.select`."""


READ_POINTS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post")
"""The residual-stream points a head or probe may read, in the order a block computes them."""


def parse_read_hook(hook: str) -> tuple[int, int]:
    """``blocks.L.hook_resid_{pre,mid,post}`` -> ``(L, stage)`` with stage 0, 1, 2.

    Raises:
        ConfigError: anything else (the message lists the accepted forms).
    """
    parts = hook.split(".") if isinstance(hook, str) else []
    if (len(parts) != 3 or parts[0] != "blocks" or not parts[1].isdigit()
            or parts[2] not in READ_POINTS):
        raise ConfigError(f"read_hook must be 'blocks.N.hook_resid_pre', "
                          f"'blocks.N.hook_resid_mid' or 'blocks.N.hook_resid_post', "
                          f"got {hook!r}")
    return int(parts[1]), READ_POINTS.index(parts[2])


def mlp_hook(layer: int) -> str:
    """Hook name of layer ``layer``'s MLP neurons after the nonlinearity."""
    return f"blocks.{layer}.mlp.hook_post"


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter."""
    return next(model.parameters()).device


@dataclass
class NeuronStats:
    """Statistics of every neuron of one layer, each a ``(d_mlp,)`` tensor.

    Attributes:
        layer: the MLP layer.
        mean, variance, kurtosis, frequency, selectivity, context_variance: see the module.
        max_abs: largest absolute activation seen.
        top_token: id of the token with the highest mean activation.
        top_token_z: that token's mean minus the overall mean, in standard deviations.
        dead: ``max_abs`` below the scanner's ``dead_threshold``.
    """

    layer: int
    mean: torch.Tensor
    variance: torch.Tensor
    kurtosis: torch.Tensor
    frequency: torch.Tensor
    selectivity: torch.Tensor
    context_variance: torch.Tensor
    max_abs: torch.Tensor
    top_token: torch.Tensor
    top_token_z: torch.Tensor
    dead: torch.Tensor

    def row(self, neuron: int) -> dict[str, float | int | bool]:
        """One neuron's statistics as plain numbers."""
        names = ("mean", "variance", "kurtosis", "frequency", "selectivity", "context_variance",
                 "max_abs", "top_token_z")
        out: dict[str, float | int | bool] = {n: round(float(getattr(self, n)[neuron]), 6)
                                              for n in names}
        out["top_token"] = int(self.top_token[neuron])
        out["dead"] = bool(self.dead[neuron])
        return out


@dataclass
class NeuronExample:
    """One position where a neuron fires strongly.

    Attributes:
        document: row of the scanned tokens.
        position: position within it.
        activation: the neuron's activation there.
        token: the token at that position, decoded.
        context: the preceding and following tokens, with the activating token marked
            ``[[like this]]``.
    """

    document: int
    position: int
    activation: float
    token: str
    context: str


def _decoder(tokenizer: Any) -> Callable[[int], str]:
    if tokenizer is None:
        return str
    return lambda i: tokenizer.decode([int(i)])


class NeuronScanner:
    """Scan the MLP neurons of a transformer over documents, then rank and inspect them.

    Args:
        model: a ``TransformerBridge`` with MLP layers.
        tokenizer: anything with ``decode(list_of_ids)`` (the toy world's word tokenizer or a
            Hugging Face tokenizer); used by :meth:`top_examples` only.
        layers: layers to scan (default: all).
        batch_size: documents per forward pass.
        skip_first: leave out position 0 (the beginning-of-sequence token, where every neuron
            takes the same value).
        dead_threshold: a neuron whose largest ``|activation|`` stays below it is dead.

    Raises:
        ConfigError: the model has no MLP layers or a layer is out of range.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any = None, *,
                 layers: Sequence[int] | None = None, batch_size: int = 32,
                 skip_first: bool = True, dead_threshold: float = 1e-3) -> None:
        cfg = model.cfg
        if getattr(cfg, "attn_only", False) or not getattr(cfg, "d_mlp", None):
            raise ConfigError("this model has no MLP layers, so it has no neurons to scan")
        n_layers = cfg.n_layers
        self.layers = list(range(n_layers)) if layers is None else [int(x) for x in layers]
        bad = [x for x in self.layers if not 0 <= x < n_layers]
        if bad:
            raise ConfigError(f"layers {bad} are out of range: layers must lie in "
                              f"[0, {n_layers - 1}]")
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.skip_first, self.dead_threshold = batch_size, skip_first, \
            dead_threshold
        self.stats: dict[int, NeuronStats] = {}
        self.tokens: torch.Tensor | None = None
        self._layer_cache: dict[int, torch.Tensor] = {}  # activations over the scanned tokens

    def _activations(self, tokens: torch.Tensor, layers: Sequence[int]) -> dict[int, torch.Tensor]:
        """``{layer: (batch, pos, d_mlp)}`` activations (float64, CPU) of one batch."""
        names = [mlp_hook(x) for x in layers]
        found: dict[str, torch.Tensor] = {}

        def keep(act: torch.Tensor, hook: Any, name: str) -> torch.Tensor:
            found[name] = act.detach()
            return act

        hooks = [(n, lambda a, hook, n=n: keep(a, hook, n)) for n in names]
        with torch.no_grad():
            self.model.run_with_hooks(tokens.to(model_device(self.model)), fwd_hooks=hooks)
        start = 1 if self.skip_first else 0
        return {x: found[mlp_hook(x)][:, start:].double().cpu() for x in layers}

    def scan(self, tokens: torch.Tensor) -> dict[int, NeuronStats]:
        """Statistics of every neuron of the scanned layers over ``tokens``.

        Args:
            tokens: ``(batch, pos)`` token ids, one document per row.

        Returns:
            ``{layer: NeuronStats}`` (also kept as :attr:`stats`).

        Raises:
            ShapeError: tokens are not a 2-D integer tensor.
        """
        if tokens.ndim != 2 or tokens.is_floating_point():
            raise ShapeError(f"tokens must be (batch, pos) token ids, got {tuple(tokens.shape)} "
                             f"of {tokens.dtype}")
        self.tokens = tokens.cpu()
        self._layer_cache = {}
        start = 1 if self.skip_first else 0
        flat_tokens = self.tokens[:, start:].reshape(-1)
        seen, token_index = torch.unique(flat_tokens, return_inverse=True)
        d_mlp = self.model.cfg.d_mlp
        acc = {x: {"n": 0, "s1": torch.zeros(d_mlp, dtype=torch.float64),
                   "s2": torch.zeros(d_mlp, dtype=torch.float64),
                   "s3": torch.zeros(d_mlp, dtype=torch.float64),
                   "s4": torch.zeros(d_mlp, dtype=torch.float64),
                   "pos": torch.zeros(d_mlp, dtype=torch.float64),
                   "max": torch.zeros(d_mlp, dtype=torch.float64),
                   "tok": torch.zeros(len(seen), d_mlp, dtype=torch.float64)}
               for x in self.layers}
        counts = torch.bincount(token_index, minlength=len(seen)).double()
        per_doc = tokens.shape[1] - start
        for i in tqdm(range(0, len(tokens), self.batch_size), desc="scanning neurons",
                      disable=not progress_enabled(), leave=False):
            acts = self._activations(tokens[i:i + self.batch_size], self.layers)
            rows = token_index[i * per_doc:(i + len(tokens[i:i + self.batch_size])) * per_doc]
            for layer, act in acts.items():
                a, s = act.reshape(-1, d_mlp), acc[layer]
                s["n"] += len(a)
                for power in (1, 2, 3, 4):
                    s[f"s{power}"] += a.pow(power).sum(0)
                s["pos"] += (a > 0).double().sum(0)
                s["max"] = torch.maximum(s["max"], a.abs().amax(0))
                s["tok"].index_add_(0, rows, a)
        self.stats = {x: self._finish(x, acc[x], counts, seen) for x in self.layers}
        return self.stats

    def _finish(self, layer: int, s: dict[str, Any], counts: torch.Tensor,
                seen: torch.Tensor) -> NeuronStats:
        n = s["n"]
        m1, m2, m3, m4 = (s[f"s{p}"] / n for p in (1, 2, 3, 4))
        var = (m2 - m1 ** 2).clamp(min=0)
        central4 = m4 - 4 * m1 * m3 + 6 * m1 ** 2 * m2 - 3 * m1 ** 4
        safe = var.clamp(min=1e-12)
        kurtosis = torch.where(var > 1e-12, central4 / safe ** 2 - 3, torch.zeros_like(var))
        token_mean = s["tok"] / counts[:, None].clamp(min=1)
        between = (counts[:, None] * (token_mean - m1) ** 2).sum(0) / n
        selectivity = torch.where(var > 1e-12, (between / safe).clamp(0, 1), torch.zeros_like(var))
        best = token_mean.argmax(0)
        dead = s["max"] < self.dead_threshold
        return NeuronStats(
            layer=layer, mean=m1.float(), variance=var.float(), kurtosis=kurtosis.float(),
            frequency=(s["pos"] / n).float(), selectivity=selectivity.float(),
            context_variance=(var * (1 - selectivity)).float(), max_abs=s["max"].float(),
            top_token=seen[best], top_token_z=((token_mean.max(0).values - m1) / safe.sqrt()
                                               ).float(), dead=dead)

    def _need_scan(self) -> None:
        if not self.stats:
            raise ConfigError("no scan yet: call NeuronScanner.scan(tokens) first")

    def select(self, k: int, by: str = "variance", layer: int | None = None, *,
               max_correlation: float | None = None) -> list[tuple[int, int]]:
        """The ``k`` live neurons with the highest statistic ``by``, best first.

        Neurons of a layer often come in near-copies (in ``toyworld-2l`` the four neurons of
        highest variance in layer 1 correlate at 0.99 with each other). With
        ``max_correlation``, the ranking is walked greedily and a neuron is skipped when the
        absolute correlation of its activations (over the scanned positions) with one already
        chosen exceeds the bound, so the ``k`` neurons are distinct.

        Args:
            k: how many.
            by: one of :data:`SELECT_BY`.
            layer: rank only this layer's neurons (default: every scanned layer together).
            max_correlation: largest absolute correlation allowed between two chosen neurons,
                in (0, 1]; ``None`` takes the top ``k`` as ranked.

        Returns:
            ``[(layer, neuron), ...]``.

        Raises:
            ConfigError: ``by`` is unknown, ``k`` is not positive, ``max_correlation`` is out
                of range, the layer was not scanned, fewer than ``k`` (distinct) neurons are
                alive, or nothing was scanned yet.
        """
        self._need_scan()
        if by not in SELECT_BY:
            raise ConfigError(f"select_by must be one of {list(SELECT_BY)}, got {by!r}")
        if not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        if max_correlation is not None and (isinstance(max_correlation, bool)
                                            or not isinstance(max_correlation, int | float)
                                            or not 0 < max_correlation <= 1):
            raise ConfigError(f"max_correlation must lie in (0, 1] or be None, got "
                              f"{max_correlation!r}")
        layers = self.layers if layer is None else [layer]
        if layer is not None and layer not in self.stats:
            raise ConfigError(f"layer {layer} was not scanned; scanned layers: {self.layers}")
        candidates = [(float(getattr(self.stats[x], by)[i]), x, i) for x in layers
                      for i in range(len(self.stats[x].variance)) if not self.stats[x].dead[i]]
        if len(candidates) < k:
            raise ConfigError(f"only {len(candidates)} live neurons in layers {layers}; "
                              f"k must be at most that, got {k}")
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        ranked = [(x, i) for _, x, i in candidates]
        if max_correlation is None:
            return ranked[:k]
        return self._distinct(ranked, k, max_correlation)

    def _layer_activations(self, layer: int) -> torch.Tensor:
        """``(rows, d_mlp)`` activations (float32) of one layer over every scanned position,
        computed once per scan."""
        assert self.tokens is not None
        if layer not in self._layer_cache:
            acts = [self._activations(self.tokens[i:i + self.batch_size], [layer])[layer].float()
                    for i in range(0, len(self.tokens), self.batch_size)]
            self._layer_cache[layer] = torch.cat(acts).reshape(-1, self.model.cfg.d_mlp)
        return self._layer_cache[layer]

    def _distinct(self, ranked: list[tuple[int, int]], k: int, bound: float
                  ) -> list[tuple[int, int]]:
        acts = {x: self._layer_activations(x) for x in {x for x, _ in ranked}}
        chosen: list[tuple[int, int]] = []
        unit: list[torch.Tensor] = []  # standardised activations of the chosen neurons
        for x, i in ranked:
            a = acts[x][:, i].double()
            z = (a - a.mean()) / a.std(unbiased=False).clamp(min=1e-12)
            if all(abs(float((z * u).mean())) <= bound for u in unit):
                chosen.append((x, i))
                unit.append(z)
                if len(chosen) == k:
                    return chosen
        raise ConfigError(f"only {len(chosen)} live neurons whose activations correlate at most "
                          f"{bound} with each other; lower k or raise max_correlation")

    def top_examples(self, layer: int, neuron: int, k: int = 5, *, before: int = 8,
                     after: int = 2) -> list[NeuronExample]:
        """The ``k`` positions of the scanned documents where a neuron fires most.

        Args:
            layer: the MLP layer.
            neuron: the neuron's index.
            k: how many examples.
            before: tokens of context shown before the activating one.
            after: tokens shown after it.

        Raises:
            ConfigError: nothing was scanned, or the layer/neuron is out of range.
        """
        self._need_scan()
        if layer not in self.stats:
            raise ConfigError(f"layer {layer} was not scanned; scanned layers: {self.layers}")
        d_mlp = self.model.cfg.d_mlp
        if not 0 <= neuron < d_mlp:
            raise ConfigError(f"neuron must lie in [0, {d_mlp - 1}], got {neuron}")
        assert self.tokens is not None
        start = 1 if self.skip_first else 0
        acts = self._layer_activations(layer)[:, neuron].reshape(len(self.tokens), -1)
        top = acts.reshape(-1).topk(min(k, acts.numel()))
        decode = _decoder(self.tokenizer)
        examples = []
        for value, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            doc, pos = divmod(flat, acts.shape[1])
            pos += start
            row = self.tokens[doc].tolist()
            words = [decode(t) for t in row[max(0, pos - before):pos + after + 1]]
            words[min(pos, before)] = f"[[{words[min(pos, before)]}]]"
            examples.append(NeuronExample(doc, pos, float(value), decode(row[pos]),
                                          " ".join(w.strip() for w in words)))
        return examples


def plot_scan(stats: NeuronStats, selected: Sequence[int] = (), *, x: str = "selectivity",
              y: str = "variance") -> Figure:
    """Scatter every live neuron of a layer by two statistics, selected neurons marked.

    Args:
        stats: one layer's statistics (from :meth:`NeuronScanner.scan`).
        selected: neuron indices to highlight and label.
        x, y: statistics of :data:`SELECT_BY` (or ``mean``) for the axes.

    Raises:
        ConfigError: an unknown statistic.
    """
    import matplotlib.pyplot as plt

    allowed = (*SELECT_BY, "mean")
    for axis, name in (("x", x), ("y", y)):
        if name not in allowed:
            raise ConfigError(f"{axis} must be one of {list(allowed)}, got {name!r}")
    live = ~stats.dead
    xs, ys = getattr(stats, x), getattr(stats, y)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.scatter(xs[live].numpy(), ys[live].numpy(), s=8, alpha=0.5, color="tab:gray",
               label=f"{int(live.sum())} live neurons")
    for i in selected:
        ax.scatter([float(xs[i])], [float(ys[i])], s=40, color="tab:red")
        ax.annotate(str(i), (float(xs[i]), float(ys[i])), xytext=(3, 3),
                    textcoords="offset points", fontsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"MLP neurons of layer {stats.layer} ({int(stats.dead.sum())} dead dropped)")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig
