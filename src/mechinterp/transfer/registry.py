"""One registry for every transfer method and baseline, with one interface.

A method is a function ``method(ctx: TransferContext) -> nn.Module`` that returns the edited
recipient (a module mapping images to ten logits), registered with :func:`register`, which
records what it changes and which architecture pairs it can handle. Adding a method is one new
file in ``mechinterp/transfer/methods/`` with one decorated function.

``changes`` is one of:

* ``"weights"``: edits A's existing weights only (same shapes, no new modules);
* ``"module"``: adds a module to A (A's own weights untouched or edited, plus new computation);
* ``"gradient"``: takes gradient steps on A's weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from mechinterp.errors import ConfigError
from mechinterp.models import HookedMLP
from mechinterp.transfer.context import ModelPair, TransferContext, model_pair
from mechinterp.transfer.imports import count_imports
from mechinterp.transfer.protocol import TransferProtocol, transfer_metrics

__all__ = [
    "MethodSpec",
    "METHODS",
    "register",
    "get_method",
    "list_methods",
    "run_method",
    "apply_method",
    "ArchitectureMismatchError",
]

IMPORT_IMAGES = 32
"""Test images the import count runs the edited model on (one backward pass each)."""

CHANGES = ("weights", "module", "gradient")
KINDS = ("surgery", "sae-free", "baseline")
REQUIREMENTS = ("any", "same-architecture", "mlp-pair")


class ArchitectureMismatchError(ConfigError):
    """A method cannot handle the requested pair of architectures."""


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    Attributes:
        name: registry key.
        title: human-readable name.
        kind: ``surgery`` (the twelve weight-surgery methods), ``sae-free`` (the nine SAE-free
            injection methods) or ``baseline``.
        changes: what it changes in A (see the module docstring).
        requires: ``any``, ``same-architecture`` or ``mlp-pair`` (both models MLPs).
        fn: the implementation.
        summary: first line of the implementation's docstring.
        number: the method's number in its family (as the seed project numbers them).
        teaches_specificity: the method teaches the specificity digit as a second concept, so
            it is handed that digit's images, which every other method is refused.
    """

    name: str
    title: str
    kind: str
    changes: str
    requires: str
    fn: Callable[[TransferContext], nn.Module]
    summary: str
    number: int = 0
    teaches_specificity: bool = False

    def check_pair(self, recipient: nn.Module, donor: nn.Module) -> None:
        """Raise :class:`ArchitectureMismatchError` saying why a pair is not supported."""
        arch_a, arch_b = getattr(recipient, "arch", "?"), getattr(donor, "arch", "?")
        if self.requires == "same-architecture" and arch_a != arch_b:
            raise ArchitectureMismatchError(
                f"method {self.name!r} copies weights position by position, so it needs the same "
                f"architecture on both sides; got recipient {arch_a!r} and donor {arch_b!r}"
            )
        if self.requires == "mlp-pair" and not (isinstance(recipient, HookedMLP)
                                                 and isinstance(donor, HookedMLP)):
            raise ArchitectureMismatchError(
                f"method {self.name!r} works on fully connected layers only; got recipient "
                f"{arch_a!r} and donor {arch_b!r} (ConvNet/CNN models are not supported)"
            )


METHODS: dict[str, MethodSpec] = {}


