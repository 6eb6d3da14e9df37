"""Several GPT-2-style transformers run as one: the forward pass SIIT trains through.

Interchange training runs every model many times per step with single components replaced.
Hooks on a ``TransformerBridge`` would do it one model and one patch at a time; here the
weights of ``n_models`` models of one shape are stacked along a leading dimension and the
forward pass replaces any component's output for any row in one go (a per-row mask). The
arithmetic is the bridge's own (pre-LayerNorm blocks, learned positions, GELU MLPs, no
unembedding bias), so :func:`to_bridge` hands the trained weights to a ``TransformerBridge``
that reproduces these logits (tested); everything after training runs on the bridge.

Components are named and ordered as in :class:`mechinterp.circuits.ComputationGraph`:
``L{l}.H{h}`` for each head, then ``L{l}.mlp``, layer by layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformer_lens import TransformerBridge, TransformerBridgeConfig

from mechinterp.config import require_positive_ints
from mechinterp.errors import ConfigError, ShapeError

__all__ = ["SIITArch", "StackedTransformer", "component_names", "to_bridge", "from_bridges"]


@dataclass(frozen=True)
class SIITArch:
    """The shape of a benchmark transformer.

    Attributes:
        n_layers, n_heads, d_model, d_mlp: sizes (``d_head = d_model // n_heads``).
        n_ctx: context length; d_vocab: vocabulary size.
    """

    n_layers: int = 4
    n_heads: int = 4
    d_model: int = 32
    d_mlp: int = 64
    n_ctx: int = 12
    d_vocab: int = 40

    def __post_init__(self) -> None:
        require_positive_ints(self, "n_layers", "n_heads", "d_model", "d_mlp", "n_ctx", "d_vocab")
        if self.d_model % self.n_heads:
            raise ConfigError(f"SIITArch.d_model ({self.d_model}) must be divisible by "
                              f"n_heads ({self.n_heads})")

    @property
    def d_head(self) -> int:
        """``d_model // n_heads``."""
        return self.d_model // self.n_heads

    def bridge_config(self, seed: int, name: str) -> TransformerBridgeConfig:
        """The ``TransformerBridgeConfig`` of one model."""
        return TransformerBridgeConfig(
            d_model=self.d_model, d_head=self.d_head, n_heads=self.n_heads,
            n_layers=self.n_layers, n_ctx=self.n_ctx, d_vocab=self.d_vocab, d_mlp=self.d_mlp,
            attn_only=False, act_fn="gelu", normalization_type="LN", seed=seed,
            model_name=name)


def component_names(arch: SIITArch) -> list[str]:
    """``L0.H0 .. L0.H{n-1}, L0.mlp, L1.H0, ...``: the order of the component axis."""
    out = []
    for layer in range(arch.n_layers):
        out += [f"L{layer}.H{h}" for h in range(arch.n_heads)] + [f"L{layer}.mlp"]
    return out


# (stacked name, bridge parameter suffix) for the per-layer weights
_LAYER_PARAMS = {
    "ln1_w": "ln1._original_component.weight", "ln1_b": "ln1._original_component.bias",
    "q_w": "attn._original_component.q._original_component.weight",
    "q_b": "attn._original_component.q._original_component.bias",
    "k_w": "attn._original_component.k._original_component.weight",
    "k_b": "attn._original_component.k._original_component.bias",
    "v_w": "attn._original_component.v._original_component.weight",
    "v_b": "attn._original_component.v._original_component.bias",
    "o_w": "attn._original_component.o._original_component.weight",
    "o_b": "attn._original_component.o._original_component.bias",
    "ln2_w": "ln2._original_component.weight", "ln2_b": "ln2._original_component.bias",
    "in_w": "mlp._original_component.fc_in._original_component.weight",
    "in_b": "mlp._original_component.fc_in._original_component.bias",
    "out_w": "mlp._original_component.fc_out._original_component.weight",
    "out_b": "mlp._original_component.fc_out._original_component.bias",
}
_GLOBAL_PARAMS = {"embed": "tok_embed._original_component.weight",
                  "pos": "pos._original_component.weight",
                  "lnf_w": "ln_out._original_component.weight",
                  "lnf_b": "ln_out._original_component.bias",
                  "unembed": "head._original_component.weight"}


def _bridge_params(bridge: TransformerBridge) -> dict[str, torch.nn.Parameter]:
    return dict(bridge.named_parameters())


def from_bridges(bridges: list[TransformerBridge]) -> dict[str, torch.Tensor]:
    """Stack the weights of bridges of one shape: ``{name: (n_models, ...)}`` (per-layer
    weights ``(n_models, n_layers, ...)``, in the bridge's own ``nn.Linear`` layout)."""
    params = [_bridge_params(b) for b in bridges]
    n_layers = bridges[0].cfg.n_layers
    out = {k: torch.stack([p[v].detach() for p in params]) for k, v in _GLOBAL_PARAMS.items()}
    for key, suffix in _LAYER_PARAMS.items():
        out[key] = torch.stack([torch.stack([p[f"layers.{layer}._original_component.{suffix}"]
                                             .detach() for layer in range(n_layers)])
                                for p in params])
    return {k: v.clone() for k, v in out.items()}


@torch.no_grad()
def to_bridge(stacked: dict[str, torch.Tensor], index: int, bridge: TransformerBridge
              ) -> TransformerBridge:
    """Copy model ``index`` of ``stacked`` into ``bridge`` (same shape) and return it."""
    params = _bridge_params(bridge)
    for key, name in _GLOBAL_PARAMS.items():
        params[name].copy_(stacked[key][index])
    for key, suffix in _LAYER_PARAMS.items():
        for layer in range(bridge.cfg.n_layers):
            params[f"layers.{layer}._original_component.{suffix}"].copy_(stacked[key][index, layer])
    return bridge


def _ln(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm with per-model ``w``, ``b`` of shape ``(models, d_model)``."""
    x = x - x.mean(-1, keepdim=True)
    x = x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    shape = (w.shape[0],) + (1,) * (x.dim() - 2) + (w.shape[-1],)
    return x * w.view(shape) + b.view(shape)


class StackedTransformer(torch.nn.Module):
    """``n_models`` transformers of one :class:`SIITArch`, trained and run together.

    Args:
        arch: the shape.
        weights: stacked weights from :func:`from_bridges`.
    """

    def __init__(self, arch: SIITArch, weights: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.arch = arch
        self.w = torch.nn.ParameterDict({k: torch.nn.Parameter(v.clone())
                                         for k, v in weights.items()})
        self.n_models = int(weights["embed"].shape[0])
        self.n_components = arch.n_layers * (arch.n_heads + 1)

    def forward(self, tokens: torch.Tensor, patch: dict[str, torch.Tensor] | None = None,
                mask: torch.Tensor | None = None, *, keep: bool = False
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run every model on its own rows, replacing chosen component outputs.

        A head is replaced through its ``z`` (the attention-weighted values, before the output
        matrix), an MLP through its output: the same replacement as patching
        ``blocks.{l}.attn.hook_z`` or ``blocks.{l}.hook_mlp_out`` on a bridge.

        Args:
            tokens: ``(n_models, batch, pos)``.
            patch: the activations to put in (``keep=True`` output of a run on source inputs):
                ``z`` ``(n_models, n_layers, batch, pos, n_heads, d_head)`` and ``mlp``
                ``(n_models, n_layers, batch, pos, d_model)``.
            mask: ``(n_models, n_components, batch)``, 1 where a row's component is replaced
                by ``patch``, 0 where it is computed (component order: :func:`component_names`).
            keep: return the activations (for use as a later run's ``patch``) and ``scale``,
                ``(n_models, batch, pos, 1)``, what the final LayerNorm divides by.

        Returns:
            ``logits`` ``(n_models, batch, pos, d_vocab)`` and the activations (empty unless
            ``keep``).
        """
        a, w = self.arch, self.w
        m, batch, pos = tokens.shape
        if m != self.n_models or pos > a.n_ctx:
            raise ShapeError(f"tokens must be (n_models={self.n_models}, batch, pos <= "
                             f"{a.n_ctx}), got {tuple(tokens.shape)}")
        if (patch is None) != (mask is None):
            raise ConfigError("patch and mask go together")
        if mask is not None and mask.shape != (m, self.n_components, batch):
            raise ShapeError(f"mask must be {(m, self.n_components, batch)}, got "
                             f"{tuple(mask.shape)}")
        models = torch.arange(m, device=tokens.device)[:, None, None]
        x = w["embed"][models, tokens] + w["pos"][:, None, :pos]
        future = torch.full((pos, pos), -1e9, device=tokens.device).triu(1)
        blocked = future < 0
        zs, mlps = [], []
        for layer in range(a.n_layers):
            base = layer * (a.n_heads + 1)
            h = _ln(x, w["ln1_w"][:, layer], w["ln1_b"][:, layer])

            qkv_w = torch.stack([w[f"{c}_w"][:, layer] for c in "qkv"], 1)  # m 3 (h e) d
            qkv_b = torch.stack([w[f"{c}_b"][:, layer] for c in "qkv"], 1)  # m 3 (h e)
            qkv = torch.einsum("mbpd,mked->mbkpe", h, qkv_w) + qkv_b[:, None, :, None]
            qkv = qkv.view(m, batch, 3, pos, a.n_heads, a.d_head).transpose(3, 4)
            q, k, v = qkv.unbind(2)  # m b h p e
            scores = q @ k.transpose(-1, -2) / math.sqrt(a.d_head)
            # softmax written out: on CPU torch's softmax over a short last axis was 2x slower,
            # and exp of very negative numbers 25x slower than of small ones. Hence the floor:
            # e^-30 is below float32's resolution next to the largest allowed term (1). Future
            # keys, which may score higher than the allowed maximum, are set to the floor
            # before exp (a clamp from above would also zero the gradient of the maximum)
            top = (scores + future).amax(-1, keepdim=True).detach()
            pattern = (scores - top).masked_fill(blocked, -30.0).clamp(min=-30).exp()
            pattern = pattern / pattern.sum(-1, keepdim=True)
            z = (pattern @ v).transpose(2, 3)  # m b q h e
            if keep:
                zs.append(z)
            if mask is not None:
                head_mask = mask[:, base:base + a.n_heads].transpose(1, 2)  # m b h
                z = z + head_mask[:, :, None, :, None] * (patch["z"][:, layer] - z)
            o_w = w["o_w"][:, layer].view(m, a.d_model, a.n_heads, a.d_head)
            x = x + torch.einsum("mbqhe,mdhe->mbqd", z, o_w) + w["o_b"][:, layer, None, None]
            h = _ln(x, w["ln2_w"][:, layer], w["ln2_b"][:, layer])
            hidden = F.gelu(torch.einsum("mbpd,med->mbpe", h, w["in_w"][:, layer])
                            + w["in_b"][:, layer, None, None])
            mlp = torch.einsum("mbpe,mde->mbpd", hidden, w["out_w"][:, layer]) \
                + w["out_b"][:, layer, None, None]
            if keep:
                mlps.append(mlp)
            if mask is not None:
                mlp = mlp + mask[:, base + a.n_heads, :, None, None] * (patch["mlp"][:, layer] - mlp)
            x = x + mlp
        acts = {}
        if keep:
            centred = x - x.mean(-1, keepdim=True)
            acts = {"z": torch.stack(zs, 1), "mlp": torch.stack(mlps, 1),
                    "scale": (centred.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt()}
        x = _ln(x, w["lnf_w"], w["lnf_b"])
        logits = torch.einsum("mbpd,mvd->mbpv", x, w["unembed"])
        return logits, acts
