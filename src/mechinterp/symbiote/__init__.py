"""SymbioteNet: a secondary network B that inhibits one chosen output of a primary network A
by modulating A's hidden activations, and what that reveals about A's circuitry.

* :mod:`.network`: the symbiote and its config.
* :mod:`.training`: training B against a frozen A (cached).
* :mod:`.metrics`: inhibition metrics, polysemanticity, stability.
* :mod:`.baselines`: logit masking, unit ablations (two choosers, four replacements) and
  gates trained on fixed units.
* :mod:`.circuit`: circuit maps, overlaps, causal checks and folding gates into weights.
* :mod:`.experiment`: one call that trains A and B for a condition and evaluates a digit.
"""

from mechinterp.symbiote.baselines import (
    ABLATIONS,
    UNIT_CHOOSERS,
    ablation_hooks,
    ablation_references,
    attribution_units,
    logit_mask_hooks,
    mean_ablation_hooks,
    selective_units,
    train_unit_gates,
)
from mechinterp.symbiote.circuit import (
    causal_check,
    circuit_map,
    fold_gates,
    overlap_matrix,
    weight_diff,
)
from mechinterp.symbiote.experiment import (
    CONDITIONS,
    TOUCH_TOLERANCE,
    ablation_budget_sweep,
    choose_ablation,
    compare_all_digits,
    compare_methods,
    evaluate_symbiote,
    gate_variation,
    inhibit_digit,
    primary_for,
    symbiote_for,
    symbiote_modulations,
    trained_gate_tables,
    units_touched,
)
from mechinterp.symbiote.metrics import (
    changed_units,
    class_means,
    class_sharing,
    evaluate_inhibition,
    jaccard,
    summarise,
    unit_class_count,
    unit_class_entropy,
)
from mechinterp.symbiote.network import (
    KINDS,
    NONE,
    ConditionalSymbiote,
    Symbiote,
    SymbioteConfig,
    build_symbiote,
)
from mechinterp.symbiote.training import TrainedSymbiote, train_symbiote

__all__ = [
    "ABLATIONS",
    "CONDITIONS",
    "TOUCH_TOLERANCE",
    "UNIT_CHOOSERS",
    "ablation_hooks",
    "ablation_references",
    "train_unit_gates",
    "trained_gate_tables",
    "units_touched",
    "ablation_budget_sweep",
    "choose_ablation",
    "NONE",
    "KINDS",
    "Symbiote",
    "ConditionalSymbiote",
    "build_symbiote",
    "gate_variation",
    "symbiote_modulations",
    "SymbioteConfig",
    "TrainedSymbiote",
    "attribution_units",
    "causal_check",
    "changed_units",
    "class_means",
    "class_sharing",
    "compare_all_digits",
    "compare_methods",
    "circuit_map",
    "evaluate_inhibition",
    "evaluate_symbiote",
    "fold_gates",
    "inhibit_digit",
    "jaccard",
    "logit_mask_hooks",
    "mean_ablation_hooks",
    "overlap_matrix",
    "primary_for",
    "selective_units",
    "summarise",
    "symbiote_for",
    "train_symbiote",
    "unit_class_count",
    "unit_class_entropy",
    "weight_diff",
]
