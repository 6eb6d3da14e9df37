"""Documents and the activations a model should report about them: :class:`ActivationDatasetGenerator`.

A *document* is one row of token ids with an id. Every position of a document (except the
first, the beginning-of-sequence token) is one example: the tokens up to it, its position and
the activation there of each chosen ``(layer, neuron)`` in the original model. The activations
are computed once, before any fine-tuning, and never change: they are the *frozen* targets.

Documents, not positions, are split into train and test. Positions of one document share
their prefix, so a position-level split would let the test set leak into training. Documents
that occur twice are dropped before the split for the same reason.

Document sources:

* :func:`toyworld_documents`: sequences of the toy world's training mixture;
* :func:`pretrained_documents`: English prompts (the natural prompt sets of
  :mod:`mechinterp.pretrained`) packed into windows of ``n_ctx`` tokens, for GPT-2 and kin.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mechinterp.errors import ConfigError, DataError
from mechinterp.selfreport.scanner import mlp_hook, model_device
from mechinterp.toyworld.tasks import sample_training_batch
from mechinterp.toyworld.vocab import WordTokenizer

__all__ = ["ActivationDataset", "ActivationDatasetGenerator", "DocumentSource",
           "toyworld_documents", "pretrained_documents", "neuron_targets"]

DocumentSource = Callable[[int, torch.Generator], torch.Tensor]
"""``(n_documents, generator) -> (n_documents, pos)`` token ids."""


def toyworld_documents(tokenizer: WordTokenizer, n_ctx: int,
                       mixture: dict[str, float]) -> DocumentSource:
    """Documents drawn from the toy world's training mixture (each starts with ``<bos>``)."""
    def draw(n: int, generator: torch.Generator) -> torch.Tensor:
        return sample_training_batch(tokenizer, n, n_ctx, generator, mixture)
    return draw


