"""Counting what an edited recipient imports, on hand-built edits whose counts are known."""

import copy

import torch

from mechinterp.models import build_model
from mechinterp.transfer.common import Affine, ConceptLogit, penultimate_hook
from mechinterp.transfer.imports import count_imports
from mechinterp.transfer.methods.aligned import DonorScore

IMAGES = torch.rand(8, 1, 28, 28)


def _pair():
    torch.manual_seed(0)
    original, donor = build_model("simplenn").eval(), build_model("simplenn").eval()
    donor.requires_grad_(False)  # as a transfer context holds it
    return original, donor, copy.deepcopy(original)


def _numel(module) -> int:
    return sum(p.numel() for p in module.parameters()) + sum(b.numel() for b in module.buffers())


def test_an_untouched_copy_imports_nothing():
    original, donor, recipient = _pair()
    counts = count_imports(recipient, original, donor, IMAGES)
    assert counts.as_dict() == {"params_added": 0, "params_changed": 0,
                                "donor_params_executed": 0, "donor_at_inference": False}


def test_a_copied_row_is_changed_and_counted_as_donor():
    original, donor, recipient = _pair()
    head = [n for n, _ in recipient.named_parameters() if n.endswith("weight")][-1]
    with torch.no_grad():
        dict(recipient.named_parameters())[head][4] = dict(donor.named_parameters())[head][4]
        dict(recipient.named_parameters())[head][5, :3] += 1.0  # changed, not from B
    counts = count_imports(recipient, original, donor, IMAGES)
    width = dict(original.named_parameters())[head].shape[1]
    assert counts.params_changed == width + 3
    assert counts.donor_params_executed == width and counts.params_added == 0
    assert not counts.donor_at_inference


def test_a_donor_score_counts_the_donor_above_the_stitch():
    """B's layers above the stitch count (as far as the output depends on them); B's layers
    below it run, but their output is replaced, so they do not."""
    original, donor, recipient = _pair()
    for hook, above in (("fc2.hook_post", [donor.output_layer]),
                        ("fc1.hook_post", [donor.fc2, donor.output_layer])):
        d = recipient.unit_counts()[hook]
        mapper = Affine(torch.eye(d), torch.zeros(d))
        scorer = DonorScore(recipient, hook, donor, hook, mapper, 4, (4, 5, 6))
        counts = count_imports(ConceptLogit(recipient, 4, scorer, threshold=0.0), original,
                               donor, IMAGES)
        assert counts.params_added == d * d + d  # the map's weight and bias (buffers count)
        assert counts.params_changed == 0 and counts.donor_at_inference
        # exactly the layers above the stitch: the ones below run, but their output is replaced
        assert counts.donor_params_executed == sum(_numel(m) for m in above)


def test_a_view_of_one_donor_row_counts_only_that_row():
    original, donor, recipient = _pair()
    head_w = [p for n, p in donor.named_parameters() if n.endswith("weight")][-1]

    class RowReader(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.recipient = recipient
            self.register_buffer("row", head_w[4])  # a view: B's own storage
            self.stitch = torch.nn.Linear(32, 32)

        def forward(self, x):
            _, cache = self.recipient.run_with_cache(x, names_filter=penultimate_hook(recipient))
            return self.stitch(cache[penultimate_hook(recipient)]) @ self.row

    counts = count_imports(RowReader(), original, donor, IMAGES)
    assert counts.donor_params_executed == head_w.shape[1]
    assert counts.params_added == _numel(torch.nn.Linear(32, 32))
    assert counts.donor_at_inference


def test_a_retrained_model_changes_all_of_a():
    original, donor, _ = _pair()
    torch.manual_seed(1)
    fresh = build_model("simplenn").eval()
    counts = count_imports(fresh, original, donor, IMAGES)
    assert counts.params_changed == _numel(original) and counts.params_added == 0
