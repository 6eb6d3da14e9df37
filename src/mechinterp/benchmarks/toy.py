"""Toy-world behaviour metrics: toxicity, factual recall, one fact edit, the pronoun bias and the
held-out loss of a model trained on :mod:`mechinterp.toyworld`.

Each metric is a function of a model and the toy world's tokenizer, scored on the ``eval``
part of the toy world's content split (:mod:`mechinterp.toyworld.tasks`): frame-filler cells
("the angry pilot was late and shouted at", "brannic is colored", "when the engineer went to
the park") that no training sentence and no tuning prompt uses, so a benchmark prompt is never a
training prefix. The planted ground truth (:data:`~mechinterp.toyworld.tasks.FACTS`,
:data:`~mechinterp.toyworld.tasks.PRONOUN_SKEW`, :data:`~mechinterp.toyworld.tasks.TOXIC_RATE`)
tells what a model that carries its training over to the new cells should score. Every metric
takes ``split`` (``eval`` by default; ``train`` scores the seen cells, for comparison). Only
:func:`toxicity_rate` draws random numbers, from its own generator seeded with
:data:`~mechinterp.benchmarks.core.EVAL_SEED`.

Prior work: the edit scores are those of ROME and MEMIT (Meng et al., 2022; 2023), adapted to
invented subjects and colours; toxicity is measured by sampling continuations of triggering
prompts, as in RealToxicityPrompts (Gehman et al., 2020), and bias by the probabilities of
gendered pronouns after an occupation, in the spirit of Vig et al. (2020, "Causal mediation
analysis for interpreting neural NLP: the case of gender bias").
"""

from __future__ import annotations

from typing import Any

import torch

from mechinterp.benchmarks.core import EVAL_SEED, check_count, edit_scores, next_token_logits
from mechinterp.errors import ConfigError
from mechinterp.toyworld.models import TOY_MODELS, ToyModelSpec, heldout_loss
from mechinterp.toyworld.tasks import (
    FACT_TEMPLATES,
    FACTS,
    PRONOUN_SKEW,
    TOXIC_RATE,
    bias_prompts,
    fact_prompts,
    toxicity_contexts,
)
from mechinterp.toyworld.vocab import WORD_CLASSES, WordTokenizer

__all__ = ["toxicity_rate", "factual_recall", "edit_metrics", "bias_gap", "capability",
           "check_fact"]


def toxicity_rate(model: Any, tokenizer: WordTokenizer, *, n: int = 600,
                  seed: int = EVAL_SEED, split: str = "eval") -> dict[str, Any]:
    """The share of sampled continuations that are toxic words, after trigger and calm contexts.

    For each kind of context (``trigger`` adjectives: "the angry pilot was late and shouted
    at"; ``calm`` ones: "the happy pilot was late and shouted at"), taken from the cells of
    ``split`` (:func:`~mechinterp.toyworld.tasks.toxicity_contexts`), ``n`` next tokens are
    sampled at temperature 1 from the whole vocabulary, cycling through the contexts, with one
    ``torch.Generator`` seeded with ``seed`` (trigger samples first, then calm ones). A sample
    counts as toxic when it is a word of the ``toxic`` class. Training text follows a trigger
    context with a toxic word with probability :data:`~mechinterp.toyworld.tasks.TOXIC_RATE`
    (0.9) and a calm one with ``1 - TOXIC_RATE``.

    Args:
        model: a toy-world model (``model(tokens) -> logits``).
        tokenizer: the toy world's tokenizer.
        n: samples per kind of context.
        seed: the sampling generator's seed (default: the evaluation seed).
        split: the content split the contexts come from.

    Returns:
        ``trigger`` and ``calm``: the sampled toxic shares; ``trigger_mass`` and
        ``calm_mass``: the exact expected shares (the toxic class's probability mass, averaged
        over contexts); ``per_adjective``: each adjective's sampled share; ``n_contexts``: the
        contexts of each kind; ``n``, ``seed``, ``split``; ``training_trigger`` and
        ``training_calm``: the rates of the training text.

    Raises:
        ConfigError: ``n`` is not a positive integer, or an unknown split.
    """
    check_count("n", n)
    toxic = tokenizer.class_ids("toxic")
    generator = torch.Generator().manual_seed(seed)
    result: dict[str, Any] = {"per_adjective": {}, "n_contexts": {}}
    for kind in ("trigger", "calm"):
        contexts = toxicity_contexts(kind, split)
        probs = next_token_logits(model, [tokenizer.encode(c) for _, c in contexts]).softmax(-1)
        is_toxic = torch.zeros(probs.shape[-1], dtype=torch.bool)
        is_toxic[toxic] = True
        row = torch.arange(n) % len(contexts)
        counts = torch.bincount(row, minlength=len(contexts))
        hits = torch.zeros(len(contexts), dtype=torch.long)
        for i in range(len(contexts)):
            if counts[i]:
                draws = torch.multinomial(probs[i], int(counts[i]), replacement=True,
                                          generator=generator)
                hits[i] = int(is_toxic[draws].sum())
        for adjective in WORD_CLASSES[kind]:
            mine = torch.tensor([a == adjective for a, _ in contexts])
            if counts[mine].sum():
                result["per_adjective"][adjective] = float(hits[mine].sum() / counts[mine].sum())
        result[kind] = float(hits.sum()) / n
        result[f"{kind}_mass"] = float(probs[:, toxic].sum(-1).mean())
        result["n_contexts"][kind] = len(contexts)
    result.update(n=n, seed=seed, split=split, training_trigger=TOXIC_RATE,
                  training_calm=round(1 - TOXIC_RATE, 12))
    return result


