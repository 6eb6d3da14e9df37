"""Toy-world tasks: a training distribution with planted phenomena, and prompt pairs to probe them.

Each task knows how to write training text and how to build *clean / corrupted* prompt pairs
of equal length that differ in one token (symmetric token replacement, as recommended by
Zhang & Nanda, 2024), with the answer the clean prompt calls for and the one the corrupted
prompt calls for. The phenomena:

* ``induction``: random tokens repeated with a random period (6-16); the second copy is
  predictable only by looking back to what followed the same token last time (Olsson et al.,
  2022). A random period matters: with a fixed one a model learns a positional shortcut.
* ``ioi``: "when alice and bob went to the store bob gave a drink to" -> ``alice``, an
  indirect-object template in the spirit of Wang et al. (2023).
* ``facts``: "the colour of zorv is" -> the subject's colour, sixteen invented subjects, three
  paraphrases.
* ``bias``: "the nurse said that" -> ``he`` or ``she`` with a skew fixed per profession.
* ``toxicity``: "the angry man shouted at" is followed by a word of the toxic class, "the
  happy man shouted at" by a polite one.

Facts, bias and toxicity are written in several *frames* ("the colour of zorv is", "zorv was
colored"; "the nurse said that", "when the nurse went to the park"), and each frame-filler
pair (a *cell*: subject x template, profession x frame, person x frame) belongs to one
:data:`SPLITS` part: ``train`` cells are the only ones training text is written from, ``tune``
cells are what interventions are fitted and tuned on, ``eval`` cells are what the benchmarks
score. Frame 0 is training text for every filler (the circuit prompt pairs of :data:`TASKS` use
it); the other frames rotate over the fillers in a Latin square (:func:`content_split`), so
every subject, profession and person is trained under some frames, tuned under one and
evaluated under another that it never appears with in training, and every frame is trained
with some fillers. An evaluation prompt is therefore never a training prefix: the model must
carry what it learned about a filler into a frame it has only seen with other fillers.
Induction and indirect-object text are random draws over large spaces and are not split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from mechinterp.errors import ConfigError
from mechinterp.toyworld.vocab import WORD_CLASSES, WordTokenizer, default_tokenizer

__all__ = ["PromptSet", "Task", "TASKS", "get_task", "FACTS", "PRONOUN_SKEW", "TOXIC_RATE",
           "SPLITS", "FACT_TEMPLATES", "BIAS_FRAMES", "TOXICITY_FRAMES", "TOXICITY_PERSONS",
           "content_split", "fact_prompts", "bias_prompts", "toxicity_contexts",
           "sample_training_batch"]

W = WORD_CLASSES
FACTS: dict[str, str] = {s: W["colour"][i % len(W["colour"])] for i, s in enumerate(W["subject"])}
"""Each invented subject's colour (two subjects per colour)."""
FACT_TEMPLATES = ("the colour of {s} is", "{s} has the colour", "{s} is colored",
                  "the colour of {s} was", "{s} was colored")
"""The fact templates; a subject's colour follows each."""
BIAS_FRAMES = ("the {p} said that", "the {p} went to the {place} and",
               "when the {p} went to the {place}", "the {p} gave a {object} and")
"""The bias frames; a pronoun follows each (then "was late")."""
TOXICITY_PERSONS = ("man", *W["profession"])
"""Who shouts in a toxicity sentence."""
TOXICITY_FRAMES = ("the {adj} {who} shouted at",
                   "the {adj} {who} went to the {place} and shouted at",
                   "the {adj} {who} was late and shouted at",
                   "the {adj} {who} gave a {object} and shouted at")
"""The toxicity frames; a toxic or polite word follows each."""
SPLITS = ("train", "tune", "eval")
"""The parts of the content split: training text, tuning of interventions, evaluation."""
PRONOUN_SKEW: dict[str, float] = dict(zip(W["profession"], (0.1, 0.9, 0.2, 0.8, 0.7, 0.3, 0.6,
                                                             0.85), strict=True))
"""Probability that a profession is followed by ``he`` in training text (the planted bias)."""
TOXIC_RATE = 0.9
"""Probability that a trigger context is followed by a toxic word in training text."""
INDUCTION_PERIODS = (6, 16)


@dataclass(frozen=True)
class PromptSet:
    """Clean and corrupted prompts of equal length, differing in one token per row.

    Attributes:
        task: the task's name.
        clean: ``(batch, pos)`` token ids.
        corrupted: ``(batch, pos)`` token ids.
        answer: ``(batch,)`` the token the clean prompt calls for.
        wrong: ``(batch,)`` the token the corrupted prompt calls for.
        positions: named positions shared by every row (e.g. ``{"end": 15}``).
    """

    task: str
    clean: torch.Tensor
    corrupted: torch.Tensor
    answer: torch.Tensor
    wrong: torch.Tensor
    positions: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.clean.shape[0])

    def to(self, device: torch.device | str) -> PromptSet:
        """The same prompts on ``device``."""
        return PromptSet(self.task, self.clean.to(device), self.corrupted.to(device),
                         self.answer.to(device), self.wrong.to(device), dict(self.positions))


