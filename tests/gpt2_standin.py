"""A local stand-in for GPT-2, for testing the pretrained-model paths offline: a GPT-2-style
byte-level BPE tokenizer trained on the prompts' own words and a tiny GPT-2 with random
weights, saved to a folder exactly as a downloaded model would be."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

EOT = "<|endoftext|>"


def train_tokenizer(texts: list[str], vocab_size: int = 5000) -> PreTrainedTokenizerFast:
    """A GPT-2-style tokenizer (byte-level pre-tokenizer and BPE) trained on ``texts``."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=EOT, eos_token=EOT,
                                   unk_token=EOT)


def save_standin(folder: Path, texts: list[str], seed: int = 0, *, n_head: int = 4,
                 n_embd: int = 64, n_positions: int = 64, vocab_size: int = 5000
                 ) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    """Save a 2-layer GPT-2 with random weights and a tokenizer trained on ``texts`` into
    ``folder``; returns both."""
    torch.manual_seed(seed)
    tokenizer = train_tokenizer(texts, vocab_size)
    config = GPT2Config(n_layer=2, n_head=n_head, n_embd=n_embd, n_positions=n_positions,
                        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, initializer_range=0.1)
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer
