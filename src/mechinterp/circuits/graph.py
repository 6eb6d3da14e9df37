"""One circuit type, :class:`CircuitGraph`, with JSON, Graphviz DOT and networkx export.

A circuit is a set of components (nodes) and the edges between them that carry the behaviour,
each with the score the discovery method gave it. Nodes are named as everywhere in
:mod:`mechinterp.circuits`: ``embed`` (token plus position embeddings), ``L{l}.H{h}``
(attention heads), ``L{l}.mlp`` and ``logits``. An edge goes from a writer to a reader node
and says which input of the reader it feeds: ``q``, ``k`` or ``v`` for a head, ``in`` for an
MLP or the logits.

The JSON form is plain (lists of objects), so a circuit found here can be read by any tool;
:meth:`CircuitGraph.to_dot` gives Graphviz source (``dot -Tsvg circuit.dot``), and
:meth:`CircuitGraph.draw` a matplotlib picture laid out by layer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from mechinterp.checkpoints import atomic_write_text
from mechinterp.errors import ConfigError, DataError

__all__ = ["CircuitGraph", "CircuitEdge", "CircuitNode", "node_layer"]

FORMAT_VERSION = 1
INPUT_COLOURS = {"q": "#1f77b4", "k": "#d62728", "v": "#2ca02c", "in": "#7f7f7f"}


def node_layer(name: str, n_layers: int) -> float:
    """Where a node sits in the computation: ``embed`` -1, ``L{l}.H{h}`` l, ``L{l}.mlp``
    l + 0.5, ``logits`` ``n_layers``.

    Raises:
        ConfigError: a name that is none of these.
    """
    if name == "embed":
        return -1.0
    if name == "logits":
        return float(n_layers)
    parts = name.split(".")
    if len(parts) == 2 and parts[0].startswith("L") and parts[0][1:].isdigit():
        layer = int(parts[0][1:])
        if parts[1] == "mlp":
            return layer + 0.5
        if parts[1].startswith("H") and parts[1][1:].isdigit():
            return float(layer)
    raise ConfigError(f"not a component name: {name!r} (expected embed, L<l>.H<h>, L<l>.mlp "
                      "or logits)")


@dataclass(frozen=True)
class CircuitNode:
    """A component of the circuit and its score (``None`` for ``embed`` and ``logits`` when
    the method does not score them)."""

    name: str
    layer: float
    score: float | None = None


@dataclass(frozen=True)
class CircuitEdge:
    """``writer -> reader`` into the reader's ``input`` (``q``, ``k``, ``v`` or ``in``)."""

    writer: str
    reader: str
    input: str
    score: float | None = None

    @property
    def name(self) -> str:
        """The edge as :class:`~mechinterp.circuits.computation.ComputationGraph` names it."""
        suffix = f".{self.input}" if self.input in ("q", "k", "v") else ""
        return f"{self.writer} -> {self.reader}{suffix}"


