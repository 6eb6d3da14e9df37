"""Benchmark transformers whose circuits are known by construction (SIIT).

Strict interchange-intervention training (InterpBench, Gupta et al., 2024) trains a chosen set
of components to implement the nodes of a high-level causal model and every other component to
have no effect on the task; the circuit is then checked causally on held-out inputs and used
as the ground truth for scoring discovery methods.

* :mod:`.causal`: high-level causal models and interchange interventions on them.
* :mod:`.tasks`: the three tasks (induction, IOI-style, a two-bin histogram) and their inputs.
* :mod:`.model`: several transformers of one shape run as one, with per-row component patches.
* :mod:`.training`: SIIT training, alignments and the model cache.
* :mod:`.distractors`: jobs that keep the components outside the circuit busy.
* :mod:`.verify`: interchange accuracy, non-circuit resampling and node effects on the bridge.
"""

from mechinterp.siit.causal import CausalModel, CausalNode
from mechinterp.siit.model import SIITArch, StackedTransformer, component_names
from mechinterp.siit.tasks import SIIT_TASKS, SIITTask, get_siit_task, siit_tokenizer
from mechinterp.siit.training import (
    BENCHMARK_VERSION,
    BUSY,
    CONTROL,
    MIN_VERIFIED,
    SIIT_SEEDS,
    TASK_CONFIGS,
    SIITConfig,
    SIITModel,
    busy_attempt,
    draw_alignment,
    load_siit_models,
    ship_models,
    strictness_control,
    task_config,
    train_siit,
)
from mechinterp.siit.verify import (
    IIA_MIN,
    NODE_EFFECT_MIN,
    RETAINED_MIN,
    Verification,
    patched_logits,
    verify,
)

__all__ = [
    "BENCHMARK_VERSION",
    "BUSY",
    "CONTROL",
    "IIA_MIN",
    "MIN_VERIFIED",
    "NODE_EFFECT_MIN",
    "RETAINED_MIN",
    "SIIT_SEEDS",
    "SIIT_TASKS",
    "TASK_CONFIGS",
    "CausalModel",
    "CausalNode",
    "SIITArch",
    "SIITConfig",
    "SIITModel",
    "SIITTask",
    "StackedTransformer",
    "Verification",
    "busy_attempt",
    "component_names",
    "draw_alignment",
    "get_siit_task",
    "load_siit_models",
    "patched_logits",
    "ship_models",
    "siit_tokenizer",
    "strictness_control",
    "task_config",
    "train_siit",
    "verify",
]
