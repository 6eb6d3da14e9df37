"""Behaviour benchmarks, before and after an intervention.

* :mod:`.toy`: toxicity, factual recall, fact-edit scores, pronoun bias and held-out loss of a
  toy-world model, against the ground truth planted in its training text.
* :mod:`.pretrained`: the same measurements on English prompts for GPT-2 and kin.
* :mod:`.suite`: one call for all of them (:func:`run_suite`), the before/after comparison of
  an intervention that is always rolled back (:func:`before_after`), a table and a figure.
* :mod:`.core`: the evaluation seed, batched next-token logits and the ROME/MEMIT edit scores.
"""

from mechinterp.benchmarks.core import EVAL_SEED, edit_scores, next_token_logits
from mechinterp.benchmarks.pretrained import (
    pretrained_before_after,
    pretrained_benchmark_corpus,
    pretrained_bias_gap,
    pretrained_edit_metrics,
    pretrained_factual_recall,
    pretrained_loss,
    pretrained_toxicity,
    run_pretrained_suite,
)
from mechinterp.benchmarks.suite import (
    HEADLINE,
    before_after,
    plot_before_after,
    results_table,
    run_suite,
    summary,
)
from mechinterp.benchmarks.toy import (
    bias_gap,
    capability,
    edit_metrics,
    factual_recall,
    toxicity_rate,
)

__all__ = [
    "EVAL_SEED",
    "HEADLINE",
    "before_after",
    "bias_gap",
    "capability",
    "edit_metrics",
    "edit_scores",
    "factual_recall",
    "next_token_logits",
    "plot_before_after",
    "pretrained_before_after",
    "pretrained_benchmark_corpus",
    "pretrained_bias_gap",
    "pretrained_edit_metrics",
    "pretrained_factual_recall",
    "pretrained_loss",
    "pretrained_toxicity",
    "results_table",
    "run_pretrained_suite",
    "run_suite",
    "summary",
    "toxicity_rate",
]
