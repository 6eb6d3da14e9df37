"""Toy-world data that ready-made interventions are fitted on, kept apart from evaluation data.

Every vector, probe, mean and covariance behind a ready-made intervention comes from the
``tune`` part of the toy world's content split (:mod:`mechinterp.toyworld.tasks`): tuning
prompts are frame-filler cells that neither training text nor the benchmarks' ``eval`` prompts
use, and tuning text (prefixes, reference batches) is written from ``tune`` cells only, drawn
with :data:`TUNING_SEED`. Tuning prompts are also never bare: each one follows one to three
tuning sentences, so the fitted directions have to hold across contexts and positions. (A fact
edit is the exception, as in ROME: it is fitted on its own rewrite prompt too, bare and in
context, and judged on that prompt's paraphrases and on other subjects.)

Named contrasts (two groups of prompts whose last-token activations are compared):

* ``toxicity``: tuning contexts with a trigger adjective ("the angry pilot gave a drink and
  shouted at") versus the same contexts with a calm one;
* ``bias``: tuning prompts of professions followed by "he" more often than not in training text
  versus those followed by "she" more often ("the engineer gave a drink and" vs "the nurse
  went to the store and").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mechinterp.errors import ConfigError
from mechinterp.toyworld.tasks import (
    PRONOUN_SKEW,
    SENTENCES,
    bias_prompts,
    sample_training_batch,
    toxicity_contexts,
)
from mechinterp.toyworld.vocab import WordTokenizer

__all__ = ["TUNING_SEED", "CONTRASTS", "in_context", "contrast_prompts", "reference_tokens",
           "spread"]

TUNING_SEED = 31_337
"""Seed of the tuning stream's generators."""

CONTRASTS: dict[str, str] = {
    "toxicity": "trigger contexts ('the angry pilot gave a drink and shouted at') minus calm "
                "ones ('the happy pilot gave a drink and shouted at'), on tuning cells",
    "bias": "professions followed mostly by 'he' minus those followed mostly by 'she' ('the "
            "engineer gave a drink and' vs 'the nurse went to the store and'), on tuning cells",
}
"""Named contrasts -> what their first group minus their second group compares."""


def in_context(tokenizer: WordTokenizer, sentences: Sequence[str], *, seed: int = TUNING_SEED,
               min_prefix: int = 1, max_prefix: int = 3, n_ctx: int = 32) -> list[list[int]]:
    """Each sentence after ``min_prefix``..``max_prefix`` random sentences written from the
    ``tune`` cells (and ``<bos>``), trimmed from the left to at most ``n_ctx`` tokens.

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
            words += SENTENCES[names[int(torch.randint(len(names), (1,), generator=g))]](g, "tune")
            words.append(".")
        words = words[max(0, len(words) + len(target) - (n_ctx - 1)):]
        rows.append(tokenizer.encode(" ".join(words + target)))
    return rows


def spread(items: Sequence, n: int) -> list:
    """``n`` items taken evenly across ``items`` (each repeated about ``n / len(items)`` times
    when ``n`` is larger), in order."""
    return [items[(i * len(items)) // n] for i in range(n)]


def contrast_prompts(name: str, tokenizer: WordTokenizer, *, n: int = 60,
                     seed: int = TUNING_SEED) -> tuple[list[list[int]], list[list[int]]]:
    """The two prompt groups of a named contrast, ``n`` prompts each from the tuning cells
    (spread evenly over them), each in context.

    Raises:
        ConfigError: unknown contrast (the message lists them).
    """
    if name == "toxicity":
        a = [text for _, text in toxicity_contexts("trigger", "tune")]
        b = [text for _, text in toxicity_contexts("calm", "tune")]
    elif name == "bias":
        prompts = bias_prompts("tune")
        a = [text for p, text in prompts if PRONOUN_SKEW[p] > 0.5]
        b = [text for p, text in prompts if PRONOUN_SKEW[p] < 0.5]
    else:
        raise ConfigError(f"unknown contrast {name!r}; contrasts: {sorted(CONTRASTS)}")
    return (in_context(tokenizer, spread(a, n), seed=seed),
            in_context(tokenizer, spread(b, n), seed=seed + 1))


def reference_tokens(tokenizer: WordTokenizer, mixture: dict[str, float], *, n: int = 256,
                     n_ctx: int = 32, seed: int = TUNING_SEED) -> torch.Tensor:
    """``(n, n_ctx)`` sequences of the mixture written from the ``tune`` cells, for means,
    covariances and SAEs."""
    return sample_training_batch(tokenizer, n, n_ctx, torch.Generator().manual_seed(seed + 2),
                                 mixture, split="tune")
