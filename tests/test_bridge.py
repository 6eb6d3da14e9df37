"""copy_bridge: a copied TransformerBridge fires its own hooks and leaves the original alone."""

from __future__ import annotations

import copy

import pytest
import torch

from mechinterp.bridge import copy_bridge
from mechinterp.toyworld import load_toy_model


@pytest.fixture()
def model():
    bridge = load_toy_model("toyworld-2l", steps=20).model
    bridge.set_use_hook_mlp_in(True)
    with torch.no_grad():
        bridge(torch.randint(2, 60, (2, 8)))  # wires each block's capture hooks
    yield bridge
    bridge.set_use_hook_mlp_in(False)


def _fired(model, tokens, name):
    seen = []
    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=[(name, lambda a, hook: seen.append(1))])
    return len(seen)


def test_hooks_of_a_copy_fire_on_the_copy(model):
    tokens = torch.randint(2, 60, (2, 8))
    # (in TransformerLens 4.x a plain deep copy's hook here never runs: see mechinterp.bridge)
    twin = copy_bridge(model)
    assert _fired(twin, tokens, "blocks.1.hook_mlp_in") == 1
    assert _fired(model, tokens, "blocks.1.hook_mlp_in") == 1
    with torch.no_grad():
        assert torch.equal(twin(tokens), model(tokens))
        zeroed = twin.run_with_hooks(tokens, fwd_hooks=[("blocks.1.hook_mlp_in",
                                                         lambda a, hook: a * 0)])
        assert not torch.allclose(zeroed, model(tokens))


def test_training_a_copy_leaves_the_original_intact_and_copyable(model):
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    twin = copy_bridge(model)
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.1)
    tokens = torch.randint(2, 60, (4, 8))
    twin(tokens, return_type="loss").backward()  # leaves a graph-holding tensor behind
    optimizer.step()
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert any(not torch.equal(p, before[n]) for n, p in twin.named_parameters())
    # nothing of the copy's graph was left on the original: after a naive copy was trained
    # this way, deep-copying the original raised RuntimeError
    again = copy.deepcopy(model)
    assert all(torch.equal(p, before[n]) for n, p in again.named_parameters())
