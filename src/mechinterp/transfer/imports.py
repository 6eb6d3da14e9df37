"""What an edited recipient carries from outside, counted from its modules.

Two transfer methods with the same transfer score are not equally good if one of them runs
the donor network inside the "edited" recipient. :func:`count_imports` walks the edited model
and counts, in tensor entries (parameters and buffers alike, since a fixed map is as much an
import as a trained one):

* ``params_added``: entries that belong neither to the recipient A (its edited copy) nor to
  the donor B: new maps, probes, dictionaries;
* ``params_changed``: entries of A's own tensors whose values differ from the original A (a
  model retrained from scratch in A's architecture counts as all of A changed);
* ``donor_params_executed``: entries of B that take part in the edited model's output: every
  tensor of B (or view of one, such as a single row) that the output's gradient reaches on a
  batch of images, counted whole, plus entries of A that were overwritten with exactly B's
  value at the same place (a copied row). B's layers below a stitch, which may run but whose
  output is replaced, do not count;
* ``donor_at_inference``: whether any of those entries belongs to a tensor of B itself (B,
  or part of it, runs inside the edited model).

Nothing is estimated: tensors are told apart by the storage they live in, and what takes
part in the output is read from one backward pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Imports", "count_imports"]


@dataclass(frozen=True)
class Imports:
    """The counts of :func:`count_imports` (see the module docstring)."""

    params_added: int
    params_changed: int
    donor_params_executed: int
    donor_at_inference: bool

    def as_dict(self) -> dict[str, Any]:
        """The four fields, as the CLI and the leaderboard report them."""
        return asdict(self)


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _own_tensors(module: nn.Module) -> list[torch.Tensor]:
    """Parameters, buffers and tensor attributes held by ``module`` itself (not children)."""
    out = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
    for value in vars(module).values():
        items = value if isinstance(value, (tuple, list)) else (value,)
        out += [v for v in items if isinstance(v, torch.Tensor)]
    return [t for t in out if t.numel()]


def _is_recipient_copy(module: nn.Module, original: nn.Module, donor: nn.Module) -> bool:
    if module is donor or type(module) is not type(original):
        return False
    ours, theirs = module.state_dict(), original.state_dict()
    return ours.keys() == theirs.keys() and all(
        ours[k].shape == theirs[k].shape for k in ours)


def _donor_dependence(edited: nn.Module, tensors: list[torch.Tensor], images: torch.Tensor
                      ) -> int:
    """Entries of the ``tensors`` that ``edited``'s output on ``images`` depends on: a tensor
    counts whole when the gradient reaches it and is not zero everywhere."""
    # a view taken while its base required grad is not a leaf: follow it to the base
    bases = {id(b): b for b in (t if t.is_leaf else t._base for t in tensors) if b is not None}
    leaves = [t for t in bases.values() if t.is_floating_point() and t.is_leaf]
    if not leaves:
        return 0
    flags = [t.requires_grad for t in leaves]
    was_training = edited.training
    edited.eval()
    try:
        for t in leaves:
            t.requires_grad_(True)
        with torch.enable_grad():
            out = edited(images)
            grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True)
    finally:
        for t, flag in zip(leaves, flags, strict=True):
            t.requires_grad_(flag)
        edited.train(was_training)
    return sum(t.numel() for t, g in zip(leaves, grads, strict=True)
               if g is not None and bool((g != 0).any()))


@torch.no_grad()
def count_imports(edited: nn.Module, original: nn.Module, donor: nn.Module,
                  images: torch.Tensor) -> Imports:
    """Count what ``edited`` imports (see the module docstring).

    Args:
        edited: the model a transfer method returned.
        original: the recipient A before the edit.
        donor: the donor B.
        images: a batch to run ``edited`` on, to see which of B's tensors its output
            depends on (a few dozen test images suffice).
    """
    donor_storages = {_storage(t) for t in [*donor.parameters(), *donor.buffers()] if t.numel()}
    copies = [m for m in edited.modules() if _is_recipient_copy(m, original, donor)]
    copy_storages = {_storage(t) for m in copies for t in [*m.parameters(), *m.buffers()]}
    changed = copied = 0
    seen_copies: set[int] = set()
    donor_state = donor.state_dict() if type(donor) is type(original) else {}
    original_state = original.state_dict()
    for m in copies:
        if id(m) in seen_copies:
            continue
        seen_copies.add(id(m))
        for name, value in m.state_dict().items():
            before = original_state[name]
            if _storage(value) == _storage(before):
                continue  # A's own tensor, untouched by construction
            diff = value != before
            changed += int(diff.sum())
            if name in donor_state and donor_state[name].shape == value.shape:
                copied += int((diff & (value == donor_state[name])).sum())

    added = 0
    donor_tensors: dict[int, torch.Tensor] = {}
    counted: set[int] = set()
    for m in edited.modules():
        for t in _own_tensors(m):
            key = _storage(t)
            if key in donor_storages:
                donor_tensors.setdefault(id(t), t)
            elif key not in counted and key not in copy_storages:
                counted.add(key)
                added += t.numel()
    executed = _donor_dependence(edited, list(donor_tensors.values()), images) \
        if donor_tensors else 0
    return Imports(params_added=added, params_changed=changed,
                   donor_params_executed=executed + copied, donor_at_inference=executed > 0)
