"""Capture a transformer's activations and look at them: attention patterns, direct logit
attribution and MLP neurons.

These are the first things to look at before any patching: what each head attends to, what
each component writes directly into the answer's logit, and which neurons fire on one group of
prompts more than on another.

* :func:`capture`: activations by hook name (``blocks.0.attn.hook_z``, ``ln_final.hook_scale``).
* :func:`attention_patterns` and :func:`plot_attention`: every head's pattern on a prompt.
* :func:`direct_logit_attribution` and :func:`plot_direct_logit_attribution`: each
  component's direct contribution to ``logit(answer) - logit(wrong)`` at the last position.
  The final LayerNorm is linear once its scale is frozen at the value of the run, so the
  contributions add up exactly to the model's logit difference (nostalgebraist, 2020;
  Elhage et al., 2021; Wang et al., 2023).
* :func:`neuron_activations`, :func:`top_neurons` and :func:`plot_top_neurons`: MLP neurons
  after the nonlinearity.

Components are named as in :class:`mechinterp.circuits.computation.ComputationGraph`:
``embed`` (token plus position), ``L{l}.H{h}`` and ``L{l}.mlp``.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from mechinterp.errors import ConfigError, ShapeError
from mechinterp.toyworld.tasks import PromptSet

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "LogitAttribution",
    "NeuronRanking",
    "attention_patterns",
    "capture",
    "direct_logit_attribution",
    "neuron_activations",
    "plot_attention",
    "plot_direct_logit_attribution",
    "plot_top_neurons",
    "top_neurons",
]


def _tokens(model, tokens: torch.Tensor | PromptSet) -> torch.Tensor:
    """``(batch, pos)`` token ids on the model's device (a prompt set gives its clean prompts;
    a 1-D tensor is one prompt)."""
    if isinstance(tokens, PromptSet):
        tokens = tokens.clean
    if not isinstance(tokens, torch.Tensor):
        raise ShapeError(f"tokens must be a tensor of token ids or a PromptSet, got "
                         f"{type(tokens).__name__}")
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.ndim != 2:
        raise ShapeError(f"tokens must have shape (batch, pos) or (pos,), got {tuple(tokens.shape)}")
    if tokens.shape[1] > model.cfg.n_ctx:
        raise ShapeError(f"prompts have {tokens.shape[1]} positions; the model's context is "
                         f"{model.cfg.n_ctx}")
    return tokens.to(next(model.parameters()).device)


def capture(model, tokens: torch.Tensor | PromptSet,
            names: str | Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Activations of one forward pass, by hook name, without gradients.

    Args:
        model: a ``TransformerBridge`` (or any ``HookedRootModule``).
        tokens: ``(batch, pos)`` or ``(pos,)`` token ids, or a :class:`PromptSet` (its clean
            prompts).
        names: one hook name or several (``blocks.0.attn.hook_pattern``,
            ``blocks.1.hook_resid_post``, ``ln_final.hook_scale``...); ``None`` keeps every
            hook that fires.

    Returns:
        ``{name: activation}`` in the order asked for.

    Raises:
        ConfigError: a name is not a hook of the model (the message suggests close names), or
            is a hook that does not fire on this model (some, like ``blocks.0.attn.hook_result``,
            need a config flag).
        ShapeError: tokens of the wrong shape or longer than the context.
    """
    tokens = _tokens(model, tokens)
    wanted = [names] if isinstance(names, str) else None if names is None else list(names)
    if wanted is not None:
        known = model.hook_dict
        unknown = [n for n in wanted if n not in known]
        if unknown:
            close = sorted({c for n in unknown for c in difflib.get_close_matches(n, known, 3)})
            examples = close or sorted(known)[:6]
            raise ConfigError(f"unknown hook names {unknown}; the model has {len(known)} hooks, "
                              f"e.g. {examples}")
    with torch.no_grad(), warnings.catch_warnings():
        # gated-off hooks are reported below as a ConfigError, not as a warning
        warnings.filterwarnings("ignore", message="run_with_cache: skipped")
        _, cache = model.run_with_cache(tokens, names_filter=wanted)
    if wanted is None:
        return {name: cache[name] for name in cache.keys()}
    silent = [n for n in wanted if n not in cache]
    if silent:
        raise ConfigError(f"hooks {silent} exist but do not fire on this model: they are gated "
                          f"off (hook_result, hook_attn_in, hook_q_input, hook_mlp_in need a "
                          f"model.set_use_*(True) call, which not every bridge supports); per-head "
                          f"outputs are hook_z times W_O, and hook_attn_out, hook_mlp_out fire")
    return {name: cache[name] for name in wanted}