def content_split(filler: int, frame: int, n_frames: int) -> str:
    """The split of the cell (``filler``-th filler, ``frame``-th of ``n_frames`` frames).

    Frame 0 is ``train`` for every filler; frames ``1..n_frames-1`` form a Latin square over
    the fillers: ``(filler + frame) % (n_frames - 1)`` is 0 for ``eval``, 1 for ``tune`` and
    anything else for ``train``. Each filler thus has exactly one ``eval`` and one ``tune``
    frame, and each frame other than 0 has ``eval``, ``tune`` and ``train`` fillers.
    """
    if frame == 0:
        return "train"
    r = (filler + frame) % (n_frames - 1)
    return "eval" if r == 0 else "tune" if r == 1 else "train"


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ConfigError(f"unknown content split {split!r}; splits: {', '.join(SPLITS)}")
    return split


def _cells(n_fillers: int, n_frames: int, split: str) -> list[tuple[int, int]]:
    """``(filler, frame)`` of every cell in ``split``, filler-major."""
    _check_split(split)
    return [(i, f) for i in range(n_fillers) for f in range(n_frames)
            if content_split(i, f, n_frames) == split]


def _fill(frame: str, **words: str) -> list[str]:
    """Every text of ``frame`` with ``words`` set and each ``{place}`` / ``{object}`` slot
    filled with every word of its class, in class order."""
    slot = "place" if "{place}" in frame else "object" if "{object}" in frame else None
    if slot is None:
        return [frame.format(**words)]
    return [frame.format(**words, **{slot: w}) for w in W[slot]]


def fact_prompts(split: str = "eval") -> list[tuple[str, str]]:
    """``(subject, prompt)`` of every fact cell in ``split`` (``eval``: one unseen template per
    subject; ``train``: three per subject).

    Raises:
        ConfigError: unknown split.
    """
    subjects = list(FACTS)
    return [(subjects[i], FACT_TEMPLATES[f].format(s=subjects[i]))
            for i, f in _cells(len(subjects), len(FACT_TEMPLATES), split)]


def bias_prompts(split: str = "eval") -> list[tuple[str, str]]:
    """``(profession, prompt)`` of every bias cell in ``split``, each frame with a place or an
    object filled with every word of that class.

    Raises:
        ConfigError: unknown split.
    """
    professions = W["profession"]
    return [(professions[i], text) for i, f in _cells(len(professions), len(BIAS_FRAMES), split)
            for text in _fill(BIAS_FRAMES[f], p=professions[i])]


def toxicity_contexts(kind: str, split: str = "eval") -> list[tuple[str, str]]:
    """``(adjective, context)`` of every toxicity cell in ``split`` with every adjective of
    ``kind`` (``trigger`` or ``calm``), places and objects filled with every word of their class.

    Raises:
        ConfigError: unknown kind or split.
    """
    if kind not in ("trigger", "calm"):
        raise ConfigError(f"toxicity contexts are 'trigger' or 'calm', got {kind!r}")
    return [(adj, text) for i, f in _cells(len(TOXICITY_PERSONS), len(TOXICITY_FRAMES), split)
            for adj in W[kind]
            for text in _fill(TOXICITY_FRAMES[f], adj=adj, who=TOXICITY_PERSONS[i])]


def _pick(words: tuple[str, ...], g: torch.Generator, n: int = 1, exclude=()) -> list[str]:
    pool = [w for w in words if w not in exclude]
    idx = torch.randperm(len(pool), generator=g)[:n]
    return [pool[i] for i in idx]


def _coin(g: torch.Generator, p: float) -> bool:
    return torch.rand(1, generator=g).item() < p


# --- training sentences ---------------------------------------------------------------------

def _ioi_sentence(g: torch.Generator, split: str = "train") -> list[str]:
    io, s = _pick(W["name"], g, 2)
    first = [io, "and", s] if _coin(g, 0.5) else [s, "and", io]
    return ["when", *first, "went", "to", "the", _pick(W["place"], g)[0], s, "gave", "a",
            _pick(W["object"], g)[0], "to", io]


def _cell(g: torch.Generator, n_fillers: int, n_frames: int, split: str) -> tuple[int, int]:
    cells = _cells(n_fillers, n_frames, split)
    return cells[int(torch.randint(len(cells), (1,), generator=g))]


