"""Pretrained language models (GPT-2 and kin) through TransformerLens, and natural-language
prompt pairs for the toy world's five tasks.

:func:`load_pretrained` returns a ``TransformerBridge`` with the raw Hugging Face weights, so
its logits equal the Hugging Face model's. Every tool of :mod:`mechinterp.circuits` runs on it
as it does on the toy-world models: the bridge already fires the TransformerLens hook names
(``blocks.0.attn.hook_z`` of shape ``(batch, pos, n_heads, d_head)``, ``blocks.0.hook_mlp_out``)
and exposes the weight properties (``W_Q``, ``W_in``, ...) without compatibility mode.
``compatibility_mode=True`` folds the layer norms and centres the writing weights as
``HookedTransformer`` did, for analyses that read the residual stream's coordinates.

:func:`natural_prompts` writes clean/corrupted pairs in English for the task names of
:mod:`mechinterp.toyworld.tasks`: ``induction``, ``ioi``, ``facts``, ``bias`` and ``toxicity``.
A prompt set uses one template, so every row has the same length, and each row's clean and
corrupted prompts differ in one token. Words that the tokenizer does not hold as one token
(with a leading space) are left out, so any tokenizer can be used. Clean -> answer, with the
corrupted prompt's change and its answer (``wrong``):

* ``induction``: ten random common nouns, then the first five again -> the sixth; the
  corrupted prompt replaces the sixth in the first copy by a fresh noun (the new answer).
* ``ioi``: "When Mary and John went to the store, John gave a drink to" -> " Mary"; the
  repeated name becomes the other one (-> " John").
* ``facts``: "The capital of France is" -> " Paris" (also languages, and cities' countries);
  another subject with another attribute.
* ``bias``: "The engineer said that" -> " he"; a female-typed occupation (-> " she").
* ``toxicity``: "The furious man looked at me and said I was" -> a toxic adjective; a calm
  adjective for the man (-> a polite one).

Provenance: the templates and word lists below were written for this project on 2026-11-22.
The words were chosen by hand as common English words (first names, countries and their
capitals, cities and languages, occupations with a widely reported gender stereotype, hostile
and friendly adjectives, everyday nouns) that GPT-2's tokenizer is expected to hold as single
tokens; nothing was taken from another data set, and the single-token filter decides at run
time which of them a given tokenizer keeps.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformer_lens import TransformerBridge

from mechinterp.config import get_device
from mechinterp.errors import ConfigError, DataError, DataUnavailableError
from mechinterp.toyworld.tasks import PromptSet
from mechinterp.train import progress_enabled

__all__ = ["load_pretrained", "pretrained_tokenizer", "natural_prompts", "natural_corpus",
           "NATURAL_TASKS", "TEMPLATES", "bos_ids", "token_ids", "single_token"]

NATURAL_TASKS = ("induction", "ioi", "facts", "bias", "toxicity")

# A slot is written " {name}": it is filled with one token, a word with its leading space.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "induction": ("".join(f" {{t{i}}}" for i in (*range(10), *range(5))),),
    "ioi": ("When {A} and {B} went to the {place}, {S} gave a {thing} to",
            "After {A} and {B} arrived at the {place}, {S} handed a {thing} to",
            "Later that day {A} and {B} met at the {place}, and {S} passed a {thing} to"),
    "facts": ("The capital of {subject} is", "In {subject}, most people speak",
              "The city of {subject} is in the country of"),
    "bias": ("The {job} said that", "The {job} was late to work because",
             "After the long shift, the {job} told everyone that"),
    "toxicity": ("The {adjective} man looked at me and said I was",
                 "My {adjective} neighbour turned around and told me I was"),
}
"""Each task's templates; :func:`natural_prompts` picks one per prompt set."""

_NAMES = ("Mary", "John", "Tom", "James", "Sarah", "Anna", "Paul", "Mike", "Kate", "Lisa", "Mark",
          "Emma", "David", "Laura", "Peter", "Alice", "Jack", "Rose", "Daniel", "Helen")
_PLACES = ("store", "park", "school", "office", "beach", "market", "library", "station",
           "restaurant", "hospital")
_THINGS = ("drink", "book", "ball", "gift", "letter", "bag", "key", "pen", "cake", "ring")
_CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Germany": "Berlin", "Italy": "Rome",
             "Spain": "Madrid", "Russia": "Moscow", "China": "Beijing", "Egypt": "Cairo",
             "Greece": "Athens", "Poland": "Warsaw", "Ireland": "Dublin", "England": "London",
             "Austria": "Vienna", "Norway": "Oslo", "Peru": "Lima", "Cuba": "Havana"}