def register(name: str, *, title: str, kind: str, changes: str, requires: str = "any",
             number: int = 0, teaches_specificity: bool = False):
    """Decorator adding a method to :data:`METHODS`."""
    if changes not in CHANGES:
        raise ValueError(f"changes must be one of {CHANGES}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if requires not in REQUIREMENTS:
        raise ValueError(f"requires must be one of {REQUIREMENTS}")

    def wrap(fn: Callable[[TransferContext], nn.Module]):
        if name in METHODS:
            raise ValueError(f"method {name!r} registered twice")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        METHODS[name] = MethodSpec(name, title, kind, changes, requires, fn, summary, number,
                                   teaches_specificity)
        return fn

    return wrap


def _load_all() -> None:
    from mechinterp.transfer import methods  # noqa: F401  (registers every method)


def list_methods(kind: str | None = None) -> list[str]:
    """Registered method names (optionally of one kind), in registration order."""
    _load_all()
    ordered = sorted(METHODS.values(), key=lambda s: (KINDS.index(s.kind), s.number, s.name))
    return [s.name for s in ordered if kind is None or s.kind == kind]


def get_method(name: str) -> MethodSpec:
    """Look a method up by name.

    Raises:
        ConfigError: unknown name (the message lists the valid ones).
    """
    _load_all()
    if name not in METHODS:
        raise ConfigError(f"unknown transfer method {name!r}; choose one of {list(METHODS)}")
    return METHODS[name]


def apply_method(name: str, pair: ModelPair, concept_budget: int | None = None
                 ) -> tuple[nn.Module, TransferContext]:
    """Apply a method to a pair and return the edited recipient and the context it used."""
    spec = get_method(name)
    spec.check_pair(pair.recipient.model, pair.donor.model)
    ctx = TransferContext(pair, concept_budget=concept_budget, seed=pair.seed,
                          teaches_specificity=spec.teaches_specificity)
    return spec.fn(ctx).eval(), ctx


def run_method(
    name: str,
    recipient_arch: str = "megann",
    donor_arch: str = "megann",
    protocol: TransferProtocol | None = None,
    *,
    seed: int = 0,
    source: str | None = None,
    concept_budget: int | None = None,
    pair: ModelPair | None = None,
) -> dict[str, Any]:
    """Run one method on one model pair and measure it.

    Returns:
        ``method``, the four metrics of :func:`transfer_metrics`, ``concept_images_used``,
        what the edited model imports (:func:`~mechinterp.transfer.imports.count_imports`:
        ``params_added``, ``params_changed``, ``donor_params_executed``,
        ``donor_at_inference``), the four metrics on the validation split (``validation``,
        where methods are compared), ``changes``, the architectures, the seed, and the unedited recipient's and donor's
        scores (``baseline_preservation``, on validation
        ``baseline_validation_preservation``, ``donor_transfer``).
    """
    spec = get_method(name)
    if pair is None:
        from mechinterp.models import build_model

        # refuse an unsupported pair before spending time on training
        spec.check_pair(build_model(recipient_arch), build_model(donor_arch))
        pair = model_pair(recipient_arch, donor_arch, protocol, seed=seed, source=source)
    started = time.perf_counter()
    edited, ctx = apply_method(name, pair, concept_budget)
    seconds = time.perf_counter() - started
    metrics = transfer_metrics(edited, pair.data, pair.protocol)
    validation = transfer_metrics(edited, pair.data, pair.protocol, split="validation")
    imports = count_imports(edited, ctx.original, ctx.donor,
                            pair.data.test_images[:IMPORT_IMAGES])
    before = transfer_metrics(pair.recipient.model, pair.data, pair.protocol)
    before_validation = transfer_metrics(pair.recipient.model, pair.data, pair.protocol,
                                         split="validation")
    donor = transfer_metrics(pair.donor.model, pair.data, pair.protocol)
    return {
        "method": name,
        **metrics,
        "concept_images_used": ctx.concept_images_used,
        **imports.as_dict(),
        "validation": validation,
        "changes": spec.changes,
        "kind": spec.kind,
        "teaches_specificity": spec.teaches_specificity,
        "recipient_arch": pair.recipient.arch,
        "donor_arch": pair.donor.arch,
        "seed": pair.seed,
        "concept": pair.protocol.concept,
        "baseline_preservation": before["preservation"],
        "baseline_validation_preservation": before_validation["preservation"],
        "donor_transfer": donor["transfer"],
        "seconds": seconds,
    }