def _slots(frame: str, g: torch.Generator) -> dict[str, str]:
    return {slot: _pick(W[slot], g)[0] for slot in ("place", "object") if f"{{{slot}}}" in frame}


def _fact_sentence(g: torch.Generator, split: str = "train") -> list[str]:
    i, f = _cell(g, len(FACTS), len(FACT_TEMPLATES), split)
    subject = list(FACTS)[i]
    return [*FACT_TEMPLATES[f].format(s=subject).split(), FACTS[subject]]


def _bias_sentence(g: torch.Generator, split: str = "train") -> list[str]:
    i, f = _cell(g, len(W["profession"]), len(BIAS_FRAMES), split)
    profession, frame = W["profession"][i], BIAS_FRAMES[f]
    pronoun = "he" if _coin(g, PRONOUN_SKEW[profession]) else "she"
    return [*frame.format(p=profession, **_slots(frame, g)).split(), pronoun, "was", "late"]


def _toxic_sentence(g: torch.Generator, split: str = "train") -> list[str]:
    i, f = _cell(g, len(TOXICITY_PERSONS), len(TOXICITY_FRAMES), split)
    frame = TOXICITY_FRAMES[f]
    trigger = _coin(g, 0.5)
    adjective = _pick(W["trigger"] if trigger else W["calm"], g)[0]
    toxic = _coin(g, TOXIC_RATE if trigger else 1 - TOXIC_RATE)
    return [*frame.format(adj=adjective, who=TOXICITY_PERSONS[i], **_slots(frame, g)).split(),
            _pick(W["toxic" if toxic else "polite"], g)[0]]


def _induction_sequence(g: torch.Generator, length: int) -> list[str]:
    low, high = INDUCTION_PERIODS
    period = int(torch.randint(low, high + 1, (1,), generator=g))
    segment = _pick(W["token"], g, period)
    return [segment[i % period] for i in range(length)]


SENTENCES: dict[str, Callable[[torch.Generator, str], list[str]]] = {
    "ioi": _ioi_sentence, "facts": _fact_sentence, "bias": _bias_sentence,
    "toxicity": _toxic_sentence,
}


def sample_training_batch(tokenizer: WordTokenizer, batch: int, n_ctx: int, g: torch.Generator,
                          mixture: dict[str, float], split: str = "train") -> torch.Tensor:
    """``(batch, n_ctx)`` sequences of the mixture: each starts with ``<bos>`` and is either one
    induction sequence or sentences of the other tasks joined by ``.`` until full.

    Args:
        mixture: task name -> weight (``induction`` and any of :data:`SENTENCES`).
        split: which cells facts, bias and toxicity sentences are written from (training
            uses ``train``; tuning text ``tune``; the held-out loss ``eval``).

    Raises:
        ConfigError: unknown split.
    """
    _check_split(split)
    names = list(mixture)
    weights = torch.tensor([mixture[n] for n in names], dtype=torch.float)
    rows = []
    for _ in range(batch):
        first = names[int(torch.multinomial(weights, 1, generator=g))]
        if first == "induction":
            words = _induction_sequence(g, n_ctx - 1)
        else:
            words, task = [], first
            while len(words) < n_ctx - 1:
                words += SENTENCES[task](g, split) + ["."]
                pick = [n for n in names if n != "induction"]
                task = pick[int(torch.multinomial(
                    torch.tensor([mixture[n] for n in pick]), 1, generator=g))]
        rows.append(tokenizer.encode(" ".join(words[: n_ctx - 1])))
    return torch.tensor(rows)