class TextCorpus:
    """Text documents for a Hugging Face tokenizer, split into train and test *by document
    before any windowing*, so no document (and no sentence of the built-in corpus) is seen on
    both sides.

    Documents are stripped, their whitespace collapsed, and exact repeats dropped (the first
    copy is kept); the split is a seeded draw of ``test_fraction`` of them. Each split's
    documents are tokenized, joined with the end-of-text token (when the tokenizer has one)
    into one stream, and a window is ``n_ctx`` tokens of that stream starting at a random
    offset (distinct offsets, so windows may overlap within a split but never cross it), led
    by the BOS token when there is one. Calling the corpus draws training windows only (that
    is what the neuron scan reads).

    Args:
        documents: the texts.
        tokenizer: a Hugging Face tokenizer.
        n_ctx: tokens per window.
        test_fraction: share of documents held out.
        seed: draws the split.

    Raises:
        DataError: fewer than two distinct documents, or a split too short for one window.
    """

    def __init__(self, documents: Sequence[str], tokenizer: Any, n_ctx: int, *,
                 test_fraction: float = 0.25, seed: int = 0) -> None:
        seen: dict[str, None] = {}
        for text in documents:
            text = " ".join(str(text).split())
            if text:
                seen.setdefault(text, None)
        texts = list(seen)
        self.duplicates_dropped = sum(1 for t in documents if " ".join(str(t).split())) - len(texts)
        if len(texts) < 2:
            raise DataError(f"the corpus holds {len(texts)} distinct document(s); it needs at "
                            "least two, one for each split")
        order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed))
        n_test = min(len(texts) - 1, max(1, round(len(texts) * test_fraction)))
        self.documents = {"test": [texts[i] for i in order[:n_test].tolist()],
                          "train": [texts[i] for i in order[n_test:].tolist()]}
        self.bos = getattr(tokenizer, "bos_token_id", None)
        eos = getattr(tokenizer, "eos_token_id", None)
        self.body = n_ctx - (0 if self.bos is None else 1)
        self.streams: dict[str, torch.Tensor] = {}
        for split, docs in self.documents.items():
            stream: list[int] = []
            for text in docs:
                stream += tokenizer.encode(" " + text, add_special_tokens=False) + (
                    [] if eos is None else [eos])
            if len(stream) < self.body:
                raise DataError(f"the {split} documents hold {len(stream)} tokens, fewer than "
                                f"one window of {self.body}; add text or lower n_ctx")
            self.streams[split] = torch.tensor(stream)

    def available(self, split: str) -> int:
        """How many distinct windows one split can give (one per start offset)."""
        return len(self.streams[split]) - self.body + 1

    def windows(self, split: str, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` windows of one split at distinct random offsets, ``(n, n_ctx)``.

        Raises:
            DataError: the split's text has fewer than ``n`` offsets.
        """
        if n > self.available(split):
            raise DataError(f"the corpus's {split} split gives {self.available(split)} windows "
                            f"of {self.body + (self.bos is not None)} tokens, fewer than the "
                            f"{n} asked for; add text (corpus), or lower n_documents, "
                            "scan_documents or n_ctx")
        starts = torch.randperm(self.available(split), generator=generator)[:n]
        windows = self.streams[split][starts[:, None] + torch.arange(self.body)]
        if self.bos is None:
            return windows
        return torch.cat([torch.full((n, 1), self.bos), windows], dim=1)

    def __call__(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.windows("train", n, generator)


def read_corpus(path: str | Path) -> list[str]:
    """Documents of a local corpus: a text file (documents separated by blank lines) or a
    folder (every ``.txt`` file under it is one document).

    Raises:
        DataError: the path does not exist or holds no text.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        docs = [f.read_text(errors="replace") for f in sorted(path.rglob("*.txt"))]
    elif path.is_file():
        docs = re.split(r"\n\s*\n", path.read_text(errors="replace"))
    else:
        raise DataError(f"corpus {str(path)!r} does not exist: give a text file (documents "
                        "separated by blank lines) or a folder of .txt files")
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise DataError(f"corpus {str(path)!r} holds no text")
    return docs


def english_sentences(tokenizer: Any, per_task: int = 200) -> list[str]:
    """The built-in English corpus: clean prompts of every natural task, as text, each
    sentence a document (repeats are dropped by :class:`TextCorpus`)."""
    from mechinterp.pretrained import NATURAL_TASKS, natural_prompts

    texts = []
    for task in NATURAL_TASKS:
        for seed in range(4):
            prompts = natural_prompts(task, tokenizer, per_task // 4, seed=seed,
                                      prepend_bos=False)
            texts += [tokenizer.decode(row).strip() for row in prompts.clean.tolist()]
    return texts


def pretrained_documents(tokenizer: Any, n_ctx: int, *, corpus: str | Path | None = None,
                         test_fraction: float = 0.25, seed: int = 0) -> TextCorpus:
    """Documents for a Hugging Face tokenizer: the texts of ``corpus`` (see
    :func:`read_corpus`) or the built-in English sentences (:func:`english_sentences`), as a
    :class:`TextCorpus` split by document before windowing.

    Raises:
        DataError: the tokenizer keeps too few of the prompt words, or the corpus is missing,
            empty or too short.
    """
    texts = read_corpus(corpus) if corpus is not None else english_sentences(tokenizer)
    return TextCorpus(texts, tokenizer, n_ctx, test_fraction=test_fraction, seed=seed)


def neuron_targets(model: torch.nn.Module, tokens: torch.Tensor, layer: int,
                   neurons: Sequence[int], *, batch_size: int = 32) -> torch.Tensor:
    """``(batch, pos, n_neurons)`` activations of ``neurons`` of ``layer``'s MLP (CPU, float)."""
    index = torch.tensor(list(neurons))
    out, name = [], mlp_hook(layer)
    found: dict[str, torch.Tensor] = {}

    def keep(act: torch.Tensor, hook: Any) -> torch.Tensor:
        found["act"] = act.detach()
        return act

    with torch.no_grad():
        for i in range(0, len(tokens), batch_size):
            model.run_with_hooks(tokens[i:i + batch_size].to(model_device(model)),
                                 fwd_hooks=[(name, keep)])
            out.append(found["act"][..., index.to(found["act"].device)].float().cpu())
    return torch.cat(out)


@dataclass
class ActivationDataset:
    """Documents with the frozen activations of chosen neurons, split by document.

    Attributes:
        tokens: ``(n_documents, pos)`` token ids.
        targets: ``(n_documents, pos, n_neurons)`` activations in the original model.
        document_ids: ``(n_documents,)`` each row's document id.
        train_ids, test_ids: document ids of each split (disjoint).
        layer: the MLP layer of the neurons.
        neurons: the neurons' indices.
        first_position: positions before it are not examples (1 skips ``<bos>``).
        seed: the seed that drew and split the documents.
        duplicates_dropped: documents removed because they repeated another.
    """

    tokens: torch.Tensor
    targets: torch.Tensor
    document_ids: torch.Tensor
    train_ids: torch.Tensor
    test_ids: torch.Tensor
    layer: int
    neurons: list[int]
    first_position: int
    seed: int
    duplicates_dropped: int = 0

    def _rows(self, split: str) -> torch.Tensor:
        if split not in ("train", "test"):
            raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
        ids = self.train_ids if split == "train" else self.test_ids
        return torch.nonzero(torch.isin(self.document_ids, ids)).squeeze(1)

    def split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tokens, targets)`` of the documents of one split, ``(docs, pos)`` and
        ``(docs, pos, n_neurons)``."""
        rows = self._rows(split)
        return self.tokens[rows], self.targets[rows]

    def flat_targets(self, split: str) -> torch.Tensor:
        """``(rows, n_neurons)`` targets of every example position of a split, in the order
        of :meth:`examples` (document-major)."""
        return self.split(split)[1][:, self.first_position:].reshape(-1, len(self.neurons))

    def examples(self, split: str) -> dict[str, torch.Tensor]:
        """One entry per example position: ``document``, ``position``, ``token`` (the
        current token) and ``target`` ``(rows, n_neurons)``; the tokens before a position are
        ``tokens[document, :position + 1]``."""
        rows = self._rows(split)
        tokens = self.tokens[rows][:, self.first_position:]
        n_docs, n_pos = tokens.shape
        positions = torch.arange(self.first_position, self.first_position + n_pos)
        return {"document": self.document_ids[rows].repeat_interleave(n_pos),
                "position": positions.repeat(n_docs), "token": tokens.reshape(-1),
                "target": self.flat_targets(split)}

    def summary(self) -> dict[str, Any]:
        """Sizes of the splits, for records."""
        per_doc = self.tokens.shape[1] - self.first_position
        return {"n_documents": len(self.tokens), "n_train_documents": len(self.train_ids),
                "n_test_documents": len(self.test_ids),
                "n_train_rows": len(self.train_ids) * per_doc,
                "n_test_rows": len(self.test_ids) * per_doc,
                "duplicates_dropped": self.duplicates_dropped}


class ActivationDatasetGenerator:
    """Draw documents, record the chosen neurons' activations, and split by document.

    Args:
        model: the model whose neurons are the targets (a ``TransformerBridge``).
        layer: the MLP layer.
        neurons: neuron indices within that layer.
        documents: a :data:`DocumentSource`.
        first_position: first position that is an example (1 skips ``<bos>``).

    Raises:
        ConfigError: the layer or a neuron is out of range, or no neuron is given.
    """

    def __init__(self, model: torch.nn.Module, layer: int, neurons: Sequence[int],
                 documents: DocumentSource, *, first_position: int = 1) -> None:
        n_layers, d_mlp = model.cfg.n_layers, model.cfg.d_mlp or 0
        if not 0 <= layer < n_layers:
            raise ConfigError(f"layer must lie in [0, {n_layers - 1}], got {layer}")
        if not neurons:
            raise ConfigError("neurons must name at least one neuron")
        bad = [n for n in neurons if not 0 <= int(n) < d_mlp]
        if bad:
            raise ConfigError(f"neurons {bad} are out of range: neurons must lie in "
                              f"[0, {d_mlp - 1}]")
        self.model, self.layer, self.neurons = model, layer, [int(n) for n in neurons]
        self.documents, self.first_position = documents, first_position

    def generate(self, n_documents: int, *, seed: int = 0,
                 test_fraction: float = 0.25) -> ActivationDataset:
        """Draw ``n_documents`` documents from ``seed`` and split them.

        Args:
            n_documents: documents to draw (duplicates are then dropped).
            seed: seeds both the documents and the split; the same seed gives the same data.
            test_fraction: share of documents held out.

        Raises:
            ConfigError: a bad size or fraction.
            DataError: too few distinct documents to fill both splits.
        """
        if not isinstance(n_documents, int) or n_documents < 4:
            raise ConfigError(f"n_documents must be an integer >= 4, got {n_documents!r}")
        if not 0 < test_fraction < 1:
            raise ConfigError(f"test_fraction must lie strictly between 0 and 1, got "
                              f"{test_fraction!r}")
        generator = torch.Generator().manual_seed(seed)
        if isinstance(self.documents, TextCorpus):
            return self._generate_split(n_documents, seed, test_fraction, generator)
        tokens = self.documents(n_documents, generator).long()
        # keep each distinct document once, in first-seen order
        _, inverse = torch.unique(tokens, dim=0, return_inverse=True)
        first = torch.full((int(inverse.max()) + 1,), len(tokens), dtype=torch.long)
        first.scatter_reduce_(0, inverse, torch.arange(len(tokens)), reduce="amin")
        keep = first.sort().values
        dropped = len(tokens) - len(keep)
        tokens = tokens[keep]
        n = len(tokens)
        n_test = max(1, round(n * test_fraction))
        if n - n_test < 1:
            raise DataError(f"only {n} distinct documents; draw more (n_documents)")
        document_ids = torch.arange(n)
        order = torch.randperm(n, generator=generator)
        test_ids, train_ids = order[:n_test].sort().values, order[n_test:].sort().values
        assert not set(test_ids.tolist()) & set(train_ids.tolist()), "train/test overlap"
        targets = neuron_targets(self.model, tokens, self.layer, self.neurons)
        return ActivationDataset(tokens, targets, document_ids, train_ids, test_ids, self.layer,
                                 self.neurons, self.first_position, seed, dropped)

    def _generate_split(self, n_documents: int, seed: int, test_fraction: float,
                        generator: torch.Generator) -> ActivationDataset:
        """Windows of a :class:`TextCorpus`, whose train and test documents were split before
        windowing; a test window equal to a training window is dropped."""
        corpus = self.documents
        assert isinstance(corpus, TextCorpus)
        n_test = max(1, round(n_documents * test_fraction))
        train = torch.unique(corpus.windows("train", n_documents - n_test, generator), dim=0)
        test = torch.unique(corpus.windows("test", n_test, generator), dim=0)
        clash = (test[:, None, :] == train[None, :, :]).all(-1).any(1)
        test = test[~clash]
        if len(train) < 1 or len(test) < 1:
            raise DataError("the corpus gives too few windows for both splits; add text or "
                            "lower n_ctx")
        tokens = torch.cat([train, test]).long()
        ids = torch.arange(len(tokens))
        targets = neuron_targets(self.model, tokens, self.layer, self.neurons)
        return ActivationDataset(tokens, targets, ids, ids[:len(train)], ids[len(train):],
                                 self.layer, self.neurons, self.first_position, seed,
                                 corpus.duplicates_dropped)