def attention_patterns(model, tokens: torch.Tensor | PromptSet) -> torch.Tensor:
    """Every head's attention pattern, ``(batch, n_layers, n_heads, query, key)``.

    ``patterns[i]`` is one prompt's grid, ready for :func:`plot_attention`; each row (query)
    sums to 1 and a query attends only to itself and earlier keys.
    """
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    acts = capture(model, tokens, names)
    return torch.stack([acts[n] for n in names], dim=1)


def _as_numpy(values: torch.Tensor):
    return values.detach().cpu().float().numpy()


def plot_attention(pattern: torch.Tensor, labels: Sequence[str] | None = None, *,
                   title: str = "", max_labels: int = 24) -> Figure:
    """A grid of attention heatmaps for one prompt: a row per layer, a column per head.

    Args:
        pattern: ``(n_layers, n_heads, query, key)``, one prompt of :func:`attention_patterns`.
        labels: the prompt's tokens as strings (``tokenizer.decode(ids).split()``), used as
            tick labels when there are at most ``max_labels`` of them.
        title: figure title.

    Returns:
        The figure: ``n_layers * n_heads`` heatmaps and one shared colour bar.

    Raises:
        ShapeError: ``pattern`` is not 4-D, or ``labels`` does not match its positions.
    """
    from mechinterp.plotting import plt

    if pattern.ndim != 4:
        raise ShapeError(f"plot_attention needs one prompt's (n_layers, n_heads, query, key) "
                         f"patterns, got shape {tuple(pattern.shape)}; index a prompt of "
                         f"attention_patterns(...) first")
    n_layers, n_heads, n_pos = pattern.shape[0], pattern.shape[1], pattern.shape[-1]
    if labels is not None and len(labels) != n_pos:
        raise ShapeError(f"{len(labels)} labels for {n_pos} positions")
    show = labels is not None and n_pos <= max_labels
    side = 2.2 + 0.1 * n_pos * show
    fig, axes = plt.subplots(n_layers, n_heads, figsize=(side * n_heads + 1, side * n_layers),
                             squeeze=False)
    data = _as_numpy(pattern)
    for layer in range(n_layers):
        for head in range(n_heads):
            ax = axes[layer, head]
            im = ax.imshow(data[layer, head], cmap="Blues", vmin=0, vmax=1)
            ax.set_title(f"L{layer}.H{head}", fontsize=9)
            if show:
                ax.set_xticks(range(n_pos), labels, rotation=90, fontsize=6)
                ax.set_yticks(range(n_pos), labels, fontsize=6)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
            if layer == n_layers - 1:
                ax.set_xlabel("key", fontsize=8)
            if head == 0:
                ax.set_ylabel("query", fontsize=8)
    fig.colorbar(im, ax=axes, label="attention", fraction=0.02, pad=0.02)
    if title:
        fig.suptitle(title)
    return fig


@dataclass
class LogitAttribution:
    """Direct contributions to ``logit(answer) - logit(wrong)`` at the last position.

    Attributes:
        names: component names: ``embed``, ``L{l}.H{h}``, ``L{l}.mlp`` (its output bias
            included), then the constant terms ``L{l}.b_O`` (each layer's attention output
            bias), ``ln_final.b`` (the final LayerNorm's bias) and ``b_U`` (the unembedding
            bias).
        contributions: ``(n_components, batch)``, one row per name.
        logit_diff: ``(batch,)`` the model's logit difference; equals ``contributions.sum(0)``.
        n_layers, n_heads: the model's sizes.
    """

    names: list[str]
    contributions: torch.Tensor
    logit_diff: torch.Tensor
    n_layers: int
    n_heads: int

    def mean(self) -> dict[str, float]:
        """Mean contribution over prompts, by component name."""
        means = self.contributions.mean(1)
        return {name: float(v) for name, v in zip(self.names, means, strict=True)}

    def total(self) -> torch.Tensor:
        """``(batch,)`` the sum over components (the logit difference, up to rounding)."""
        return self.contributions.sum(0)

    def heads(self) -> torch.Tensor:
        """``(n_layers, n_heads)`` mean contribution of each head."""
        means = self.mean()
        return torch.tensor([[means[f"L{layer}.H{h}"] for h in range(self.n_heads)]
                             for layer in range(self.n_layers)])

    def others(self) -> dict[str, float]:
        """Mean contributions of everything but the heads (embeddings, MLPs, biases)."""
        return {k: v for k, v in self.mean().items() if ".H" not in k}


