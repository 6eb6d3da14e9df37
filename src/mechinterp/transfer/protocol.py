"""The concept-transfer protocol: who knows which digits, what counts as success, what a
method may touch.

A *recipient* A is trained on some digits (default 0-3) and a *donor* B on others (default
2-5); both have ten-way output layers. A method must make A recognise the *concept* digit
(default 4) that only B knows, without breaking A on its own digits and without turning a
*specificity* digit (default 5, known to B but not to A) into the concept. Everything is
measured on the test split, which no method ever sees. Two splits are carved from the
training images before A and B are trained, and neither model is trained on them: the
validation split (:func:`validation_indices`), which no method sees, where choices between
methods are made; and the calibration split (:func:`calibration_indices`), whose non-concept
images are the calibration negatives every threshold is set on.

Metrics:

* ``transfer``: share of concept-digit test images the edited A calls the concept;
* ``preservation``: accuracy of the edited A on the test images of the recipient's digits;
* ``specificity``: share of specificity-digit test images called the concept (lower is better);
* ``false_positive_rate``: share of all non-concept test images called the concept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from mechinterp.data import DigitData, parse_classes
from mechinterp.errors import ConfigError
from mechinterp.train import predict

__all__ = ["TransferProtocol", "transfer_metrics", "validation_indices", "calibration_indices",
           "fit_split", "VALIDATION_SHARE", "CALIBRATION_SHARE", "FALSE_POSITIVE_CAP", "GATES",
           "VARIANTS", "SEED_RESULTS"]


@dataclass(frozen=True)
class TransferProtocol:
    """Which digits each model knows and which digit is moved. Validated at construction.

    Attributes:
        concept: the digit to transfer (known to the donor only).
        recipient_digits: the digits A is trained on.
        donor_digits: the digits B is trained on (must include the concept).
        specificity_digit: a digit unknown to A that it must not start calling the concept.
            No method or baseline sees its training images (fitting or calibration), unless
            it is registered as teaching that digit, and then its row says so.
        gate: how a detector's score meets A's own answer before the one calibration rule
            thresholds it (:data:`GATES`): ``"closed-set"`` takes the score as it is;
            ``"open-set"`` subtracts A's evidence for its own best digit,
            ``score - relu(max_{d in recipient digits} logit_A(d))``, so an image A already
            recognises needs more evidence before the concept can take it. The default was
            chosen on the validation split by the rule on the protocol page.
    """

    concept: int = 4
    recipient_digits: tuple[int, ...] = (0, 1, 2, 3)
    donor_digits: tuple[int, ...] = (2, 3, 4, 5)
    specificity_digit: int = 5
    gate: str = "open-set"

    def __post_init__(self) -> None:
        if self.gate not in GATES:
            raise ConfigError(f"gate must be one of {list(GATES)}, got {self.gate!r}")
        recipient = parse_classes(self.recipient_digits)
        donor = parse_classes(self.donor_digits)
        object.__setattr__(self, "recipient_digits", recipient)
        object.__setattr__(self, "donor_digits", donor)
        if self.concept in recipient:
            raise ConfigError(
                f"the concept digit {self.concept} must be new to the recipient, but the "
                f"recipient digits {list(recipient)} include it"
            )
        if self.concept not in donor:
            raise ConfigError(
                f"the donor must know the concept digit {self.concept}; donor digits are "
                f"{list(donor)}"
            )
        if self.specificity_digit == self.concept or self.specificity_digit in recipient:
            raise ConfigError(
                f"the specificity digit {self.specificity_digit} must differ from the concept "
                f"and be unknown to the recipient (recipient digits {list(recipient)})"
            )
        if not set(recipient) & set(donor):
            raise ConfigError(
                "recipient and donor share no digit, so their representations cannot be "
                f"aligned: recipient {list(recipient)}, donor {list(donor)}"
            )

    @property
    def shared_digits(self) -> tuple[int, ...]:
        """Digits both models know (the anchors for aligning their representations)."""
        return tuple(sorted(set(self.recipient_digits) & set(self.donor_digits)))

    def as_dict(self) -> dict:
        """Plain dict, for cache keys and records."""
        return asdict(self)

    def check_data(self, data: DigitData) -> None:
        """Raise if the data lacks a digit the protocol needs."""
        needed = set(self.recipient_digits) | set(self.donor_digits) | {self.specificity_digit}
        missing = sorted(needed - set(data.classes))
        if missing:
            raise ConfigError(
                f"the protocol needs digits {sorted(needed)} but data source {data.source!r} "
                f"lacks {missing}"
            )


GATES = ("closed-set", "open-set")
"""The two ways a detector's score may meet A's own answer (see :class:`TransferProtocol`)."""

FALSE_POSITIVE_CAP = 0.005
"""The one calibration rule: every threshold lets through at most this share of the
calibration negatives (half a point, the preservation loss the protocol allows)."""

VALIDATION_SHARE = 0.1
"""Share of the training split carved out as the validation split."""
CALIBRATION_SHARE = 0.2
"""Share of the training split carved out as the calibration split."""


def _carves(data: DigitData) -> tuple[torch.Tensor, torch.Tensor]:
    """``(validation, calibration)`` training-split indices: consecutive slices of one fixed
    permutation, on the labels' device."""
    order = torch.randperm(data.n_train, generator=torch.Generator().manual_seed(2024))
    order = order.to(data.train_labels.device)
    n_val = round(VALIDATION_SHARE * data.n_train)
    return order[:n_val], order[n_val:n_val + round(CALIBRATION_SHARE * data.n_train)]


