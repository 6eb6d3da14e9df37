"""High-level causal models: the algorithm a benchmark transformer is trained to implement.

A :class:`CausalModel` is a small directed acyclic graph of named variables computed from the
input tokens. Each node is a function of the tokens and of its parents' values; the last node
is the output (a token id per row). An *interchange intervention* runs the model on a base
input with one node's value taken from a source input and recomputes everything downstream:
that counterfactual output is what strict interchange-intervention training (SIIT; Geiger et
al., 2022; Gupta et al., 2024) teaches the low-level component aligned with that node to
produce.

Values are tensors with a leading ``batch`` dimension. The graph's edges (including the input,
named ``embed``, and the output, named ``logits``) are what the benchmark's ground-truth
circuit is built from, once each node is aligned with a transformer component.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mechinterp.errors import ConfigError

__all__ = ["CausalNode", "CausalModel"]

NodeFn = Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class CausalNode:
    """One variable of a high-level model.

    Attributes:
        name: the node's name (e.g. ``previous_token``).
        parents: nodes it reads; ``embed`` means the input tokens.
        fn: ``(tokens (batch, pos), parent values) -> value (batch, ...)``.
        description: one line for tables and pages.
    """

    name: str
    parents: tuple[str, ...]
    fn: NodeFn
    description: str = ""


class CausalModel:
    """A DAG of :class:`CausalNode` in topological order; the last node is the output.

    Raises:
        ConfigError: a node reads a parent that is not defined before it, or names repeat.
    """

    def __init__(self, nodes: list[CausalNode]) -> None:
        seen = {"embed"}
        for node in nodes:
            if node.name in seen:
                raise ConfigError(f"causal node {node.name!r} is defined twice")
            missing = [p for p in node.parents if p not in seen]
            if missing:
                raise ConfigError(f"causal node {node.name!r} reads {missing} before they are "
                                  "defined (list nodes in topological order)")
            seen.add(node.name)
        if not nodes:
            raise ConfigError("a causal model needs at least one node")
        self.nodes = {n.name: n for n in nodes}
        self.output = nodes[-1].name

    @property
    def node_names(self) -> list[str]:
        """Every node, in topological order."""
        return list(self.nodes)

    @property
    def edges(self) -> list[tuple[str, str]]:
        """``(parent, child)`` pairs, with ``embed`` for the input and ``(output, "logits")``."""
        out = [(p, n.name) for n in self.nodes.values() for p in n.parents]
        return out + [(self.output, "logits")]

    def run(self, tokens: torch.Tensor, patch: dict[str, torch.Tensor] | None = None
            ) -> dict[str, torch.Tensor]:
        """Every node's value on ``tokens`` (``(batch, pos)``), with the values in ``patch``
        forced (an interchange intervention when they come from another input)."""
        patch = patch or {}
        unknown = sorted(set(patch) - set(self.nodes))
        if unknown:
            raise ConfigError(f"cannot patch unknown causal nodes {unknown}; nodes: "
                              f"{self.node_names}")
        values: dict[str, torch.Tensor] = {}
        for name, node in self.nodes.items():
            values[name] = patch[name] if name in patch else node.fn(tokens, values)
        return values

    def label(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(batch,)`` the output token of each row."""
        return self.run(tokens)[self.output]

    def interchange(self, base: torch.Tensor, source: torch.Tensor, node: str | list[str]
                    ) -> torch.Tensor:
        """``(batch,)`` the output on ``base`` with ``node``'s value (or several nodes') taken
        from ``source``, row by row."""
        names = [node] if isinstance(node, str) else list(node)
        source_values = self.run(source)
        return self.run(base, {n: source_values[n] for n in names})[self.output]

    def interchange_rows(self, base: torch.Tensor, source: torch.Tensor,
                         node_of_row: list[str | None]) -> torch.Tensor:
        """``(batch,)`` outputs when row ``i`` interchanges ``node_of_row[i]`` (``None``: no
        intervention, the base output)."""
        if len(node_of_row) != base.shape[0]:
            raise ConfigError(f"node_of_row has {len(node_of_row)} entries for "
                              f"{base.shape[0]} rows")
        out = self.label(base).clone()
        for name in self.nodes:
            rows = torch.tensor([n == name for n in node_of_row], device=base.device)
            if rows.any():
                out[rows] = self.interchange(base[rows], source[rows], name)
        return out