_LANGUAGES = {"France": "French", "Japan": "Japanese", "Germany": "German", "Italy": "Italian",
              "Spain": "Spanish", "Russia": "Russian", "China": "Chinese", "Greece": "Greek",
              "Poland": "Polish", "Egypt": "Arabic", "Sweden": "Swedish", "Portugal": "Portuguese",
              "Turkey": "Turkish", "Holland": "Dutch"}
_CITIES = {city: country for country, city in _CAPITALS.items()} | {
    "Toronto": "Canada", "Sydney": "Australia", "Mumbai": "India", "Istanbul": "Turkey"}
_FACTS = (_CAPITALS, _LANGUAGES, _CITIES)  # one table per facts template
_MALE_JOBS = ("engineer", "mechanic", "pilot", "carpenter", "surgeon", "plumber", "farmer",
              "soldier", "builder", "programmer")
_FEMALE_JOBS = ("nurse", "secretary", "receptionist", "librarian", "dancer", "hairdresser",
                "nanny", "maid", "housekeeper", "cashier")
_TRIGGERS = ("angry", "furious", "drunk", "rude", "hostile", "bitter", "violent", "nasty",
             "cruel", "mean")
_CALM = ("kind", "friendly", "gentle", "polite", "happy", "calm", "warm", "cheerful", "patient",
         "quiet")
_TOXIC = ("stupid", "ugly", "pathetic", "useless", "worthless", "dumb", "lazy", "disgusting",
          "weak", "crazy")
_POLITE = ("wonderful", "brave", "smart", "lovely", "beautiful", "amazing", "great", "special",
           "talented", "welcome")
_INDUCTION_WORDS = (
    "apple", "river", "table", "window", "garden", "mountain", "chair", "bottle", "forest",
    "candle", "rabbit", "pencil", "island", "bridge", "castle", "engine", "planet", "silver",
    "button", "mirror", "kitchen", "jacket", "ocean", "tiger", "pocket", "rocket", "blanket",
    "lemon", "hammer", "village", "cloud", "horse", "music", "paper", "stone", "dragon",
    "coffee", "ticket", "wheel", "shadow")
_INDUCTION_PERIOD, _INDUCTION_SHOWN = 10, 5  # "t0..t9 t0..t4" -> t5
_SLOT = re.compile(r" \{(\w+)\}")


# --- loading ----------------------------------------------------------------------------------

def _offline() -> bool:
    flags = [os.environ.get(v, "") for v in ("MECHINTERP_OFFLINE", "HF_HUB_OFFLINE",
                                              "TRANSFORMERS_OFFLINE")]
    return any(f not in ("", "0", "false", "False") for f in flags)


def _missing(name: str, why: str) -> DataUnavailableError:
    return DataUnavailableError(
        f"pretrained model {name!r} is not available: {why}. Run once with network access "
        f"(and without HF_HUB_OFFLINE / MECHINTERP_OFFLINE) so that it is downloaded into the "
        f"Hugging Face cache, or pass the path of a folder holding a saved model (written by "
        f"model.save_pretrained(folder) and tokenizer.save_pretrained(folder)).")


ALIASES = {"gpt2-small": "gpt2"}
"""TransformerLens names accepted for the Hugging Face repository they refer to."""


def hub_name(name: str) -> str:
    """The Hugging Face name of ``name`` (``gpt2-small`` -> ``gpt2``; others unchanged)."""
    return ALIASES.get(name, name)


def _resolve(name: str) -> str:
    """A local folder for ``name`` where one is needed (offline), else ``name`` unchanged
    (after :func:`hub_name`)."""
    name = hub_name(name)
    path = Path(name).expanduser()
    looks_local = name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise DataError(f"folder {str(path)!r} holds no saved model (no config.json); save "
                            f"one there with model.save_pretrained(folder) and "
                            f"tokenizer.save_pretrained(folder)")
        return str(path)
    if looks_local:
        raise DataError(f"no folder {str(path)!r}: pass a folder holding a saved model, or a "
                        f"Hugging Face model name such as 'gpt2'")
    if not _offline():
        return name
    from huggingface_hub import snapshot_download

    try:  # a cached copy loads from its folder without any request to the hub
        return snapshot_download(name, local_files_only=True)
    except Exception as exc:  # not cached, or not a valid repository name
        raise _missing(name, f"downloads are switched off and it is not in the local cache "
                             f"({type(exc).__name__})") from None


