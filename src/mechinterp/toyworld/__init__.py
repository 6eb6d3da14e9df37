"""A toy world of token sequences with planted phenomena, and tiny transformers trained on it.

* :mod:`.vocab`: the word classes and a word-level tokenizer.
* :mod:`.tasks`: the training mixture and clean/corrupted prompt pairs per task.
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
from mechinterp.toyworld.tasks import TASKS, PromptSet, Task, get_task, sample_training_batch
from mechinterp.toyworld.vocab import WORD_CLASSES, WordTokenizer, default_tokenizer

__all__ = [
    "TASKS",
    "TOY_MODELS",
    "WORD_CLASSES",
    "PromptSet",
    "Task",
    "ToyModel",
    "ToyModelSpec",
    "WordTokenizer",
    "build_toy_model",
    "default_tokenizer",
    "get_task",
    "heldout_loss",
    "load_toy_model",
    "sample_training_batch",
]
