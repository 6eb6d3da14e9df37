"""Three benchmark tasks, each with its high-level causal model and its prompt distributions.

* ``siit-induction``: ``<bos> a1 .. a6 q1 .. q5`` (eight letters) where the queries are
  distinct tokens of ``a1..a5``; at each query the answer is the token that followed it. Nodes:
  ``previous_token`` (at every position, the token before it) then ``induction`` (at each
  query, the token whose previous token is the query), after Olsson et al. (2022).
* ``siit-ioi``: ``<bos> N1 and N2 _ _ S _ _ <end>`` where the middle slot repeats one of the
  two names (S) and the others are fillers (a fixed template, like Wang et al.'s); the answer is the other name (IO). Nodes:
  ``duplicate`` (the repeated name), ``s_inhibition`` (that name, carried to the end) and
  ``name_mover`` (the first-clause name that is not inhibited), after Wang et al. (2023).
* ``siit-histogram``: ``<bos>`` and nine tokens over ``x``, ``y`` and fillers; at every
  position the answer is ``x`` if ``x`` has occurred at least as often as ``y`` so far, else
  ``y``: two bins of a histogram and a comparison, in the spirit of Tracr's compiled programs
  (Lindner et al., 2023), with an answer at every position as Tracr's have. Nodes: ``count_x``,
  ``count_y`` (attention) and ``compare`` (an MLP). Discovery reads the last position.

Every task has three input distributions: :meth:`SIITTask.sample` (the base inputs),
:meth:`SIITTask.paired_source` (a source for each base under which every interchange has a
defined answer, used for interchange training and for checking it) and
:meth:`SIITTask.corrupt` (one changed fact per row, so the answer changes; the clean/corrupted
pairs the discovery methods are given).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mechinterp.errors import ConfigError
from mechinterp.siit.causal import CausalModel, CausalNode
from mechinterp.toyworld.tasks import PromptSet
from mechinterp.toyworld.vocab import WordTokenizer

__all__ = ["SIITTask", "SIIT_TASKS", "get_siit_task", "siit_tokenizer", "NodeSpec", "IGNORE",
           "readout"]

IGNORE = -100
"""Label of a position with no answer (ignored by the losses and the accuracies)."""


def readout(labels: torch.Tensor) -> torch.Tensor:
    """``(batch,)`` the answer at the last position (``labels`` may be per position)."""
    return labels[:, -1] if labels.dim() == 2 else labels

LETTERS = tuple("abcdefghijklmnop")
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
FILLERS = ("went", "to", "the", "shop", "gave", "drinks")
HIST_FILLERS = ("c1", "c2", "c3", "c4", "c5", "c6")
WORDS = ("<end>", "and", *LETTERS, *NAMES, *FILLERS, *HIST_FILLERS, "x", "y")


def siit_tokenizer() -> WordTokenizer:
    """The one vocabulary every SIIT task uses (``<bos>`` is id 0)."""
    return WordTokenizer(WORDS)


_TOK = siit_tokenizer()


def _ids(words) -> torch.Tensor:
    return _TOK.ids(words)


BOS, END, AND = _TOK.bos_id, _TOK.index["<end>"], _TOK.index["and"]
X, Y = _TOK.index["x"], _TOK.index["y"]


def _rows(n: int, k: int, pool: int, g: torch.Generator) -> torch.Tensor:
    """``(n, k)`` distinct indices into a pool of ``pool`` items, one draw per row."""
    return torch.rand(n, pool, generator=g).argsort(-1)[:, :k]


@dataclass(frozen=True)
class NodeSpec:
    """Where a high-level node may sit: ``kind`` is ``head`` or ``mlp``."""

    name: str
    kind: str


@dataclass(frozen=True)
class SIITTask:
    """A benchmark task: causal model, node kinds and the three input distributions.

    Attributes:
        name: registry name.
        description: one line for listings.
        model: the high-level causal model.
        node_specs: the kind of component each causal node is aligned with.
        n_ctx: prompt length.
        sample: ``(n, generator) -> tokens (n, n_ctx)``.
        paired_source: ``(base tokens, generator) -> source tokens``.
        corrupt: ``(clean tokens, generator) -> corrupted tokens`` (the answer changes).
        positions: named positions shared by every prompt.
    """

    name: str
    description: str
    model: CausalModel
    node_specs: tuple[NodeSpec, ...]
    n_ctx: int
    sample: Callable[[int, torch.Generator], torch.Tensor]
    paired_source: Callable[[torch.Tensor, torch.Generator], torch.Tensor]
    corrupt: Callable[[torch.Tensor, torch.Generator], torch.Tensor]
    positions: dict[str, int]

    def prompts(self, n: int = 64, *, seed: int = 0) -> PromptSet:
        """``n`` clean/corrupted pairs whose answers differ, reproducible from ``seed``.

        ``answer`` is the clean output of the causal model, ``wrong`` the corrupted one.
        """
        if n < 1:
            raise ConfigError(f"number of prompts must be at least 1, got {n}")
        g = torch.Generator().manual_seed(seed)
        clean, corrupted = [], []
        while sum(len(c) for c in clean) < n:
            c = self.sample(2 * n, g)
            d = self.corrupt(c, g)
            differ = readout(self.model.label(c)) != readout(self.model.label(d))
            clean.append(c[differ])
            corrupted.append(d[differ])
        clean_t, corr_t = torch.cat(clean)[:n], torch.cat(corrupted)[:n]
        return PromptSet(self.name, clean_t, corr_t, readout(self.model.label(clean_t)),
                         readout(self.model.label(corr_t)), dict(self.positions))


# --- induction ------------------------------------------------------------------------------

SEGMENT, QUERIES = 6, 5
INDUCTION_LETTERS = LETTERS[:8]


def _queries(seg: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """``(n, QUERIES)`` distinct tokens of each segment, its last excepted."""
    n = seg.shape[0]
    return seg.gather(1, _rows(n, QUERIES, SEGMENT - 1, g))


def _induction_sample(n: int, g: torch.Generator) -> torch.Tensor:
    seg = _ids(INDUCTION_LETTERS)[_rows(n, SEGMENT, len(INDUCTION_LETTERS), g)]
    return torch.cat([torch.full((n, 1), BOS), seg, _queries(seg, g)], 1)


def _induction_source(base: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The same segment tokens in a new order (so every base query occurs once in it), with
    queries of its own."""
    n = base.shape[0]
    seg = base[:, 1:1 + SEGMENT].gather(1, _rows(n, SEGMENT, SEGMENT, g))
    return torch.cat([base[:, :1], seg, _queries(seg, g)], 1)