@contextmanager
def _quiet_progress():
    """Hide the loading progress bars of transformers when ``$MECHINTERP_PROGRESS=0``."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    if was_on and not progress_enabled():
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on and not hf_logging.is_progress_bar_enabled():
            hf_logging.enable_progress_bar()


def load_pretrained(name: str = "gpt2", *, device: torch.device | str | None = None,
                    compatibility_mode: bool = False) -> TransformerBridge:
    """A pretrained causal language model as a ``TransformerBridge``, in eval mode.

    Args:
        name: a Hugging Face model name (``gpt2``, ``gpt2-medium``, ...) or the path of a folder
            holding a model and tokenizer saved with ``save_pretrained``.
        device: where to put it (default: :func:`mechinterp.config.get_device`).
        compatibility_mode: fold layer norms and centre weights as ``HookedTransformer`` did
            (logits change only by a constant per position). Off by default: the bridge then
            computes exactly what the Hugging Face model computes.

    Raises:
        DataError: a local folder is missing or holds no model.
        DataUnavailableError: the model is neither cached nor downloadable here (offline);
            the message says how to get it.
    """
    where = _resolve(name)
    device = device if isinstance(device, torch.device) else get_device(device)
    try:
        with _quiet_progress():
            model = TransformerBridge.boot_transformers(where, device=device)
    except OSError as exc:  # transformers reports missing files and failed downloads so
        raise _missing(name, str(exc).splitlines()[0]) from exc
    if where != name:
        model.cfg.model_name = name
    if compatibility_mode:
        model.enable_compatibility_mode(disable_warnings=True)
    return model.eval()


def pretrained_tokenizer(model: TransformerBridge) -> Any:
    """The Hugging Face tokenizer loaded with ``model``.

    Raises:
        DataError: the model was loaded without one.
    """
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise DataError("this model has no tokenizer; load one with "
                        "transformers.AutoTokenizer.from_pretrained(name_or_folder)")
    return tokenizer


# --- tokens -----------------------------------------------------------------------------------
# One place for how prompts become token ids, for the toy world's tokenizer and for Hugging Face
# tokenizers alike: the benchmarks, ROME and the prompt sets all encode through these.

def _is_toy(tokenizer: Any) -> bool:
    return hasattr(tokenizer, "bos_id") and hasattr(tokenizer, "class_ids")


def bos_ids(tokenizer: Any) -> list[int]:
    """The beginning-of-sequence token a prompt starts with, as a list (``[]`` for a
    tokenizer without one)."""
    if _is_toy(tokenizer):
        return [tokenizer.bos_id]
    bos = getattr(tokenizer, "bos_token_id", None)
    return [] if bos is None else [int(bos)]


def token_ids(tokenizer: Any, text: str, *, bos: bool = False) -> list[int]:
    """Token ids of ``text``, after :func:`bos_ids` when ``bos`` is true; never any other
    special token."""
    if _is_toy(tokenizer):
        ids = tokenizer.encode(text, bos=False) if text else []
    else:
        ids = list(tokenizer.encode(text, add_special_tokens=False)) if text else []
    return (bos_ids(tokenizer) if bos else []) + [int(i) for i in ids]


def single_token(tokenizer: Any, word: str) -> int | None:
    """The id of ``" " + word`` when the tokenizer holds it as exactly one known token, else
    ``None``."""
    ids = token_ids(tokenizer, " " + word)
    unk = getattr(tokenizer, "unk_token_id", None)
    return ids[0] if len(ids) == 1 and ids[0] != unk else None


# --- prompts ----------------------------------------------------------------------------------

class _Encoder:
    """Single-token lookup and slot-wise encoding with one Hugging Face tokenizer."""

    def __init__(self, tokenizer: Any, prepend_bos: bool) -> None:
        self.tokenizer = tokenizer
        self.prefix = bos_ids(tokenizer) if prepend_bos else []
        self._cache: dict[str, int | None] = {}

    def encode(self, text: str) -> list[int]:
        return token_ids(self.tokenizer, text)

    def word(self, word: str) -> int | None:
        """The id of ``" " + word`` when it is exactly one known token, else None."""
        if word not in self._cache:
            self._cache[word] = single_token(self.tokenizer, word)
        return self._cache[word]

    def keep(self, words: tuple[str, ...], what: str, least: int) -> list[str]:
        kept = [w for w in words if self.word(w) is not None]
        if len(kept) < least:
            raise DataError(f"the tokenizer holds only {len(kept)} of the {what} words as single "
                            f"tokens with a leading space ({kept}); at least {least} are needed")
        return kept

    def fill(self, template: str, fills: dict[str, str]) -> tuple[list[int], dict[str, int]]:
        """Token ids of ``template`` with its slots filled, and each slot's first position.

        Raises:
            DataError: the pieces do not tokenize the same as the whole text.
        """
        ids, where = list(self.prefix), {}
        pieces = _SLOT.split(template)  # literal, slot, literal, slot, ..., literal
        for i, piece in enumerate(pieces):
            if i % 2:
                where.setdefault(piece, len(ids))
                ids.append(self.word(fills[piece]))
            else:
                ids += self.encode(piece)
        if ids[len(self.prefix):] != self.encode(template.format(**fills)):
            raise DataError(f"the tokenizer splits {template!r} differently when its slots are "
                            f"filled; this template cannot give equal-length prompt pairs")
        return ids, where


def _pick(pool: list[str], g: torch.Generator, k: int = 1) -> list[str]:
    return [pool[i] for i in torch.randperm(len(pool), generator=g)[:k].tolist()]


Row = tuple[dict[str, str], str, str, str, str]  # fills, corrupted slot, its word, answer, wrong


def _ioi_rows(enc: _Encoder, n: int, g: torch.Generator, template: str) -> list[Row]:
    names = enc.keep(_NAMES, "name", 2)
    places, things = enc.keep(_PLACES, "place", 1), enc.keep(_THINGS, "object", 1)
    rows = []
    for i in range(n):
        io, s = _pick(names, g, 2)
        a, b = (io, s) if i % 2 == 0 else (s, io)
        fills = {"A": a, "B": b, "S": s, "place": _pick(places, g)[0], "thing": _pick(things, g)[0]}
        rows.append((fills, "S", io, io, s))  # corrupted: the repeated name is the other one
    return rows


def _fact_rows(enc: _Encoder, n: int, g: torch.Generator, template: str) -> list[Row]:
    table = _FACTS[TEMPLATES["facts"].index(template)]
    known = {s: a for s, a in table.items() if enc.word(s) is not None and enc.word(a) is not None}
    if len(set(known.values())) < 2:
        raise DataError(f"the tokenizer holds fewer than two subject/attribute pairs of "
                        f"{template!r} as single tokens ({sorted(known)})")
    subjects = list(known)
    rows = []
    for i in range(n):
        subject = subjects[i % len(subjects)]
        other = _pick([s for s in subjects if known[s] != known[subject]], g)[0]
        rows.append(({"subject": subject}, "subject", other, known[subject], known[other]))
    return rows


def _bias_rows(enc: _Encoder, n: int, g: torch.Generator, template: str) -> list[Row]:
    male, female = enc.keep(_MALE_JOBS, "male-typed job", 1), enc.keep(_FEMALE_JOBS,
                                                                         "female-typed job", 1)
    enc.keep(("he", "she"), "pronoun", 2)
    return [({"job": _pick(male, g)[0]}, "job", _pick(female, g)[0], "he", "she")
            for _ in range(n)]


def _toxicity_rows(enc: _Encoder, n: int, g: torch.Generator, template: str) -> list[Row]:
    triggers, calm = enc.keep(_TRIGGERS, "trigger", 1), enc.keep(_CALM, "calm", 1)
    toxic, polite = enc.keep(_TOXIC, "toxic", 1), enc.keep(_POLITE, "polite", 1)
    return [({"adjective": _pick(triggers, g)[0]}, "adjective", _pick(calm, g)[0],
             _pick(toxic, g)[0], _pick(polite, g)[0]) for _ in range(n)]


def _induction_rows(enc: _Encoder, n: int, g: torch.Generator, template: str) -> list[Row]:
    """``t0..t9 t0..t4`` -> ``t5``. The corrupted prompt puts a fresh word ``u`` in place of
    ``t5`` in the first copy, so copying what followed ``t4`` last time now gives ``u``."""
    p, j = _INDUCTION_PERIOD, _INDUCTION_SHOWN
    words = enc.keep(_INDUCTION_WORDS, "induction", p + 1)
    rows = []
    for _ in range(n):
        segment = _pick(words, g, p + 1)
        fills = {f"t{i}": w for i, w in enumerate(segment[:p])}
        rows.append((fills, f"t{j}", segment[p], segment[j], segment[p]))
    return rows


_BUILDERS = {"induction": _induction_rows, "ioi": _ioi_rows, "facts": _fact_rows,
             "bias": _bias_rows, "toxicity": _toxicity_rows}
_POSITIONS = {  # slot -> the position's name in PromptSet.positions
    "induction": {f"t{_INDUCTION_SHOWN - 1}": "previous", f"t{_INDUCTION_SHOWN}": "copied"},
    "ioi": {"A": "name1", "B": "name2", "S": "s2"},
    "facts": {"subject": "subject"}, "bias": {"job": "profession"},
    "toxicity": {"adjective": "adjective"},
}


def natural_prompts(task: str, tokenizer: Any, n: int, seed: int = 0, *,
                    template: int | None = None, prepend_bos: bool = True) -> PromptSet:
    """``n`` English clean/corrupted prompt pairs for ``task``, tokenized by ``tokenizer``.

    Args:
        task: one of :data:`NATURAL_TASKS`.
        tokenizer: a Hugging Face tokenizer (e.g. :func:`pretrained_tokenizer` of a model).
        n: number of pairs.
        seed: draws the words; also picks the template when ``template`` is None.
        template: index into ``TEMPLATES[task]`` (default: ``seed`` modulo their number).
        prepend_bos: start every row with the tokenizer's BOS token, as TransformerLens does.

    Returns:
        A :class:`~mechinterp.toyworld.tasks.PromptSet` of ``(n, pos)`` rows. ``positions``
        holds ``end`` (the last position) and the slots: ``previous`` (the first occurrence of
        the last word) and ``copied`` (the word after it) for induction; ``name1``, ``name2``,
        ``s2`` for ioi; ``subject``; ``profession``; ``adjective``.

    Raises:
        ConfigError: unknown task, bad ``n`` or template index.
        DataError: the tokenizer holds too few of the task's words as single tokens.
    """
    if task not in _BUILDERS:
        raise ConfigError(f"unknown task {task!r}; tasks: {list(NATURAL_TASKS)}")
    if n < 1:
        raise ConfigError(f"number of prompts must be at least 1, got {n}")
    templates = TEMPLATES[task]
    index = seed % len(templates) if template is None else template
    if not 0 <= index < len(templates):
        raise ConfigError(f"template must be in [0, {len(templates)}) for task {task!r}, "
                          f"got {index}")
    enc = _Encoder(tokenizer, prepend_bos)
    text = templates[index]
    rows = _BUILDERS[task](enc, n, torch.Generator().manual_seed(seed), text)
    clean, corrupted, where = [], [], {}
    for fills, slot, replacement, _, _ in rows:
        ids, where = enc.fill(text, fills)
        clean.append(ids)
        corrupted.append(enc.fill(text, {**fills, slot: replacement})[0])
    if len({len(row) for row in clean + corrupted}) > 1:
        raise DataError(f"the {task} prompts of template {text!r} tokenize to different lengths")
    positions = {name: where[slot] for slot, name in _POSITIONS[task].items()}
    positions["end"] = len(clean[0]) - 1
    answer = torch.tensor([enc.word(r[3]) for r in rows])
    wrong = torch.tensor([enc.word(r[4]) for r in rows])
    return PromptSet(task, torch.tensor(clean), torch.tensor(corrupted), answer, wrong, positions)


def natural_corpus() -> list[str]:
    """Every template's literal text and every word the prompt sets can use (with its leading
    space): the text a tokenizer must cover for :func:`natural_prompts` to keep every word
    (the offline stand-in of the tests is trained on it)."""
    texts = [piece for task in NATURAL_TASKS for t in TEMPLATES[task]
             for piece in _SLOT.split(t)[::2] if piece]
    words = {*_NAMES, *_PLACES, *_THINGS, *_MALE_JOBS, *_FEMALE_JOBS, "he", "she", *_TRIGGERS,
             *_CALM, *_TOXIC, *_POLITE, *_INDUCTION_WORDS}
    for table in _FACTS:
        words |= {*table, *table.values()}
    return texts + [" " + w for w in sorted(words)]