@dataclass
class CircuitGraph:
    """A discovered circuit.

    Attributes:
        nodes: the components, in computation order.
        edges: the edges between them.
        n_layers: layers of the model the circuit lives in (for layout).
        meta: what produced it (task, method, model, threshold, metric values, ...).
    """

    nodes: list[CircuitNode]
    edges: list[CircuitEdge]
    n_layers: int
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = {n.name for n in self.nodes}
        for edge in self.edges:
            missing = {edge.writer, edge.reader} - names
            if missing:
                raise ConfigError(f"edge {edge.name} refers to nodes not in the circuit: "
                                  f"{sorted(missing)}")
            if edge.input not in INPUT_COLOURS:
                raise ConfigError(f"edge {edge.name}: input must be one of "
                                  f"{list(INPUT_COLOURS)}, got {edge.input!r}")

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def from_edges(cls, edge_names: list[str], n_layers: int, *,
                   edge_scores: dict[str, float] | None = None,
                   node_scores: dict[str, float] | None = None,
                   meta: dict[str, Any] | None = None) -> CircuitGraph:
        """A circuit from ``ComputationGraph`` edge names such as ``L0.H3 -> L1.H0.k``.

        Its nodes are the edges' end points, ordered by layer.
        """
        edge_scores, node_scores = edge_scores or {}, node_scores or {}
        edges = []
        for name in edge_names:
            writer, _, reader = name.partition(" -> ")
            if not reader:
                raise ConfigError(f"not an edge name: {name!r} (expected 'writer -> reader')")
            node, _, port = reader.rpartition(".")
            if port in ("q", "k", "v"):
                edges.append(CircuitEdge(writer, node, port, edge_scores.get(name)))
            else:
                edges.append(CircuitEdge(writer, reader, "in", edge_scores.get(name)))
        names = {e.writer for e in edges} | {e.reader for e in edges}
        nodes = sorted((CircuitNode(n, node_layer(n, n_layers), node_scores.get(n))
                        for n in names), key=lambda n: (n.layer, n.name))
        return cls(nodes, edges, n_layers, dict(meta or {}))

    # --- views ----------------------------------------------------------------------------

    @property
    def n_nodes(self) -> int:
        """Components in the circuit, ``embed`` and ``logits`` included."""
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        """Edges in the circuit."""
        return len(self.edges)

    def edge_names(self) -> list[str]:
        """The edges as ``ComputationGraph`` names them (for building edge masks)."""
        return [e.name for e in self.edges]

    def edge_mask(self, graph) -> torch.Tensor:
        """A ``ComputationGraph`` edge mask that keeps exactly this circuit's edges."""
        mask = torch.zeros(len(graph.edges))
        for edge in self.edges:
            suffix = f".{edge.input}" if edge.input in ("q", "k", "v") else ""
            mask[graph.edge_index(edge.writer, edge.reader + suffix)] = 1
        return mask

    # --- export ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``{"format", "n_layers", "meta", "nodes": [...], "edges": [...]}``."""
        return {"format": FORMAT_VERSION, "n_layers": self.n_layers, "meta": self.meta,
                "nodes": [asdict(n) for n in self.nodes],
                "edges": [asdict(e) for e in self.edges]}

    def to_json(self, path: str | Path | None = None) -> str:
        """The circuit as JSON text; written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            atomic_write_text(Path(path), text + "\n")
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CircuitGraph:
        """The inverse of :meth:`to_dict`.

        Raises:
            DataError: not a circuit, or a newer format.
        """
        try:
            if data["format"] > FORMAT_VERSION:
                raise DataError(f"circuit format {data['format']} is newer than this version "
                                f"of mechinterp reads ({FORMAT_VERSION}); upgrade mechinterp")
            nodes = [CircuitNode(**n) for n in data["nodes"]]
            edges = [CircuitEdge(**e) for e in data["edges"]]
            return cls(nodes, edges, int(data["n_layers"]), dict(data.get("meta", {})))
        except (KeyError, TypeError) as exc:
            raise DataError(f"not a circuit JSON object (missing or bad field: {exc})") from exc

    @classmethod
    def load(cls, path: str | Path) -> CircuitGraph:
        """Read a circuit written by :meth:`to_json`.

        Raises:
            DataError: no such file, or not a circuit.
        """
        path = Path(path)
        if not path.exists():
            raise DataError(f"no circuit file at {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} is not JSON: {exc}") from exc
        return cls.from_dict(data)

    def to_networkx(self):
        """A ``networkx.DiGraph``: node attributes ``layer`` and ``score``, edge attributes
        ``input`` and ``score``. Two edges between the same pair (say into ``q`` and ``k``)
        become one networkx edge whose ``input`` lists both, e.g. ``"q,k"``, and whose score
        is the larger in magnitude."""
        import networkx as nx

        graph = nx.DiGraph(**{k: v for k, v in self.meta.items()
                              if isinstance(v, (str, int, float, bool))})
        for node in self.nodes:
            graph.add_node(node.name, layer=node.layer, score=node.score)
        for edge in self.edges:
            if graph.has_edge(edge.writer, edge.reader):
                data = graph.edges[edge.writer, edge.reader]
                data["input"] += f",{edge.input}"
                if edge.score is not None and (data["score"] is None
                                               or abs(edge.score) > abs(data["score"])):
                    data["score"] = edge.score
            else:
                graph.add_edge(edge.writer, edge.reader, input=edge.input, score=edge.score)
        return graph

    def to_dot(self, path: str | Path | None = None) -> str:
        """Graphviz source: one rank per layer, edges coloured by the reader input
        (q blue, k red, v green, MLP and logits grey) and labelled with their scores."""
        title = " ".join(str(self.meta[k]) for k in ("task", "method", "model")
                         if k in self.meta)
        lines = ["digraph circuit {", "  rankdir=BT;", f'  label="{title}";',
                 '  node [shape=box, style="rounded,filled", fillcolor="#f5f5f5", '
                 'fontname="Helvetica"];']
        layers: dict[float, list[str]] = {}
        for node in self.nodes:
            layers.setdefault(node.layer, []).append(node.name)
            label = node.name if node.score is None else f"{node.name}\\n{node.score:.2f}"
            lines.append(f'  "{node.name}" [label="{label}"];')
        for members in layers.values():
            lines.append("  { rank=same; " + " ".join(f'"{m}";' for m in members) + " }")
        for edge in self.edges:
            label = edge.input if edge.score is None else f"{edge.input} {edge.score:.2f}"
            lines.append(f'  "{edge.writer}" -> "{edge.reader}" [color="'
                         f'{INPUT_COLOURS[edge.input]}", label="{label}", fontsize=9];')
        lines.append("}")
        text = "\n".join(lines)
        if path is not None:
            atomic_write_text(Path(path), text + "\n")
        return text

    def draw(self, ax=None, *, title: str | None = None):
        """Draw the circuit with matplotlib, layers from bottom (embeddings) to top (logits);
        edge colour is the reader input, edge width the score's magnitude. Returns the
        figure."""
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D

        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 1.1 * (self.n_layers * 2 + 2) + 1))
        else:
            fig = ax.figure
        rows: dict[float, list[str]] = {}
        for node in self.nodes:
            rows.setdefault(node.layer, []).append(node.name)
        pos = {}
        for layer, members in rows.items():
            for i, name in enumerate(members):
                pos[name] = (i - (len(members) - 1) / 2, layer)
        scores = [abs(e.score) for e in self.edges if e.score is not None]
        top = max(scores) if scores else 1.0
        for edge in self.edges:
            (x0, y0), (x1, y1) = pos[edge.writer], pos[edge.reader]
            width = 0.8 + 3.2 * (abs(edge.score) / top if edge.score is not None and top else 0.5)
            ax.annotate("", xy=(x1, y1 - 0.12), xytext=(x0, y0 + 0.12),
                        arrowprops=dict(arrowstyle="-|>", color=INPUT_COLOURS[edge.input],
                                        lw=width, alpha=0.75, shrinkA=4, shrinkB=4,
                                        connectionstyle="arc3,rad=0.08"))
        for name, (x, y) in pos.items():
            ax.text(x, y, name, ha="center", va="center", fontsize=9,
                    bbox=dict(boxstyle="round,pad=0.3", facecolor="#f5f5f5", edgecolor="#444"))
        xs = [p[0] for p in pos.values()] or [0.0]
        ax.set_xlim(min(xs) - 1, max(xs) + 1)
        ax.set_ylim(-1.6, self.n_layers + 0.6)
        ax.set_yticks([-1] + [v for layer in range(self.n_layers) for v in (layer, layer + 0.5)]
                      + [self.n_layers])
        ax.set_yticklabels(["embed"] + [t for layer in range(self.n_layers)
                                        for t in (f"L{layer} attn", f"L{layer} mlp")] + ["logits"])
        ax.set_xticks([])
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
        handles = [Line2D([], [], color=c, lw=2, label=k) for k, c in INPUT_COLOURS.items()]
        ax.legend(handles=handles, title="into", loc="upper left", fontsize=8, frameon=False,
                  bbox_to_anchor=(1.0, 1.0))
        default = " ".join(str(self.meta[k]) for k in ("task", "method") if k in self.meta)
        ax.set_title(title if title is not None else
                     f"{default}: {self.n_nodes} nodes, {self.n_edges} edges".strip(": "))
        fig.tight_layout()
        return fig
