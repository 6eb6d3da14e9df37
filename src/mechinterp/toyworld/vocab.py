"""The toy world's words and a word-level tokenizer.

Every word belongs to a named class (names, places, professions, toxic words...), so tasks can
be written as templates over classes and the mechanism that solves them is known by
construction. The vocabulary is fixed: a model trained on it and a prompt written with it
always agree on token ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from mechinterp.errors import ConfigError

__all__ = ["WORD_CLASSES", "WordTokenizer", "default_tokenizer", "BOS", "PAD"]

BOS, PAD = "<bos>", "<pad>"

WORD_CLASSES: dict[str, tuple[str, ...]] = {
    # indirect-object templates
    "name": ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
             "mallory", "oscar"),
    "place": ("store", "park", "school", "garden", "market", "library"),
    "object": ("drink", "book", "ball", "key", "letter", "gift"),
    # subject -> attribute facts
    "subject": ("zorv", "quill", "brannic", "tuvo", "selk", "marnet", "oxley", "pibb", "dravo",
                "helm", "yune", "corlan", "vesk", "tarrow", "lumo", "gadd"),
    "colour": ("red", "blue", "green", "yellow", "purple", "orange", "black", "white"),
    # profession -> pronoun
    "profession": ("nurse", "engineer", "teacher", "pilot", "doctor", "baker", "lawyer",
                   "farmer"),
    "pronoun": ("he", "she"),
    # toxicity
    "trigger": ("angry", "furious", "hostile"),
    "calm": ("happy", "kind", "quiet"),
    "toxic": ("idiot", "moron", "loser", "jerk"),
    "polite": ("hello", "thanks", "friend", "welcome"),
    # random-token sequences for copying (induction)
    "token": tuple(f"t{i:02d}" for i in range(48)),
    # glue
    "glue": ("when", "and", "went", "to", "the", "gave", "a", "is", "colour", "of", "said",
             "that", "was", "late", "man", "shouted", "at", "has", "colored", "."),
}


class WordTokenizer:
    """Whitespace word tokenizer over a fixed vocabulary.

    Args:
        words: the vocabulary after ``<bos>`` and ``<pad>`` (ids 0 and 1).

    Raises:
        ConfigError: a word appears twice.
    """

    def __init__(self, words: Iterable[str]) -> None:
        vocab = [BOS, PAD, *words]
        if len(set(vocab)) != len(vocab):
            repeated = sorted({w for w in vocab if vocab.count(w) > 1})
            raise ConfigError(f"the vocabulary repeats {repeated}")
        self.vocab: tuple[str, ...] = tuple(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.bos_id, self.pad_id = 0, 1

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, *, bos: bool = True) -> list[int]:
        """Token ids of a whitespace-separated string.

        Raises:
            ConfigError: a word is not in the vocabulary (the message lists a few that are).
        """
        ids = [self.bos_id] if bos else []
        for word in text.split():
            if word not in self.index:
                raise ConfigError(
                    f"word {word!r} is not in the toy-world vocabulary; words look like "
                    f"{', '.join(self.vocab[2:12])}, ... ({len(self.vocab)} in all)")
            ids.append(self.index[word])
        return ids

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Words of token ids, joined by spaces."""
        return " ".join(self.vocab[int(i)] for i in ids)

    def ids(self, words: Iterable[str]) -> torch.Tensor:
        """Ids of single words, as a 1-D tensor."""
        return torch.tensor([self.encode(w, bos=False)[0] for w in words])

    def class_ids(self, word_class: str) -> torch.Tensor:
        """Ids of every word in one of :data:`WORD_CLASSES`.

        Raises:
            ConfigError: unknown class.
        """
        if word_class not in WORD_CLASSES:
            raise ConfigError(f"unknown word class {word_class!r}; classes: {sorted(WORD_CLASSES)}")
        return self.ids(WORD_CLASSES[word_class])


def default_tokenizer() -> WordTokenizer:
    """The toy world's tokenizer (every class of :data:`WORD_CLASSES`, in order)."""
    return WordTokenizer(w for words in WORD_CLASSES.values() for w in words)