def _ln_final_affine(model) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    params = dict(model.ln_final.named_parameters())
    weight = next((v for k, v in params.items() if k.endswith("weight")), None)
    bias = next((v for k, v in params.items() if k.endswith("bias")), None)
    return weight, bias


@torch.no_grad()
def direct_logit_attribution(model, prompts: PromptSet, *, which: str = "clean"
                             ) -> LogitAttribution:
    """Split the last position's ``logit(answer) - logit(wrong)`` into what each component
    writes directly.

    The residual stream before the final LayerNorm is the sum of the embeddings, every head's
    output ``z_h W_O[h]``, every attention output bias, and every MLP's output. With the
    LayerNorm's scale frozen at its value in this run, the logit difference is linear in that
    sum: component ``c`` contributes ``(c - mean(c)) / scale * w_ln . (W_U[:, answer] -
    W_U[:, wrong])``, and the LayerNorm bias and ``b_U`` add constants. Indirect effects (a
    head changing what a later head reads) are not counted: patching measures those.

    Args:
        model: a ``TransformerBridge`` with LayerNorm (``LN`` or ``LNPre``).
        prompts: prompts with ``answer`` and ``wrong`` tokens.
        which: attribute the ``clean`` or the ``corrupted`` prompts.

    Raises:
        ConfigError: ``which`` is unknown, or the model does not use LayerNorm.
    """
    if which not in ("clean", "corrupted"):
        raise ConfigError(f"which must be 'clean' or 'corrupted', got {which!r}")
    cfg = model.cfg
    norm = getattr(cfg, "normalization_type", "LN")
    if norm not in ("LN", "LNPre"):
        raise ConfigError(f"direct logit attribution supports LayerNorm models (LN, LNPre), "
                          f"got {norm!r}")
    n_layers, n_heads = cfg.n_layers, cfg.n_heads
    attn_only = bool(getattr(cfg, "attn_only", False))
    tokens = getattr(prompts, which)
    names = ["hook_embed", "hook_pos_embed", "ln_final.hook_scale"]
    names += [f"blocks.{layer}.attn.hook_z" for layer in range(n_layers)]
    if not attn_only:
        names += [f"blocks.{layer}.hook_mlp_out" for layer in range(n_layers)]
    with torch.no_grad():
        logits, cache = model.run_with_cache(_tokens(model, tokens), names_filter=names)
    device = logits.device
    answer, wrong = prompts.answer.to(device), prompts.wrong.to(device)
    rows = torch.arange(len(answer), device=device)
    last = logits[:, -1]
    logit_diff = last[rows, answer] - last[rows, wrong]

    weight, bias = _ln_final_affine(model)
    direction = (model.W_U[:, answer] - model.W_U[:, wrong]).T  # batch d_model
    if weight is not None:
        direction = direction * weight
    scale = cache["ln_final.hook_scale"][:, -1]  # batch 1

    def through_ln(x: torch.Tensor) -> torch.Tensor:
        """``(..., batch, d_model)`` -> ``(..., batch)``: the direct logit difference."""
        return ((x - x.mean(-1, keepdim=True)) / scale * direction).sum(-1)

    parts: list[tuple[str, torch.Tensor]] = [
        ("embed", through_ln(cache["hook_embed"][:, -1] + cache["hook_pos_embed"][:, -1]))]
    for layer in range(n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"][:, -1]  # batch head d_head
        heads = through_ln(torch.einsum("bhe,hed->hbd", z, model.W_O[layer]))
        parts += [(f"L{layer}.H{h}", heads[h]) for h in range(n_heads)]
        if not attn_only:
            parts.append((f"L{layer}.mlp", through_ln(cache[f"blocks.{layer}.hook_mlp_out"][:, -1])))
    batch = len(answer)
    for layer in range(n_layers):
        parts.append((f"L{layer}.b_O", through_ln(model.b_O[layer].expand(batch, -1))))
    ln_bias = torch.zeros(batch, device=device) if bias is None else \
        (model.W_U[:, answer] - model.W_U[:, wrong]).T @ bias
    parts.append(("ln_final.b", ln_bias))
    parts.append(("b_U", model.b_U[answer] - model.b_U[wrong]))
    return LogitAttribution([n for n, _ in parts],
                            torch.stack([v for _, v in parts]).detach().cpu(),
                            logit_diff.detach().cpu(), n_layers, n_heads)


def plot_direct_logit_attribution(attribution: LogitAttribution, *, title: str = "") -> Figure:
    """Mean direct contributions: a layer x head heatmap and bars for everything else.

    Returns:
        The figure: the heatmap, its colour bar and the bar chart (three axes).
    """
    from mechinterp.plotting import plt

    heads = attribution.heads()
    others = attribution.others()
    fig, (ax_heads, ax_rest) = plt.subplots(
        1, 2, figsize=(4 + 0.6 * attribution.n_heads + 4, 1.5 + max(2.0, 0.35 * len(others))),
        gridspec_kw={"width_ratios": [1 + 0.15 * attribution.n_heads, 1.2]})
    span = float(heads.abs().max()) or 1.0
    im = ax_heads.imshow(heads.numpy(), cmap="RdBu_r", vmin=-span, vmax=span, aspect="auto")
    ax_heads.set_xticks(range(attribution.n_heads))
    ax_heads.set_yticks(range(attribution.n_layers))
    ax_heads.set_xlabel("head")
    ax_heads.set_ylabel("layer")
    ax_heads.set_title("heads")
    fig.colorbar(im, ax=ax_heads, label="direct logit difference", fraction=0.046, pad=0.04)
    names = list(others)
    values = [others[n] for n in names]
    ax_rest.barh(range(len(names)), values,
                 color=["tab:red" if v > 0 else "tab:blue" for v in values])
    ax_rest.set_yticks(range(len(names)), names)
    ax_rest.invert_yaxis()
    ax_rest.axvline(0, color="black", linewidth=0.8)
    ax_rest.set_xlabel("direct logit difference")
    ax_rest.set_title(f"other components (logit diff {float(attribution.logit_diff.mean()):.2f})")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _check_mlp_layer(model, layer: int) -> None:
    if getattr(model.cfg, "attn_only", False):
        raise ConfigError("the model is attention-only: it has no MLP neurons")
    if not 0 <= layer < model.cfg.n_layers:
        raise ConfigError(f"layer must be in [0, {model.cfg.n_layers}), got {layer}")


def neuron_activations(model, tokens: torch.Tensor | PromptSet, layer: int) -> torch.Tensor:
    """``(batch, pos, d_mlp)`` MLP neuron activations of ``layer``, after the nonlinearity
    (``blocks.{layer}.mlp.hook_post``).

    Raises:
        ConfigError: an attention-only model or a layer out of range.
    """
    _check_mlp_layer(model, layer)
    name = f"blocks.{layer}.mlp.hook_post"
    return capture(model, tokens, name)[name]


@dataclass
class NeuronRanking:
    """The ``k`` MLP neurons of one layer with the highest score.

    Attributes:
        layer: the MLP layer.
        indices: ``(k,)`` neuron indices, highest score first.
        scores: ``(k,)`` their scores: the mean activation, or its difference from the
            baseline group's mean when there is one.
        mean: ``(d_mlp,)`` every neuron's mean activation on the prompts.
        baseline_mean: ``(d_mlp,)`` on the baseline prompts, or ``None``.
        position: the position averaged over (``None``: every position).
    """

    layer: int
    indices: torch.Tensor
    scores: torch.Tensor
    mean: torch.Tensor
    baseline_mean: torch.Tensor | None
    position: int | None


def top_neurons(model, prompts: torch.Tensor | PromptSet, layer: int, k: int = 10, *,
                baseline: torch.Tensor | None = None, position: int | None = -1
                ) -> NeuronRanking:
    """Rank one layer's MLP neurons by mean activation, or by how much more they fire on the
    prompts than on a baseline group.

    Args:
        model: a ``TransformerBridge`` with MLPs.
        prompts: ``(batch, pos)`` token ids, or a :class:`PromptSet`: its clean prompts, with
            its corrupted prompts as the baseline unless ``baseline`` is given.
        layer: the MLP layer.
        k: how many neurons to keep.
        baseline: ``(batch, pos)`` token ids of a second group (any batch size and length).
        position: the position to read (``-1``: the last one; ``None``: the mean over every
            position).

    Raises:
        ConfigError: an attention-only model, a layer out of range, or ``k`` outside
            ``[1, d_mlp]``.
    """
    _check_mlp_layer(model, layer)
    if isinstance(prompts, PromptSet):
        baseline = prompts.corrupted if baseline is None else baseline
        prompts = prompts.clean

    def mean(tokens: torch.Tensor) -> torch.Tensor:
        acts = neuron_activations(model, tokens, layer)
        acts = acts.flatten(0, 1) if position is None else acts[:, position]
        return acts.mean(0).cpu()

    means = mean(prompts)
    if not 1 <= k <= means.shape[0]:
        raise ConfigError(f"k must be in [1, {means.shape[0]}] (the layer's neurons), got {k}")
    base = None if baseline is None else mean(baseline)
    score = means if base is None else means - base
    scores, indices = score.topk(k)
    return NeuronRanking(layer, indices, scores, means, base, position)


def plot_top_neurons(ranking: NeuronRanking, *, labels: tuple[str, str] = ("prompts", "baseline"),
                     title: str = "") -> Figure:
    """The top neurons' mean activations.

    With a baseline group: a scatter of every neuron's mean on the prompts against its mean on
    the baseline (the top ``k`` marked) and paired bars for the top ``k`` (two axes). Without:
    bars of the top ``k`` (one axis).

    Args:
        ranking: the result of :func:`top_neurons`.
        labels: names of the two groups.
        title: figure title.
    """
    from mechinterp.plotting import plt

    k = len(ranking.indices)
    idx = ranking.indices.tolist()
    where = "last position" if ranking.position == -1 else \
        "every position" if ranking.position is None else f"position {ranking.position}"
    if ranking.baseline_mean is None:
        fig, ax_bar = plt.subplots(figsize=(1.5 + 0.45 * k, 3.2))
    else:
        fig, (ax_scatter, ax_bar) = plt.subplots(1, 2, figsize=(5 + 0.45 * k, 4),
                                                 gridspec_kw={"width_ratios": [1, 1.3]})
        x, y = ranking.baseline_mean.numpy(), ranking.mean.numpy()
        ax_scatter.scatter(x, y, s=8, color="grey", alpha=0.6)
        ax_scatter.scatter(x[idx], y[idx], s=18, color="tab:red")
        for i in idx[:3]:
            ax_scatter.annotate(str(i), (x[i], y[i]), xytext=(4, 2), textcoords="offset points",
                                fontsize=7)
        low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax_scatter.plot([low, high], [low, high], color="black", linewidth=0.8)
        ax_scatter.set_xlabel(f"mean activation, {labels[1]}")
        ax_scatter.set_ylabel(f"mean activation, {labels[0]}")
        ax_scatter.set_title(f"L{ranking.layer} neurons")
    width = 0.4 if ranking.baseline_mean is not None else 0.8
    positions = torch.arange(k).float()
    ax_bar.bar(positions - (width / 2 if ranking.baseline_mean is not None else 0),
               ranking.mean[idx].numpy(), width, label=labels[0], color="tab:red")
    if ranking.baseline_mean is not None:
        ax_bar.bar(positions + width / 2, ranking.baseline_mean[idx].numpy(), width,
                   label=labels[1], color="tab:blue")
        ax_bar.legend(fontsize=8)
    ax_bar.set_xticks(range(k), [str(i) for i in idx], rotation=90, fontsize=7)
    ax_bar.set_xlabel("neuron")
    ax_bar.set_ylabel("mean activation")
    ax_bar.set_title(f"top {k} neurons ({where})")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
