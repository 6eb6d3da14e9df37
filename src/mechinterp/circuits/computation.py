"""A transformer's forward pass written as a graph of components, so single edges can be cut.

In a residual network every component reads the sum of what earlier components wrote. Written
that way, a component's input can be rebuilt edge by edge: each edge ``writer -> reader``
carries either the writer's output from the current run or its output from a corrupted run.
That is what edge attribution patching (Syed et al., 2023) differentiates and what ACDC
(Conmy et al., 2023) prunes.

Writers are the embeddings (token plus position), every attention head and every MLP.
Readers are every head's query, key and value inputs (each through its own copy of the
layer norm), every MLP's input, and the logits. The graph is built from a
``TransformerBridge``'s weights (``W_Q``, ``W_O``, ``W_in``, ...), and with every edge kept it
reproduces the bridge's logits (tested). Only standard GPT-2-style blocks are supported:
LayerNorm, learned positions, dense MLPs or none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mechinterp.errors import ConfigError, ShapeError

__all__ = ["ComputationGraph", "Edge"]

_ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


@dataclass(frozen=True)
class Edge:
    """One edge of the graph: ``writer`` writes into ``reader``'s input."""

    writer: str
    reader: str

    @property
    def name(self) -> str:
        """``writer -> reader``."""
        return f"{self.writer} -> {self.reader}"