def validation_indices(data: DigitData) -> torch.Tensor:
    """Training-split indices of the validation split: a fixed draw of
    :data:`VALIDATION_SHARE` of them, the same for every seed and method. A and B are not
    trained on them and no method is handed them; the best method is chosen on them, never on
    the test split."""
    return _carves(data)[0]


def calibration_indices(data: DigitData) -> torch.Tensor:
    """Training-split indices of the calibration split (the next :data:`CALIBRATION_SHARE`
    of the same draw). A and B are not trained on them either, so a threshold set on them
    meets the models' errors as the test split will; methods receive only their
    non-concept images, as calibration negatives."""
    return _carves(data)[1]


def fit_split(data: DigitData) -> DigitData:
    """The data A and B are trained on: the training split less the validation and calibration
    carves (its source is renamed, so its checkpoints are kept apart)."""
    keep = torch.ones(data.n_train, dtype=torch.bool, device=data.train_labels.device)
    for carve in _carves(data):
        keep[carve] = False
    return DigitData(source=f"{data.source}|transfer-fit", classes=data.classes,
                     train_images=data.train_images[keep], train_labels=data.train_labels[keep],
                     test_images=data.test_images, test_labels=data.test_labels)


@torch.no_grad()
def transfer_metrics(model: nn.Module, data: DigitData, protocol: TransferProtocol,
                     split: str = "test") -> dict[str, float]:
    """The protocol's four metrics for an (edited) recipient on the test split, or on the
    validation split carved from the training images (``split="validation"``)."""
    model.eval()
    if split == "test":
        images, labels = data.test_images, data.test_labels
    elif split == "validation":
        idx = validation_indices(data)
        images, labels = data.train_images[idx], data.train_labels[idx]
    else:
        raise ConfigError(f"split must be 'test' or 'validation', got {split!r}")
    preds = predict(model, images)
    concept = protocol.concept
    is_concept = labels == concept
    own = torch.isin(labels, torch.tensor(protocol.recipient_digits, device=labels.device))
    spec = labels == protocol.specificity_digit
    return {
        "transfer": (preds[is_concept] == concept).float().mean().item(),
        "preservation": (preds[own] == labels[own]).float().mean().item(),
        "specificity": (preds[spec] == concept).float().mean().item(),
        "false_positive_rate": (preds[~is_concept] == concept).float().mean().item(),
    }


SEED_RESULTS: dict[str, dict[str, float | str]] = {
    # Headline numbers reported by the seed project for its own (unspecified) splits and
    # models; shown next to ours for comparison, never used in a computation.
    "direct_weight_copy": {"transfer": 0.0, "preservation": 0.99, "pair": "same"},
    "procrustes_probe": {"transfer": 0.19, "preservation": 0.95, "pair": "same",
                         "note": "0-19% transfer, 95-99% preservation"},
    "importance_neuron_copy": {"transfer": 0.02, "preservation": 0.95, "pair": "same",
                               "note": "0-2% transfer"},
    "gradual_blending": {"transfer": 0.13, "preservation": 0.85, "pair": "same",
                         "note": "0-13% transfer, 85-98% preservation"},
    "pathway_transplant": {"transfer": 0.03, "preservation": 0.94, "pair": "same",
                           "note": "2-3% transfer"},
    "activation_selection": {"transfer": 0.25, "preservation": 0.98, "pair": "same"},
    "cascade_transplant": {"transfer": 0.5193, "preservation": 0.9411, "specificity": 0.0,
                           "pair": "same"},
    "sae_concept_injection": {"transfer": 1.0, "preservation": 0.0, "pair": "cross"},
    "preserved_concept_injection": {"transfer": 0.002, "preservation": 0.994, "pair": "cross"},
    "vector_space_aligned": {"transfer": 0.496, "preservation": 0.97, "pair": "same"},
    "cross_arch_vector": {"transfer": 0.282, "preservation": 0.99, "pair": "cross",
                          "note": "similar architectures; 0% for very different ones"},
    "aligned_spatial": {"transfer": 0.874, "preservation": 0.972, "specificity": 0.0,
                        "pair": "cross"},
    "precomputed_vector_alignment": {"transfer": 0.561, "preservation": 0.982,
                                     "specificity": 0.049, "pair": "same"},
    "cross_architecture_alignment": {"transfer": 0.422, "preservation": 0.987,
                                     "specificity": 0.051, "pair": "cross"},
}


VARIANTS: dict[str, TransferProtocol] = {
    # the default: the seed project's setting
    "concept 4, A 0-3, B 2-5": TransferProtocol(),
    # the other concept the default digit sets allow
    "concept 5, A 0-3, B 2-5": TransferProtocol(concept=5, specificity_digit=4),
    # other digit sets altogether
    "concept 8, A 4-7, B 6-9": TransferProtocol(concept=8, recipient_digits=(4, 5, 6, 7),
                                                donor_digits=(6, 7, 8, 9),
                                                specificity_digit=9),
}
"""Protocol variants the variants page runs, fixed before any run."""
