"""A toy world of token sequences with planted phenomena, and tiny transformers trained on it.

* :mod:`.vocab`: the word classes and a word-level tokenizer.
* :mod:`.tasks`: the training mixture, its content split (``train`` / ``tune`` / ``eval``
  frame-filler cells) and clean/corrupted prompt pairs per task.
* :mod:`.models`: ``TransformerBridge`` models trained on it, cached.
"""

from mechinterp.toyworld.models import (
    TOY_MODELS,
    ToyModel,
    ToyModelSpec,
    build_toy_model,
    heldout_loss,
    load_toy_model,
)
from mechinterp.toyworld.tasks import (
    SPLITS,
    TASKS,
    PromptSet,
    Task,
    bias_prompts,
    content_split,
    fact_prompts,
    get_task,
    sample_training_batch,
    toxicity_contexts,
)
from mechinterp.toyworld.vocab import WORD_CLASSES, WordTokenizer, default_tokenizer

__all__ = [
    "SPLITS",
    "TASKS",
    "TOY_MODELS",
    "WORD_CLASSES",
    "PromptSet",
    "Task",
    "ToyModel",
    "ToyModelSpec",
    "WordTokenizer",
    "bias_prompts",
    "build_toy_model",
    "content_split",
    "default_tokenizer",
    "fact_prompts",
    "get_task",
    "heldout_loss",
    "load_toy_model",
    "sample_training_batch",
    "toxicity_contexts",
]
