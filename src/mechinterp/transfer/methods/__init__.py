"""Every transfer method and baseline; importing this package registers them all.

One file per family; see each module's docstring.
"""

from mechinterp.transfer.methods import (  # noqa: F401
    aligned,
    baselines,
    direct_weight_copy,
    neuron_copy,
    procrustes_probe,
    sae_free,
    sae_injection,
)
