"""Concept transfer: moving a digit that only a donor model knows into a recipient model.

* :mod:`.protocol`: which digits each model knows, and the four metrics.
* :mod:`.context`: cached model pairs and the data door a method goes through.
* :mod:`.registry`: the method registry, one interface, :func:`run_method`.
* :mod:`.common`: alignment maps, probes, calibration and wrapper modules.
* :mod:`.methods`: one module per method family.
* :mod:`.leaderboard`: every method over architecture pairs and seeds.
* :mod:`.report`: tables and figures for the transfer tutorials.
"""

from mechinterp.transfer.context import ModelPair, TransferContext, model_pair
from mechinterp.transfer.protocol import SEED_RESULTS, TransferProtocol, transfer_metrics
from mechinterp.transfer.registry import (
    METHODS,
    ArchitectureMismatchError,
    MethodSpec,
    apply_method,
    get_method,
    list_methods,
    register,
    run_method,
)

__all__ = [
    "METHODS",
    "SEED_RESULTS",
    "ArchitectureMismatchError",
    "MethodSpec",
    "ModelPair",
    "TransferContext",
    "TransferProtocol",
    "apply_method",
    "get_method",
    "list_methods",
    "model_pair",
    "register",
    "run_method",
    "transfer_metrics",
]
