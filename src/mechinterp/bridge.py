"""Copying a TransformerLens ``TransformerBridge`` safely: :func:`copy_bridge`.

Methods that fine-tune a model (the self-report predictors, a cross-prediction model) work on
a copy so the original stays as it was. ``copy.deepcopy`` is not enough for a bridge in
TransformerLens 4.x: each block wires a few forward hooks of its own on first use (to capture
the attention's pre-norm input and to fire ``hook_mlp_in``), and those hooks are closures over
weak proxies of *that* block. A deep copy keeps the closures, so the copy's blocks keep
writing into, and firing hooks of, the original: a hook added to the copy's
``blocks.1.hook_mlp_in`` never runs, and a tensor with the copy's autograd graph is left on
the original's attention, after which the original can no longer be deep-copied at all
(``RuntimeError: Only Tensors created explicitly by the user ... support the deepcopy
protocol``). :func:`copy_bridge` clears the transient capture, copies, and removes the copied
capture hooks so that each block of the copy wires its own on its first forward pass.
"""

from __future__ import annotations

import copy
from typing import TypeVar

from torch import nn

__all__ = ["copy_bridge"]

M = TypeVar("M", bound=nn.Module)


def copy_bridge(model: M) -> M:
    """A deep copy of ``model`` whose hooks belong to the copy (any module; a
    ``TransformerBridge`` gets the repair described in the module docstring).

    Args:
        model: the model to copy; it is not changed, except that a residual captured by its
            last forward pass (transient state, reset at every pass) is released.
    """
    for module in model.modules():
        if getattr(module, "_captured_pre_ln_residual", None) is not None:
            module._captured_pre_ln_residual = None
    twin = copy.deepcopy(model)
    for module in twin.modules():
        # the copied handles point at the copy's hook dicts, so this removes the copied
        # closures (which still refer to the original block) and leaves the original alone
        if getattr(module, "_capture_hooks_wired", False):
            module._teardown_capture_hooks()
    return twin