def _ln(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    x = x - x.mean(-1, keepdim=True)
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * weight + bias


class ComputationGraph:
    """The components and edges of a ``TransformerBridge`` and an edge-wise forward pass.

    Args:
        model: a ``TransformerBridge`` (e.g. a toy-world model, or gpt2 loaded through
            ``boot_transformers``).

    Attributes:
        writers: ``embed``, ``L{l}.H{h}``, ``L{l}.mlp`` in computation order.
        readers: ``L{l}.H{h}.q|k|v``, ``L{l}.mlp``, ``logits`` in computation order.
        edges: every (writer, reader) pair where the writer comes first.
        edge_writers, edge_readers: ``(n_edges,)`` writer and reader positions of each edge.
    """

    def __init__(self, model) -> None:
        cfg = model.cfg
        if getattr(cfg, "normalization_type", "LN") not in ("LN", None):
            raise ConfigError(f"ComputationGraph supports LayerNorm models, got "
                              f"{cfg.normalization_type!r}")
        act = getattr(cfg, "act_fn", "gelu") or "gelu"
        if act not in _ACTIVATIONS:
            raise ConfigError(f"unsupported MLP activation {act!r}; supported: {sorted(_ACTIVATIONS)}")
        self.model = model
        self.n_layers, self.n_heads = cfg.n_layers, cfg.n_heads
        self.attn_only = bool(getattr(cfg, "attn_only", False))
        self.eps = cfg.eps
        self.act = _ACTIVATIONS[act]
        self.scale = 1 / math.sqrt(cfg.d_head)
        self.params = self._read_weights(model)
        self.writers, self.readers = self._nodes()
        self._writer_index = {w: i for i, w in enumerate(self.writers)}
        self._reader_index = {r: i for i, r in enumerate(self.readers)}
        self.edges = [Edge(w, r) for r in self.readers for w in self.writers
                      if self._order(w) < self._order(r)]
        self._edge_index = {(e.writer, e.reader): i for i, e in enumerate(self.edges)}
        self.edge_writers = torch.tensor([self._writer_index[e.writer] for e in self.edges])
        self.edge_readers = torch.tensor([self._reader_index[e.reader] for e in self.edges])
        self.allowed = torch.zeros(len(self.writers), len(self.readers)).index_put(
            (self.edge_writers, self.edge_readers), torch.ones(len(self.edges)))

    # -- structure ---------------------------------------------------------------------------
    def _nodes(self) -> tuple[list[str], list[str]]:
        writers, readers = ["embed"], []
        for layer in range(self.n_layers):
            heads = [f"L{layer}.H{h}" for h in range(self.n_heads)]
            writers += heads
            readers += [f"{h}.{c}" for h in heads for c in "qkv"]
            if not self.attn_only:
                writers.append(f"L{layer}.mlp")
                readers.append(f"L{layer}.mlp")
        readers.append("logits")
        return writers, readers

    def _order(self, node: str) -> int:
        if node == "embed":
            return -1
        if node == "logits":
            return 2 * self.n_layers
        layer = int(node.split(".")[0][1:])
        return 2 * layer + (1 if node.split(".")[1] == "mlp" else 0)

    @staticmethod
    def node_of(reader: str) -> str:
        """The component a reader belongs to (``L1.H2.k`` -> ``L1.H2``)."""
        return reader.rsplit(".", 1)[0] if reader.endswith((".q", ".k", ".v")) else reader

    def edge_index(self, writer: str, reader: str) -> int:
        """Position of an edge in :attr:`edges`.

        Raises:
            ConfigError: no such edge (the message says which nodes exist).
        """
        try:
            return self._edge_index[(writer, reader)]
        except KeyError:
            raise ConfigError(f"no edge {writer} -> {reader}; writers: {self.writers}, "
                              f"readers: {self.readers}") from None

    def full_mask(self) -> torch.Tensor:
        """``(n_edges,)`` ones: every edge carries the current run."""
        return torch.ones(len(self.edges))

    def _mask_matrix(self, mask: torch.Tensor) -> torch.Tensor:
        if mask.shape != (len(self.edges),):
            raise ShapeError(f"edge mask must have shape ({len(self.edges)},), got "
                             f"{tuple(mask.shape)}")
        matrix = torch.zeros(len(self.writers), len(self.readers), dtype=mask.dtype,
                             device=mask.device)
        return matrix.index_put((self.edge_writers.to(mask.device),
                                 self.edge_readers.to(mask.device)), mask)

    @staticmethod
    def _read_weights(model) -> dict[str, torch.Tensor]:
        def ln(module) -> tuple[torch.Tensor, torch.Tensor]:
            params = dict(module.named_parameters())
            weight = next(v for k, v in params.items() if k.endswith("weight"))
            bias = next(v for k, v in params.items() if k.endswith("bias"))
            return weight.detach(), bias.detach()

        p = {name: getattr(model, name).detach() for name in
             ["W_E", "W_pos", "W_Q", "b_Q", "W_K", "b_K", "W_V", "b_V", "W_O", "b_O", "W_U",
              "b_U"]}
        if not getattr(model.cfg, "attn_only", False):
            p |= {name: getattr(model, name).detach() for name in ["W_in", "b_in", "W_out",
                                                                    "b_out"]}
        p["ln1"] = [ln(block.ln1) for block in model.blocks]
        if not getattr(model.cfg, "attn_only", False):
            p["ln2"] = [ln(block.ln2) for block in model.blocks]
        p["ln_final"] = ln(model.ln_final)
        return p

    # -- forward -----------------------------------------------------------------------------
    def writers_before(self, layer: int) -> int:
        """How many writers come before layer ``layer``'s heads (``embed`` and every
        component of the earlier layers)."""
        return 1 + layer * (self.n_heads + (0 if self.attn_only else 1))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None,
                corrupted: torch.Tensor | None = None, *, keep_inputs: bool = False,
                start_layer: int = 0, prefix: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Run the model edge by edge.

        Args:
            tokens: ``(batch, pos)`` token ids.
            mask: ``(n_edges,)`` weights in [0, 1]: 1 carries the writer's output from this run,
                0 its output in ``corrupted`` (default: every edge 1). A ``(n_variants,
                n_edges)`` mask runs that many variants of the circuit in one pass, stacked
                along the batch: the logits and outputs then hold ``n_variants * batch``
                rows, variant by variant.
            corrupted: ``(n_writers, batch, pos, d_model)`` writer outputs from a corrupted
                run (the ``outputs`` of an earlier call); needed when any mask entry is below 1.
            keep_inputs: keep the readers' input tensors (with ``retain_grad``) in the
                returned dict, for gradients with respect to them.
            start_layer, prefix: resume at layer ``start_layer`` from the outputs
                ``(writers_before(start_layer), batch, pos, d_model)`` of the writers before
                it (from an earlier run whose edges into those writers' readers were the
                same as ``mask``'s); every variant starts from the same prefix.

        Returns:
            ``logits`` ``(batch, pos, d_vocab)``, ``outputs`` ``(n_writers, batch, pos,
            d_model)`` and the readers' inputs (empty unless ``keep_inputs``).
        """
        p = self.params
        batch, pos = tokens.shape
        if pos > p["W_pos"].shape[0]:
            raise ShapeError(f"prompts have {pos} positions; the model's context is "
                             f"{p['W_pos'].shape[0]}")
        if mask is not None and mask.dim() == 2:
            variants = mask.shape[0]
            weights = torch.stack([self._mask_matrix(m) for m in mask.to(p["W_E"].device)])
        else:
            variants = 1
            weights = (self.allowed.to(p["W_E"].device) if mask is None else
                       self._mask_matrix(mask.to(p["W_E"].device)))[None]
        if corrupted is None and mask is not None and bool((mask < 1).any()):
            raise ConfigError("a mask that cuts edges needs the corrupted run's outputs")
        if prefix is None:
            if start_layer != 0:
                raise ConfigError("resuming at a later layer needs the prefix of outputs")
            prefix = (p["W_E"][tokens] + p["W_pos"][:pos])[None]
        elif prefix.shape[0] != self.writers_before(start_layer):
            raise ShapeError(f"a prefix for layer {start_layer} holds "
                             f"{self.writers_before(start_layer)} writers, got {prefix.shape[0]}")
        if variants > 1:
            prefix = prefix.repeat(1, variants, 1, 1)
            batch = variants * batch
        if keep_inputs:  # the weights are detached: let gradients start at the embeddings
            prefix.requires_grad_(True)
        outputs: list[torch.Tensor] = list(prefix.unbind(0))
        inputs: dict[str, torch.Tensor] = {}

        def gather(reader_ids: list[int]) -> torch.Tensor:
            """Inputs ``(len(reader_ids), batch, pos, d_model)`` of some readers."""
            n = len(outputs)
            current = torch.stack(outputs)
            w = weights[:, :n, reader_ids]
            if variants == 1:
                x = torch.einsum("wbpd,wr->rbpd", current, w[0])
                if corrupted is not None:
                    x = x + torch.einsum("wbpd,wr->rbpd", corrupted[:n],
                                         self.allowed[:n, reader_ids].to(w) - w[0])
                return x
            current = current.view(n, variants, -1, *current.shape[2:])
            x = torch.einsum("wvbpd,vwr->rvbpd", current, w)
            if corrupted is not None:
                x = x + torch.einsum("wbpd,vwr->rvbpd", corrupted[:n],
                                     self.allowed[:n, reader_ids].to(w) - w)
            return x.flatten(1, 2)

        for layer in range(start_layer, self.n_layers):
            ids = [self._reader_index[f"L{layer}.H{h}.{c}"] for h in range(self.n_heads)
                   for c in "qkv"]
            x = gather(ids).view(self.n_heads, 3, batch, pos, -1)
            if keep_inputs:
                x.retain_grad()
                inputs[f"L{layer}.heads"] = x
            outputs.extend(self.heads(layer, x).unbind(0))
            if not self.attn_only:
                x = gather([self._reader_index[f"L{layer}.mlp"]])[0]
                if keep_inputs:
                    x.retain_grad()
                    inputs[f"L{layer}.mlp"] = x
                outputs.append(self.mlp(layer, x))
        x = gather([self._reader_index["logits"]])[0]
        if keep_inputs:
            x.retain_grad()
            inputs["logits"] = x
        logits = self.unembed(x)
        return logits, torch.stack(outputs), inputs

    def heads(self, layer: int, x: torch.Tensor, which: torch.Tensor | None = None
              ) -> torch.Tensor:
        """Outputs ``(n, batch, pos, d_model)`` of layer ``layer``'s heads (all, or the
        indices ``which``) from their query, key and value inputs ``(n, 3, batch, pos,
        d_model)``."""
        return self.attend(layer, *(self.project(layer, c, x[:, c], which) for c in range(3)),
                           which)

    def project(self, layer: int, kind: int, x: torch.Tensor,
                which: torch.Tensor | None = None) -> torch.Tensor:
        """Queries (``kind`` 0), keys (1) or values (2) ``(n, batch, pos, d_head)`` of layer
        ``layer``'s heads (all, or the indices ``which``) from that input ``(n, batch, pos,
        d_model)``, through the head's copy of the layer norm."""
        p, pick = self.params, (slice(None) if which is None else which)
        weight, bias = ("W_Q", "W_K", "W_V")[kind], ("b_Q", "b_K", "b_V")[kind]
        w, b = p["ln1"][layer]
        return torch.einsum("hbpd,hde->hbpe", _ln(x, w, b, self.eps), p[weight][layer][pick]) \
            + p[bias][layer][pick][:, None, None]

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               which: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs ``(n, batch, pos, d_model)`` of layer ``layer``'s heads (all, or the
        indices ``which``) from their queries, keys and values; each head adds its share of
        the layer's output bias."""
        pick = slice(None) if which is None else which
        pos = q.shape[-2]
        causal = torch.ones(pos, pos, dtype=torch.bool, device=q.device).tril()
        scores = torch.einsum("hbqe,hbke->hbqk", q, k) * self.scale
        pattern = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        z = torch.einsum("hbqk,hbke->hbqe", pattern, v)
        return torch.einsum("hbqe,hed->hbqd", z, self.params["W_O"][layer][pick]) \
            + self.params["b_O"][layer] / self.n_heads  # the shared bias, split evenly

    def mlp(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """Layer ``layer``'s MLP output from its input ``(batch, pos, d_model)``."""
        p = self.params
        w, b = p["ln2"][layer]
        hidden = self.act(_ln(x, w, b, self.eps) @ p["W_in"][layer] + p["b_in"][layer])
        return hidden @ p["W_out"][layer] + p["b_out"][layer]

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from the logits reader's input ``(..., d_model)``."""
        w, b = self.params["ln_final"]
        return _ln(x, w, b, self.eps) @ self.params["W_U"] + self.params["b_U"]

    def reader_gradients(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(n_readers, batch, pos, d_model)`` gradients of the readers' inputs, in reader
        order, after ``backward`` on a metric of a ``keep_inputs`` forward."""
        grads = []
        for layer in range(self.n_layers):
            g = inputs[f"L{layer}.heads"].grad
            grads.extend(g.reshape(self.n_heads * 3, *g.shape[2:]).unbind(0))
            if not self.attn_only:
                grads.append(inputs[f"L{layer}.mlp"].grad)
        grads.append(inputs["logits"].grad)
        return torch.stack(grads)