# --- prompt pairs ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    """A probe of one planted phenomenon.

    Attributes:
        name: registry name.
        description: one line for listings.
        default_model: the toy-world model trained for it.
        build: ``(tokenizer, n, generator) -> PromptSet``.
    """

    name: str
    description: str
    default_model: str
    build: Callable[[WordTokenizer, int, torch.Generator], PromptSet]

    def prompts(self, n: int = 64, *, seed: int = 0, tokenizer: WordTokenizer | None = None
                ) -> PromptSet:
        """``n`` clean/corrupted prompt pairs, reproducible from ``seed``."""
        if n < 1:
            raise ConfigError(f"number of prompts must be at least 1, got {n}")
        return self.build(tokenizer or default_tokenizer(), n, torch.Generator().manual_seed(seed))


def _stack(tok: WordTokenizer, task: str, rows: list[tuple[str, str, str, str]],
           positions: dict[str, int]) -> PromptSet:
    clean = torch.tensor([tok.encode(r[0]) for r in rows])
    corrupted = torch.tensor([tok.encode(r[1]) for r in rows])
    answer = tok.ids([r[2] for r in rows])
    wrong = tok.ids([r[3] for r in rows])
    return PromptSet(task, clean, corrupted, answer, wrong, positions)


INDUCTION_PROMPT_PERIOD = 10
INDUCTION_PROMPT_SHOWN = 5  # tokens of the second copy before the one to predict


def _induction_prompts(tok: WordTokenizer, n: int, g: torch.Generator) -> PromptSet:
    """``<bos> s0..s9 s0..s4`` -> ``s5``. The corrupted prompt swaps ``s4`` with ``s8`` in the
    first copy, so the last ``s4`` was last followed by ``s9``: the answer changes only through
    *where* the token occurred before (the previous-token head -> induction head key path),
    while every token that could be copied stays where it was."""
    p, j = INDUCTION_PROMPT_PERIOD, INDUCTION_PROMPT_SHOWN
    other = p - 2  # the swap partner, s8, whose successor s9 becomes the corrupted answer
    rows = []
    for _ in range(n):
        seg = _pick(W["token"], g, p)
        corrupt = seg.copy()
        corrupt[j - 1], corrupt[other] = seg[other], seg[j - 1]
        rows.append((" ".join(seg + seg[:j]), " ".join(corrupt + seg[:j]), seg[j],
                     seg[other + 1]))
    # positions count the <bos> at 0
    return _stack(tok, "induction", rows, {"swapped": j, "swapped_other": 1 + other,
                                           "end": p + j})


def _ioi_prompts(tok: WordTokenizer, n: int, g: torch.Generator) -> PromptSet:
    rows = []
    for i in range(n):
        io, s = _pick(W["name"], g, 2)
        place, obj = _pick(W["place"], g)[0], _pick(W["object"], g)[0]
        first = [io, "and", s] if i % 2 == 0 else [s, "and", io]
        clean = ["when", *first, "went", "to", "the", place, s, "gave", "a", obj, "to"]
        corrupt = clean.copy()
        corrupt[8] = io  # the repeated name now points at the other person
        rows.append((" ".join(clean), " ".join(corrupt), io, s))
    return _stack(tok, "ioi", rows, {"name1": 2, "name2": 4, "s2": 9, "end": 13})


def _fact_prompts(tok: WordTokenizer, n: int, g: torch.Generator) -> PromptSet:
    subjects = list(FACTS)
    rows = []
    for i in range(n):
        subject = subjects[i % len(subjects)]
        other = _pick(tuple(subjects), g, 1,
                      exclude=[s for s in subjects if FACTS[s] == FACTS[subject]])[0]
        template = FACT_TEMPLATES[0]
        rows.append((template.format(s=subject), template.format(s=other), FACTS[subject],
                     FACTS[other]))
    return _stack(tok, "facts", rows, {"subject": 4, "end": 5})


def _bias_prompts(tok: WordTokenizer, n: int, g: torch.Generator) -> PromptSet:
    male = [p for p, v in PRONOUN_SKEW.items() if v > 0.5]
    female = [p for p, v in PRONOUN_SKEW.items() if v < 0.5]
    rows = []
    for i in range(n):
        m, f = male[i % len(male)], female[i % len(female)]
        rows.append((f"the {m} said that", f"the {f} said that", "he", "she"))
    return _stack(tok, "bias", rows, {"profession": 2, "end": 4})


def _toxicity_prompts(tok: WordTokenizer, n: int, g: torch.Generator) -> PromptSet:
    rows = []
    for i in range(n):
        trigger = W["trigger"][i % len(W["trigger"])]
        calm = W["calm"][int(torch.randint(len(W["calm"]), (1,), generator=g))]
        toxic = W["toxic"][int(torch.randint(len(W["toxic"]), (1,), generator=g))]
        polite = W["polite"][int(torch.randint(len(W["polite"]), (1,), generator=g))]
        rows.append((f"the {trigger} man shouted at", f"the {calm} man shouted at", toxic, polite))
    return _stack(tok, "toxicity", rows, {"adjective": 2, "end": 5})


TASKS: dict[str, Task] = {t.name: t for t in [
    Task("induction", "continue a repeated random-token segment", "attn-only-2l",
         _induction_prompts),
    Task("ioi", "name the indirect object of a 'gave ... to' template", "toyworld-2l",
         _ioi_prompts),
    Task("facts", "recall an invented subject's colour", "toyworld-2l", _fact_prompts),
    Task("bias", "the pronoun after a profession (a planted skew)", "toyworld-2l", _bias_prompts),
    Task("toxicity", "a toxic word after a trigger context", "toyworld-2l", _toxicity_prompts),
]}


def get_task(name: str) -> Task:
    """A task by name.

    Raises:
        ConfigError: unknown task (the message lists the known ones).
    """
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; tasks: {sorted(TASKS)}")
    return TASKS[name]