def _induction_corrupt(clean: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Swap the last query's earlier occurrence with another segment token (the last
    excepted): what follows it changes, the set of tokens does not."""
    n = clean.shape[0]
    out = clean.clone()
    where = (clean[:, 1:SEGMENT] == clean[:, -1:]).float().argmax(1) + 1
    other = (where - 1 + torch.randint(1, SEGMENT - 1, (n,), generator=g)) % (SEGMENT - 1) + 1
    rows = torch.arange(n)
    out[rows, where], out[rows, other] = clean[rows, other], clean[rows, where]
    out[:, 1 + SEGMENT:] = clean[:, 1 + SEGMENT:]
    return out


def _previous_token(tokens, values):
    return torch.cat([torch.full_like(tokens[:, :1], -1), tokens[:, :-1]], 1)


def _induction(tokens, values):
    """At each query position, the token at the segment position whose previous token is the
    query (keys are positions 2-9, whose previous tokens are the segment's eight)."""
    keys = values["previous_token"][:, 2:2 + SEGMENT]  # b k
    queries = tokens[:, 1 + SEGMENT:]  # b q
    match = keys[:, None, :] == queries[:, :, None]  # b q k
    if not bool(match.any(-1).all()):
        raise ConfigError("an induction interchange has no position whose previous token is "
                          "the query (sources must be paired_source draws)")
    j = match.float().argmax(-1) + 2
    out = torch.full_like(tokens, IGNORE)
    out[:, 1 + SEGMENT:] = tokens.gather(1, j)
    return out


INDUCTION = SIITTask(
    "siit-induction", "at each query, the token that followed it earlier (SIIT-trained)",
    CausalModel([
        CausalNode("previous_token", ("embed",), _previous_token,
                   "at every position, the token before it"),
        CausalNode("induction", ("embed", "previous_token"), _induction,
                   "at each query, the token whose previous token is the query"),
    ]),
    (NodeSpec("previous_token", "head"), NodeSpec("induction", "head")),
    1 + SEGMENT + QUERIES, _induction_sample, _induction_source, _induction_corrupt,
    {"query": SEGMENT + QUERIES, "end": SEGMENT + QUERIES})


# --- indirect object identification ---------------------------------------------------------

SLOTS, S2_SLOT = 5, 2


def _ioi_from(pair: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Prompts from ``(n, 2)`` name ids: a random order, a random repeated name, random
    fillers."""
    n = pair.shape[0]
    rows = torch.arange(n)
    swap = torch.rand(n, generator=g) < 0.5
    first = torch.where(swap[:, None], pair.flip(1), pair)
    s = pair[rows, torch.randint(2, (n,), generator=g)]
    slots = _ids(FILLERS)[torch.randint(len(FILLERS), (n, SLOTS), generator=g)]
    slots[:, S2_SLOT] = s
    return torch.cat([torch.full((n, 1), BOS), first[:, :1], torch.full((n, 1), AND),
                      first[:, 1:], slots, torch.full((n, 1), END)], 1)


def _ioi_sample(n: int, g: torch.Generator) -> torch.Tensor:
    return _ioi_from(_ids(NAMES)[_rows(n, 2, len(NAMES), g)], g)


def _ioi_source(base: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The same two names, everything else drawn afresh."""
    return _ioi_from(base[:, [1, 3]], g)


def _ioi_corrupt(clean: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The repeated name becomes the other name: the indirect object flips."""
    out = clean.clone()
    body = out[:, 4:4 + SLOTS]
    n1, n2 = clean[:, 1:2], clean[:, 3:4]
    is_name = (body == n1) | (body == n2)
    other = torch.where(body == n1, n2.expand_as(body), n1.expand_as(body))
    out[:, 4:4 + SLOTS] = torch.where(is_name, other, body)
    return out


def _duplicate(tokens, values):
    body = tokens[:, 4:4 + SLOTS]
    n1, n2 = tokens[:, 1:2], tokens[:, 3:4]
    hit = (body == n1) | (body == n2)
    return body[torch.arange(tokens.shape[0]), hit.float().argmax(1)]


def _s_inhibition(tokens, values):
    return values["duplicate"]


def _name_mover(tokens, values):
    n1, n2 = tokens[:, 1], tokens[:, 3]
    return torch.where(values["s_inhibition"] == n1, n2, n1)


IOI = SIITTask(
    "siit-ioi", "name the indirect object: the first-clause name not repeated (SIIT-trained)",
    CausalModel([
        CausalNode("duplicate", ("embed",), _duplicate, "the name that occurs twice"),
        CausalNode("s_inhibition", ("duplicate",), _s_inhibition,
                   "the repeated name, carried to the end"),
        CausalNode("name_mover", ("embed", "s_inhibition"), _name_mover,
                   "the first-clause name that is not inhibited"),
    ]),
    (NodeSpec("duplicate", "head"), NodeSpec("s_inhibition", "head"),
     NodeSpec("name_mover", "head")),
    5 + SLOTS, _ioi_sample, _ioi_source, _ioi_corrupt,
    {"name1": 1, "name2": 3, "s2": 4 + S2_SLOT, "end": 4 + SLOTS})


# --- two-bin histogram ----------------------------------------------------------------------

BODY, MAX_COUNT = 9, 4


def _hist_sample(n: int, g: torch.Generator) -> torch.Tensor:
    cx = torch.randint(MAX_COUNT + 1, (n,), generator=g)
    cy = torch.randint(MAX_COUNT + 1, (n,), generator=g)
    fill = _ids(HIST_FILLERS)[torch.randint(len(HIST_FILLERS), (n, BODY), generator=g)]
    pos = torch.arange(BODY)
    body = torch.where(pos < cx[:, None], X, torch.where(pos < (cx + cy)[:, None], Y, fill))
    body = body.gather(1, _rows(n, BODY, BODY, g))
    return torch.cat([torch.full((n, 1), BOS), body], 1)


def _hist_source(base: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return _hist_sample(base.shape[0], g)


def _hist_corrupt(clean: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """``x`` and ``y`` trade places: the counts swap, so the answer flips unless they tie."""
    return torch.where(clean == X, Y, torch.where(clean == Y, X, clean))


def _count_x(tokens, values):
    return (tokens == X).cumsum(1)


def _count_y(tokens, values):
    return (tokens == Y).cumsum(1)


def _compare(tokens, values):
    out = torch.where(values["count_x"] >= values["count_y"], X, Y)
    out[:, 0] = IGNORE  # nothing counted yet at <bos>
    return out


HISTOGRAM = SIITTask(
    "siit-histogram", "so far, is x at least as frequent as y? two histogram bins and a "
    "comparison at every position (SIIT-trained)",
    CausalModel([
        CausalNode("count_x", ("embed",), _count_x, "how often x has occurred so far"),
        CausalNode("count_y", ("embed",), _count_y, "how often y has occurred so far"),
        CausalNode("compare", ("count_x", "count_y"), _compare,
                   "x if count_x >= count_y, else y"),
    ]),
    (NodeSpec("count_x", "head"), NodeSpec("count_y", "head"), NodeSpec("compare", "mlp")),
    BODY + 1, _hist_sample, _hist_source, _hist_corrupt, {"end": BODY})


SIIT_TASKS: dict[str, SIITTask] = {t.name: t for t in (INDUCTION, IOI, HISTOGRAM)}


def get_siit_task(name: str) -> SIITTask:
    """A SIIT task by name.

    Raises:
        ConfigError: unknown name (the message lists the tasks).
    """
    if name not in SIIT_TASKS:
        raise ConfigError(f"unknown SIIT task {name!r}; tasks: {sorted(SIIT_TASKS)}")
    return SIIT_TASKS[name]