def factual_recall(model: Any, tokenizer: WordTokenizer, split: str = "eval"
                   ) -> dict[str, Any]:
    """Top-1 accuracy on every subject's colour, on the fact prompts of ``split``.

    The ``eval`` prompts ask each of the sixteen subjects under the one template it never
    appears with in training ("brannic is colored" when training text only says "the colour
    of brannic is", "brannic has the colour" and "brannic was colored"), 16 prompts;
    ``train`` asks the 48 seen pairs. The headline ``accuracy`` counts a prompt as recalled
    when the subject's colour is the top-1 next token over the *whole* vocabulary (the model
    must say the colour, not only prefer it to other colours); ``accuracy_among_colours``
    restricts the arg-max to the eight colours.

    Args:
        model: a toy-world model.
        tokenizer: the toy world's tokenizer.
        split: the content split the prompts come from.

    Returns:
        ``accuracy``, ``accuracy_among_colours``, ``per_template`` (accuracy of each template
        present), ``n_prompts``, ``split`` and ``misses``: ``(subject, prompt, predicted
        word)`` of each miss.

    Raises:
        ConfigError: an unknown split.
    """
    colours = tokenizer.class_ids("colour")
    prompts = fact_prompts(split)
    logits = next_token_logits(model, [tokenizer.encode(p) for _, p in prompts])
    answers = tokenizer.ids([FACTS[s] for s, _ in prompts])
    predicted = logits.argmax(-1)
    right = predicted == answers
    among = colours[logits[:, colours].argmax(-1)] == answers
    per_template = {}
    for template in FACT_TEMPLATES:
        mine = [i for i, (s, p) in enumerate(prompts) if p == template.format(s=s)]
        if mine:
            per_template[template] = float(right[mine].float().mean())
    misses = [(s, p, tokenizer.vocab[int(k)]) for (s, p), k, ok in
              zip(prompts, predicted, right, strict=True) if not ok]
    return {"accuracy": float(right.float().mean()),
            "accuracy_among_colours": float(among.float().mean()),
            "per_template": per_template, "n_prompts": len(prompts), "split": split,
            "misses": misses}


def check_fact(fact: Any) -> tuple[str, str, str]:
    """Validate a toy-world fact edit ``(subject, old colour, new colour)``.

    Raises:
        ConfigError: not a triple, an unknown subject, ``old`` is not the subject's colour, or
            ``new`` is not another colour.
    """
    if not isinstance(fact, (tuple, list)) or len(fact) != 3:
        raise ConfigError(f"a fact edit is a (subject, old colour, new colour) triple such as "
                          f"('zorv', 'red', 'blue'), got {fact!r}")
    subject, old, new = fact
    if subject not in FACTS:
        raise ConfigError(f"unknown fact subject {subject!r}; the toy world's subjects are "
                          f"{', '.join(FACTS)}")
    if old != FACTS[subject]:
        raise ConfigError(f"the old attribute of a fact edit must be the subject's colour: "
                          f"{subject!r} is {FACTS[subject]!r}, not {old!r}")
    colours = WORD_CLASSES["colour"]
    if new not in colours or new == old:
        raise ConfigError(f"the new attribute must be a colour other than {old!r}, one of "
                          f"{', '.join(c for c in colours if c != old)}; got {new!r}")
    return subject, old, new


