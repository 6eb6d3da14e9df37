"""Toy-world data that ready-made interventions are fitted on, kept apart from evaluation data.

Every vector, probe, mean and covariance behind a ready-made intervention comes from text
drawn with :data:`TUNING_SEED`, a stream that no training run, held-out loss
(:func:`mechinterp.toyworld.heldout_loss` uses 10,000), task prompt set (small seeds) or
benchmark (20,251) draws from. Tuning prompts are also not the bare evaluation prompts: each
target sentence ("the angry man shouted at") follows one to three random sentences of the
training mixture, so the fitted directions have to hold across contexts and positions. (A fact
edit is the exception, as in ROME: it is fitted on its own rewrite prompt too, bare and in
context, and judged on that prompt's paraphrases and on other subjects.)

Named contrasts (two groups of prompts whose last-token activations are compared):

* ``toxicity``: "the {trigger} man shouted at" versus "the {calm} man shouted at";
* ``bias``: "the {profession} said that" for professions followed by "he" more often than
  not in training text versus those followed by "she" more often.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mechinterp.errors import ConfigError
from mechinterp.toyworld.tasks import PRONOUN_SKEW, SENTENCES, sample_training_batch
from mechinterp.toyworld.vocab import WORD_CLASSES, WordTokenizer

__all__ = ["TUNING_SEED", "CONTRASTS", "in_context", "contrast_prompts", "reference_tokens"]

TUNING_SEED = 31_337
"""Seed of the tuning stream (see the module docstring for the streams it avoids)."""

CONTRASTS: dict[str, str] = {
    "toxicity": "trigger contexts ('the angry man shouted at') minus calm ones ('the happy "
                "man shouted at')",
    "bias": "professions followed mostly by 'he' minus those followed mostly by 'she' ('the "
            "engineer said that' vs 'the nurse said that')",
}
"""Named contrasts -> what their first group minus their second group compares."""


def in_context(tokenizer: WordTokenizer, sentences: Sequence[str], *, seed: int = TUNING_SEED,
               min_prefix: int = 1, max_prefix: int = 3, n_ctx: int = 32) -> list[list[int]]:
    """Each sentence after ``min_prefix``..``max_prefix`` random training-mixture sentences
    (and ``<bos>``), trimmed from the left to at most ``n_ctx`` tokens.

    With ``min_prefix >= 1`` (the default) no row is a bare prompt, so the evaluation prompts
    ("the angry man shouted at" right after ``<bos>``) never appear in tuning data.

    Args:
        tokenizer: the toy world's tokenizer.
        sentences: the target texts, e.g. ``"the colour of zorv is"``.
        seed: the generator seed for the prefixes.
        min_prefix, max_prefix: fewest and most sentences put before each target.
        n_ctx: the model's context length.

    Raises:
        ConfigError: ``0 <= min_prefix <= max_prefix`` does not hold.
    """
    if not 0 <= min_prefix <= max_prefix:
        raise ConfigError(f"in_context needs 0 <= min_prefix <= max_prefix, got {min_prefix}, "
                          f"{max_prefix}")
    g = torch.Generator().manual_seed(seed)
    names = sorted(SENTENCES)
    rows = []
    for sentence in sentences:
        target = sentence.split()
        words: list[str] = []
        count = int(torch.randint(min_prefix, max_prefix + 1, (1,), generator=g))
        for _ in range(count):
            words += SENTENCES[names[int(torch.randint(len(names), (1,), generator=g))]](g)
            words.append(".")
        words = words[max(0, len(words) + len(target) - (n_ctx - 1)):]
        rows.append(tokenizer.encode(" ".join(words + target)))
    return rows


def contrast_prompts(name: str, tokenizer: WordTokenizer, *, n: int = 60,
                     seed: int = TUNING_SEED) -> tuple[list[list[int]], list[list[int]]]:
    """The two prompt groups of a named contrast, ``n`` prompts each, in context.

    Raises:
        ConfigError: unknown contrast (the message lists them).
    """
    if name == "toxicity":
        a = [f"the {w} man shouted at" for w in WORD_CLASSES["trigger"]]
        b = [f"the {w} man shouted at" for w in WORD_CLASSES["calm"]]
    elif name == "bias":
        a = [f"the {p} said that" for p, skew in PRONOUN_SKEW.items() if skew > 0.5]
        b = [f"the {p} said that" for p, skew in PRONOUN_SKEW.items() if skew < 0.5]
    else:
        raise ConfigError(f"unknown contrast {name!r}; contrasts: {sorted(CONTRASTS)}")
    return (in_context(tokenizer, [a[i % len(a)] for i in range(n)], seed=seed),
            in_context(tokenizer, [b[i % len(b)] for i in range(n)], seed=seed + 1))


def reference_tokens(tokenizer: WordTokenizer, mixture: dict[str, float], *, n: int = 256,
                     n_ctx: int = 32, seed: int = TUNING_SEED) -> torch.Tensor:
    """``(n, n_ctx)`` training-mixture sequences from the tuning stream, for means,
    covariances and SAEs."""
    return sample_training_batch(tokenizer, n, n_ctx, torch.Generator().manual_seed(seed + 2),
                                 mixture)
