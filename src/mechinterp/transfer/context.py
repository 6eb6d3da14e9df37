"""Model pairs and the data a transfer method may see.

:func:`model_pair` trains (or loads from the cache) the recipient A on the protocol's recipient
digits and the donor B on its donor digits. A method never receives the pair itself: it gets a
:class:`TransferContext`, which holds an editable copy of A, the frozen B, and two doors to
data, both on the *training* split:

* :meth:`TransferContext.own_data`: A's own training images (the recipient's digits);
* :meth:`TransferContext.donor_data`: images of digits the donor knows. Concept-digit images
  are handed out up to the context's ``concept_budget`` and every one handed out is counted, so
  the leaderboard can say how many each method consumed;
* :meth:`TransferContext.calibration_negatives`: the one set of images every threshold is
  calibrated on.

The specificity digit is held out from every method: neither door hands out its images (a
method registered as teaching that digit is the one exception, and its row says so), so the
specificity score measures what an edit does to a digit nobody fitted on, for surgery, the
SAE-free family and the gradient baselines alike.

The test split and the validation split carved from the training images stay behind the
context; only :func:`mechinterp.transfer.protocol.transfer_metrics` reads them, after the
method has finished. The calibration split reaches a method only as calibration negatives.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from mechinterp.data import DigitData, load_digits, parse_classes
from mechinterp.errors import ConfigError
from mechinterp.models import HookedClassifier
from mechinterp.train import TrainConfig, TrainedClassifier, train_classifier
from mechinterp.transfer.protocol import (
    TransferProtocol,
    calibration_indices,
    fit_split,
    validation_indices,
)

__all__ = ["ModelPair", "model_pair", "TransferContext"]


@dataclass
class ModelPair:
    """A trained recipient and donor on the same data, under one protocol."""

    recipient: TrainedClassifier
    donor: TrainedClassifier
    data: DigitData
    protocol: TransferProtocol
    seed: int


def model_pair(
    recipient_arch: str,
    donor_arch: str,
    protocol: TransferProtocol | None = None,
    *,
    seed: int = 0,
    data: DigitData | None = None,
    source: str | None = None,
    config: TrainConfig | None = None,
) -> ModelPair:
    """Train or load A (recipient digits) and B (donor digits), both with ten-way heads, on
    the training split less the validation and calibration carves
    (:func:`~mechinterp.transfer.protocol.fit_split`)."""
    protocol = protocol or TransferProtocol()
    data = data or load_digits(source)
    protocol.check_data(data)
    fit = fit_split(data)
    recipient = train_classifier(recipient_arch, protocol.recipient_digits, seed=seed, data=fit,
                                 config=config)
    donor = train_classifier(donor_arch, protocol.donor_digits, seed=seed, data=fit,
                             config=config)
    return ModelPair(recipient, donor, data, protocol, seed)


class TransferContext:
    """What a transfer method may touch.

    Args:
        pair: the trained models and data.
        concept_budget: most concept-digit images the method may receive (``None``: all the
            training split holds).
        seed: orders the images handed out, so a budget of 10 means the same 10 images for
            every method.
        teaches_specificity: the method teaches the specificity digit as a second concept, so
            it may receive that digit's images (every other method is refused them).

    Attributes:
        recipient: an editable deep copy of A (the pair's A is never modified).
        donor: B, frozen and in eval mode.
        protocol: the digits involved.
    """

    def __init__(self, pair: ModelPair, concept_budget: int | None = None, seed: int = 0, *,
                 teaches_specificity: bool = False) -> None:
        if concept_budget is not None and concept_budget < 0:
            raise ConfigError(f"concept_budget must be >= 0 or None, got {concept_budget}")
        self.recipient: HookedClassifier = copy.deepcopy(pair.recipient.model).eval()
        self.donor: HookedClassifier = pair.donor.model.eval()
        for param in self.donor.parameters():
            param.requires_grad_(False)
        self.original: HookedClassifier = pair.recipient.model.eval()
        self.protocol = pair.protocol
        self.concept_budget = concept_budget
        self.seed = seed
        self.teaches_specificity = teaches_specificity
        self.device = pair.data.device
        self._data = pair.data
        self._concept_seen: set[int] = set()
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(pair.data.n_train, generator=generator).to(self.device)
        held_out = torch.zeros(pair.data.n_train, dtype=torch.bool, device=self.device)
        self._calibration = calibration_indices(pair.data)
        held_out[validation_indices(pair.data)] = True
        held_out[self._calibration] = True
        self._order = order[~held_out[order]]  # neither carve is handed out as data

    @property
    def concept_images_used(self) -> int:
        """Distinct concept-digit images handed out so far."""
        return len(self._concept_seen)

    def own_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A's own training images and labels (the recipient's digits)."""
        return self._select(self.protocol.recipient_digits, None)

    def donor_data(
        self, digits: str | tuple[int, ...] | list[int] | None = None, per_class: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training images of donor-known digits (default: all of them).

        Concept images are capped by the budget and counted.

        Raises:
            ConfigError: a requested digit is not known to the donor, or is the held-out
                specificity digit.
        """
        spec = self.protocol.specificity_digit
        wanted = self.donor_digits_handed_out if digits is None else parse_classes(digits)
        if spec in wanted and not self.teaches_specificity:
            raise ConfigError(
                f"digit {spec} is the specificity digit, held out from every method so that "
                "specificity measures a digit nobody fitted on; register the method with "
                "teaches_specificity=True if it teaches that digit"
            )
        unknown = [d for d in wanted if d not in self.protocol.donor_digits]
        if unknown:
            raise ConfigError(
                f"digits {unknown} are not known to the donor (donor digits "
                f"{list(self.protocol.donor_digits)}); a method may only ask for those"
            )
        return self._select(wanted, per_class)

    @property
    def donor_digits_handed_out(self) -> tuple[int, ...]:
        """The donor digits :meth:`donor_data` may hand out: all of them but the specificity
        digit, unless the method teaches it."""
        spec = self.protocol.specificity_digit
        return tuple(d for d in self.protocol.donor_digits
                     if d != spec or self.teaches_specificity)

    def calibration_negatives(self, concepts: tuple[int, ...] | None = None) -> torch.Tensor:
        """The one set of calibration negatives: the calibration split's images of every digit
        A or B knows except ``concepts`` (default: the protocol's concept) and the specificity
        digit (images neither model was trained on, so a threshold set on them holds on
        the test split)."""
        concepts = (self.protocol.concept,) if concepts is None else tuple(concepts)
        known = set(self.protocol.recipient_digits) | set(self.protocol.donor_digits)
        digits = sorted(known - set(concepts) - {self.protocol.specificity_digit})
        labels = self._data.train_labels[self._calibration]
        wanted = torch.isin(labels, torch.tensor(digits, device=labels.device))
        return self._data.train_images[self._calibration[wanted]]

    def _select(self, digits: tuple[int, ...], per_class: int | None):
        labels = self._data.train_labels[self._order]
        picked = []
        for digit in digits:
            idx = self._order[labels == digit]
            limit = per_class
            if digit == self.protocol.concept and self.concept_budget is not None:
                limit = self.concept_budget if limit is None else min(limit, self.concept_budget)
            if limit is not None:
                idx = idx[:limit]
            if digit == self.protocol.concept:
                self._concept_seen.update(idx.tolist())
            picked.append(idx)
        idx = torch.cat(picked) if picked else torch.zeros(0, dtype=torch.long)
        return self._data.train_images[idx], self._data.train_labels[idx]