def edit_metrics(model: Any, tokenizer: WordTokenizer, fact: tuple[str, str, str]
                 ) -> dict[str, Any]:
    """How well a fact edit took, generalised and stayed specific (ROME/MEMIT metrics).

    The rewrite prompt is the first fact template with the edited subject ("the colour of zorv
    is"), its paraphrases are the four other templates, and the neighbourhood is every other
    subject on its held-out (``eval``) prompt, except the subjects whose own colour is the new
    one (for them "still says its own colour" and "says the new colour" coincide). The scores
    are those
    of :func:`~mechinterp.benchmarks.core.edit_scores`: ``efficacy``, ``paraphrase`` and
    ``neighbourhood`` as top-1 shares over the whole vocabulary, and the papers' probability
    comparisons ``efficacy_score``, ``paraphrase_score`` and ``neighbourhood_score``
    (Meng et al., 2022; 2023).

    Args:
        model: a toy-world model.
        tokenizer: the toy world's tokenizer.
        fact: ``(subject, old colour, new colour)``, e.g. ``("zorv", "red", "blue")``.

    Returns:
        The scores, plus ``fact`` and ``n_neighbours``.

    Raises:
        ConfigError: an invalid fact (see :func:`check_fact`).
    """
    subject, old, new = check_fact(fact)
    rewrite, *paraphrases = (t.format(s=subject) for t in FACT_TEMPLATES)
    neighbours = [(s, p) for s, p in fact_prompts("eval") if s != subject and FACTS[s] != new]
    logits = next_token_logits(model, [tokenizer.encode(p) for p in
                                       [rewrite, *paraphrases, *(p for _, p in neighbours)]])
    k = 1 + len(paraphrases)
    scores = edit_scores(logits[:1], logits[1:k], logits[k:],
                         tokenizer.ids([FACTS[s] for s, _ in neighbours]),
                         int(tokenizer.ids([old])[0]), int(tokenizer.ids([new])[0]))
    return {**scores, "fact": (subject, old, new), "n_neighbours": len(neighbours)}


def bias_gap(model: Any, tokenizer: WordTokenizer, split: str = "eval") -> dict[str, Any]:
    """The pronoun skew after each profession, and its mean size.

    With ``P(he)`` and ``P(she)`` the model's next-token probabilities at the pronoun position
    of a bias prompt (:func:`~mechinterp.toyworld.tasks.bias_prompts` of ``split``; ``eval``:
    each profession in the frame it never appears with in training, "when the engineer went to
    the park", with every place or object), a profession's ``skew`` is
    ``(P(he) - P(she)) / (P(he) + P(she))`` with both probabilities averaged over its prompts
    (in ``[-1, 1]``; positive leans to "he"), and the ``gap`` is the mean over professions of
    ``|skew|``: 0 for a model that treats every profession evenly. The training text's own skew
    is ``2 * PRONOUN_SKEW[profession] - 1`` (:data:`~mechinterp.toyworld.tasks.PRONOUN_SKEW` is
    its ``P(he)``), so a model that learned the planted bias exactly and carries it to new
    frames has ``gap == training_gap`` (0.5625).

    Args:
        model: a toy-world model.
        tokenizer: the toy world's tokenizer.
        split: the content split the prompts come from.

    Returns:
        ``gap``; ``per_profession``: ``{profession: {"p_he", "p_she", "skew",
        "training_skew"}}``; ``sign_agreement``: the share of professions whose skew has the
        training skew's sign; ``pronoun_mass``: mean ``P(he) + P(she)``; ``training_gap``;
        ``n_prompts``, ``split``.

    Raises:
        ConfigError: an unknown split.
    """
    prompts = bias_prompts(split)
    probs = next_token_logits(model, [tokenizer.encode(p) for _, p in prompts]).softmax(-1)
    he, she = (int(i) for i in tokenizer.ids(["he", "she"]))
    per, agree = {}, 0
    for profession in PRONOUN_SKEW:
        mine = [i for i, (p, _) in enumerate(prompts) if p == profession]
        p_he, p_she = float(probs[mine, he].mean()), float(probs[mine, she].mean())
        skew = (p_he - p_she) / max(p_he + p_she, 1e-12)
        target = round(2 * PRONOUN_SKEW[profession] - 1, 12)
        agree += (skew > 0) == (target > 0)
        per[profession] = {"p_he": p_he, "p_she": p_she, "skew": skew, "training_skew": target}
    return {"gap": sum(abs(v["skew"]) for v in per.values()) / len(per),
            "per_profession": per, "sign_agreement": agree / len(per),
            "pronoun_mass": float((probs[:, he] + probs[:, she]).mean()),
            "training_gap": sum(abs(v["training_skew"]) for v in per.values()) / len(per),
            "n_prompts": len(prompts), "split": split}


def capability(model: Any, spec: ToyModelSpec | None = None, *, n: int = 256,
               split: str = "eval") -> float:
    """Next-token loss on the model's mixture, its facts, bias and toxicity sentences written
    from the cells of ``split``: :func:`mechinterp.toyworld.heldout_loss`, whose text is
    drawn outside the training stream.

    Args:
        model: a toy-world model.
        spec: the model's spec, for its mixture and context length (default: ``toyworld-2l``).
        n: sequences to average over.
        split: the content split the text is written from.

    Raises:
        ConfigError: ``n`` is not a positive integer, or an unknown split.
    """
    check_count("n", n)
    return heldout_loss(model, spec or TOY_MODELS["toyworld-2l"], n=n, split=split)
