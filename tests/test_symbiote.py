import json

import pytest
import torch

from mechinterp.cli import main
from mechinterp.errors import ConfigError, ShapeError
from mechinterp.symbiote import (
    ABLATIONS,
    NONE,
    UNIT_CHOOSERS,
    Symbiote,
    SymbioteConfig,
    attribution_units,
    causal_check,
    changed_units,
    evaluate_inhibition,
    fold_gates,
    jaccard,
    logit_mask_hooks,
    mean_ablation_hooks,
    selective_units,
    train_symbiote,
    train_unit_gates,
    unit_class_entropy,
    units_touched,
)
from mechinterp.symbiote.baselines import (
    ablation_hooks,
    ablation_references,
    all_unit_means,
    gate_hooks,
    top_units,
)
from mechinterp.symbiote.experiment import (
    _restricted_hooks,
    evaluate_symbiote,
    gate_variation,
    symbiote_modulations,
)
from mechinterp.train import TrainConfig, train_classifier

# short runs test the mechanics with the unweighted objective, which learns the inhibition in
# 300 steps; the default preservation weight (10) is chosen for the full 1,500 steps
SMALL = SymbioteConfig(steps=300, batch_size=64, lr=5e-3, preservation=1.0)


@pytest.fixture(scope="module")
def setup(digits_5k):
    data = digits_5k.subset("0-3")
    primary = train_classifier("cnn", data=data, seed=0,
                               config=TrainConfig(epochs=3, batch_size=64, lr=1e-3))
    trained = train_symbiote(primary, data, SMALL, seed=0)
    return data, primary, trained


def test_none_input_is_exactly_the_identity(setup):
    data, primary, trained = setup
    hooks = trained.symbiote.hooks(torch.full((data.n_test,), NONE))
    with torch.no_grad():
        assert torch.equal(primary.model.run_with_hooks(data.test_images, fwd_hooks=hooks),
                           primary.model(data.test_images))


def test_symbiote_inhibits_and_preserves(setup):
    data, primary, trained = setup
    hooks = trained.symbiote.hooks(torch.full((data.n_test,), 2))
    row = evaluate_inhibition(primary.model, data, 2, hooks)
    assert row["target_output_rate_before"] > 0.2  # a quarter of the images are 2s
    assert row["target_output_rate"] < 0.02
    assert row["nontarget_accuracy_drop"] < 0.05
    assert 2 not in row["confusion"] or row["confusion"][2] < 0.05
    assert abs(sum(row["confusion"].values()) - 1.0) < 1e-5


def test_primary_stays_frozen_and_cache_hits(setup):
    data, primary, trained = setup
    before = {k: v.clone() for k, v in primary.model.state_dict().items()}
    again = train_symbiote(primary, data, SMALL, seed=0)
    assert again.cached
    for name, value in again.symbiote.state_dict().items():
        assert torch.equal(value, trained.symbiote.state_dict()[name])
    for name, value in primary.model.state_dict().items():
        assert torch.equal(value, before[name])


def test_folded_weights_equal_the_hooked_model(setup):
    data, primary, trained = setup
    folded = fold_gates(primary.model, trained.symbiote, 1)
    hooks = trained.symbiote.hooks(torch.full((data.n_test,), 1))
    with torch.no_grad():
        gap = (folded(data.test_images)
               - primary.model.run_with_hooks(data.test_images, fwd_hooks=hooks)).abs().max()
    assert gap < 1e-4
    assert not torch.equal(folded.fc1.weight, primary.model.fc1.weight)


def test_film_mode_shifts_and_refuses_to_fold(setup):
    data, primary, _ = setup
    film = Symbiote(primary.model, 10, SymbioteConfig(mode="film"))
    with torch.no_grad():
        film.net[2].bias.fill_(0.5)
    modulations = film(torch.tensor([1, NONE]))
    gate, shift = modulations["fc1.hook_post"]
    assert torch.all(shift[0] == 0.5) and torch.all(shift[1] == 0) and torch.all(gate[1] == 1)
    with pytest.raises(ConfigError, match="only gate-mode"):
        fold_gates(primary.model, film, 1)


def test_bad_targets_and_batch_mismatch(setup):
    data, primary, trained = setup
    with pytest.raises(ConfigError, match=r"must be in 0..9 or NONE"):
        trained.symbiote(torch.tensor([10]))
    hooks = trained.symbiote.hooks(torch.full((3,), 1))
    with pytest.raises(ShapeError, match="one target per image"):
        primary.model.run_with_hooks(data.test_images[:5], fwd_hooks=hooks)


def test_config_validation():
    with pytest.raises(ConfigError, match="mode must be 'gate' or 'film'"):
        SymbioteConfig(mode="mask")
    with pytest.raises(ConfigError, match="steps"):
        SymbioteConfig(steps=0)
    with pytest.raises(ConfigError, match="max_gate"):
        SymbioteConfig(max_gate=1.0)
    with pytest.raises(ConfigError, match="preservation must be >= 0"):
        SymbioteConfig(preservation=-1.0)


def test_the_preservation_weight_scales_only_its_term():
    from mechinterp.symbiote.training import inhibition_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 10, generator=g)
    targets, labels = torch.arange(8) % 10, (torch.arange(8) + 1) % 10
    original = (torch.arange(8) + 2) % 10
    deviation = torch.rand(8, 5, generator=g)
    one = inhibition_loss(logits, targets, original, labels, deviation, 2.0, 0.01)
    ten = inhibition_loss(logits, targets, original, labels, deviation, 2.0, 0.01, 10.0)
    assert float(one["preservation"]) > 0
    assert torch.allclose(ten["total"] - one["total"], 9 * one["preservation"])
    unit = inhibition_loss(logits, targets, original, labels, deviation, 2.0, 0.01, 1.0)
    assert torch.equal(unit["total"], one["total"])  # the default weight is the old objective


def test_baselines_use_the_budget_and_the_mask_is_perfect(setup):
    data, primary, _ = setup
    model = primary.model
    mask = evaluate_inhibition(model, data, 3, logit_mask_hooks(3))
    assert mask["target_output_rate"] == 0.0 and mask["nontarget_accuracy_drop"] <= 0.0
    for chooser in (selective_units, attribution_units):
        chosen = chooser(model, data, 3, 7)
        assert sum(len(v) for v in chosen.values()) == 7
    means = all_unit_means(model, data.train_images)
    top = evaluate_inhibition(model, data, 3, mean_ablation_hooks(
        attribution_units(model, data, 3, 10, means), means))
    generator = torch.Generator().manual_seed(0)
    random_units = {"fc1.hook_post": torch.randperm(128, generator=generator)[:10]}
    rand = evaluate_inhibition(model, data, 3, mean_ablation_hooks(random_units, means))
    # attribution-ranked units should hurt the digit more than random units
    assert top["confusion"].get(3, 0.0) < rand["confusion"].get(3, 0.0)


def test_top_units_ranks_across_layers():
    scores = {"a": torch.tensor([0.1, 5.0, 0.2]), "b": torch.tensor([3.0, -1.0])}
    chosen = top_units(scores, 2)
    assert chosen["a"].tolist() == [1] and chosen["b"].tolist() == [0]
    with pytest.raises(ConfigError, match="budget"):
        top_units(scores, -1)


def test_entropy_jaccard_and_causal_check(setup):
    data, primary, trained = setup
    entropy = unit_class_entropy(primary.model, data)
    for values in entropy.values():
        live = values[~torch.isnan(values)]
        assert ((live >= 0) & (live <= 1 + 1e-6)).all()
    a = {"x": torch.tensor([1, 2])}
    assert jaccard(a, {"x": torch.tensor([2, 3])}) == pytest.approx(1 / 3)
    assert jaccard({}, {}) == 1.0
    assert sum(len(v) for v in changed_units(trained.symbiote, 2).values()) > 0
    # the causal check ablates exactly the units B pushes below 1 - change_threshold, without
    # B, and reports what that does to the digit's test images
    from mechinterp.symbiote.circuit import suppressed_units

    model = primary.model
    means = all_unit_means(model, data.train_images)
    check = causal_check(model, trained.symbiote, data, 2, n_random=3, seed=4)
    threshold = trained.symbiote.config.change_threshold
    gates = {name: gate[0] for name, (gate, _) in trained.symbiote.table([2]).items()}
    units = {name: torch.nonzero(g < 1 - threshold).flatten() for name, g in gates.items()}
    assert {k: v.tolist() for k, v in suppressed_units(trained.symbiote, 2).items()} == {
        k: v.tolist() for k, v in units.items()}
    assert check["n_units"] == sum(len(v) for v in units.values()) > 0
    twos = data.test_images[data.test_labels == 2]
    with torch.no_grad():
        before = (model(twos).argmax(-1) == 2).float().mean().item()
        after = model.run_with_hooks(twos, fwd_hooks=mean_ablation_hooks(units, means))
    assert check["digit_accuracy_before"] == pytest.approx(before) and before > 0.9
    assert check["digit_accuracy_ablated"] == pytest.approx((after.argmax(-1) == 2).float()
                                                            .mean().item())
    # removing B's units costs the digit more than removing as many random units per layer
    assert check["digit_accuracy_ablated"] < check["digit_accuracy_random"] - 0.1
    random_scores = []
    generator = torch.Generator().manual_seed(4)
    for _ in range(3):
        chosen = {name: torch.randperm(model.unit_counts()[name], generator=generator)[:len(idx)]
                  for name, idx in units.items()}
        with torch.no_grad():
            out = model.run_with_hooks(twos, fwd_hooks=mean_ablation_hooks(chosen, means))
        random_scores.append((out.argmax(-1) == 2).float().mean().item())
    assert check["digit_accuracy_random"] == pytest.approx(sum(random_scores) / 3)
    hooks = mean_ablation_hooks(units, means)
    drop = evaluate_inhibition(model, data, 2, hooks)["nontarget_accuracy_drop"]
    assert check["nontarget_drop_ablated"] == pytest.approx(drop)


def test_cli_on_an_idx_folder_and_bad_digit(idx_folder, capsys):
    assert main(["symbiote", "--digit", "7", "--source", str(idx_folder), "--json"]) == 2
    assert "digit 7 is not a class" in capsys.readouterr().err
    assert main(["symbiote", "--digit", "1", "--source", str(idx_folder), "--steps", "200",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("target_output_rate", "nontarget_accuracy", "baseline_nontarget_accuracy",
                "nontarget_accuracy_drop", "confusion", "primary_test_accuracy",
                "polysemanticity", "units_touched", "baselines"):
        assert key in out
    expected = {"logit_mask", "trained_gates_symbiote_units", "trained_gates_attribution_units"}
    expected |= {f"{c}_{m}" for c in UNIT_CHOOSERS for m in ABLATIONS}
    assert set(out["baselines"]) == expected
    assert out["baselines"]["logit_mask"]["target_output_rate"] == 0.0
    for name, row in out["baselines"].items():
        assert {"target_output_rate", "nontarget_accuracy", "units"} <= row.keys()
        if name != "logit_mask":  # every ablation gets the symbiote's budget
            assert row["units"] <= out["units_touched"]
            if not name.startswith("trained_gates"):
                assert row["units"] == out["units_touched"]
    assert main(["symbiote", "--digit", "1", "--source", str(idx_folder), "--steps", "200",
                 "--condition", "mixed", "--symbiote", "conditional", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["primary_arch"] == "cnn+mixed" and out["symbiote_kind"] == "conditional"
    assert out["baselines"]["logit_mask"]["target_output_rate"] == 0.0
    assert main(["symbiote", "--digit", "1", "--steps", "0"]) == 2
    assert "SymbioteConfig.steps must be a positive integer" in capsys.readouterr().err


def test_units_touched_cover_the_effect_and_are_counted(setup):
    data, primary, trained = setup
    units, threshold = units_touched(trained, data, 2)
    k = sum(len(v) for v in units.values())
    assert 0 < k < trained.symbiote.n_units and threshold > 0
    row = evaluate_symbiote(trained, data, 2, (units, threshold))
    assert row["units_touched"] == k
    # chosen on the training images: there the pruned B is within a tenth of a point of B
    keep = torch.cat([torch.isin(torch.arange(n), units[h]) for h, n in
                      trained.symbiote.layer_sizes.items()])
    model = primary.model

    modulations = symbiote_modulations(trained, data, 2, "train")

    def train_metrics(mask):
        r = evaluate_inhibition(model, data, 2, _restricted_hooks(trained, modulations, mask),
                                split="train")
        return r["target_output_rate"], r["nontarget_accuracy"]

    full = train_metrics(torch.ones_like(keep))
    for a, b in zip(train_metrics(keep), full, strict=True):
        assert abs(a - b) <= 0.001 + 1e-9
    # and k is the fewest: dropping the smallest kept modulation breaks the tolerance
    deviation = torch.cat([(g[0] - 1).abs() for g, _ in trained.symbiote.table([2]).values()])
    fewer = keep.clone()
    fewer[torch.nonzero(keep).flatten()[deviation[keep].argmin()]] = False
    assert any(abs(a - b) > 0.001 for a, b in zip(train_metrics(fewer), full, strict=True))


def test_ablation_references_do_not_favour_the_target(setup):
    data, primary, _ = setup
    model = primary.model
    refs = {m: ablation_references(model, data, 3, m) for m in ABLATIONS}
    conv = model.hidden_hooks[0]
    assert refs["mean"][conv].dim() == 3  # a channel is replaced per position
    assert torch.count_nonzero(refs["zero"][conv]) == 0
    assert refs["resample"][conv].shape[0] == data.n_test
    nontarget = data.train_images[data.train_labels != 3]
    _, cache = model.run_with_cache(nontarget, names_filter=conv)
    assert torch.allclose(refs["mean_nontarget"][conv], cache[conv].mean(0), atol=1e-5)
    units = {conv: torch.tensor([0, 2])}
    seen = {}

    def grab(act, hook):
        seen["act"] = act
        return act

    with torch.no_grad():
        model.run_with_hooks(data.test_images, fwd_hooks=[
            *ablation_hooks(units, refs["resample"]), (conv, grab)])
    # the chosen channels hold each resampled image's whole map, the others are untouched
    assert torch.equal(seen["act"][:, [0, 2]], refs["resample"][conv][:, [0, 2]])
    with torch.no_grad():
        _, clean = model.run_with_cache(data.test_images, names_filter=conv)
    assert torch.equal(seen["act"][:, 1], clean[conv][:, 1])
    with pytest.raises(ShapeError, match="resample"):
        model.run_with_hooks(data.test_images[:5], fwd_hooks=ablation_hooks(units, refs["resample"]))
    with pytest.raises(ConfigError, match="unknown ablation"):
        ablation_references(model, data, 3, "median")


def test_trained_gates_stay_on_their_units_and_learn(setup):
    data, primary, trained = setup
    model = primary.model
    units = {h: torch.zeros(0, dtype=torch.long) for h in model.hidden_hooks}
    units["fc1.hook_post"] = torch.arange(0, 128, 2)
    gates = train_unit_gates(model, data, {1: units}, SMALL, seed=0)[1]
    n_conv = sum(n for h, n in model.unit_counts().items() if h != "fc1.hook_post")
    fc = gates[n_conv:]
    assert torch.all(gates[:n_conv] == 1) and torch.all(fc[1::2] == 1)
    assert (fc[0::2] != 1).any()
    row = evaluate_inhibition(model, data, 1, gate_hooks(model, gates[None].expand(data.n_test, -1)))
    assert row["target_output_rate"] < row["target_output_rate_before"] / 2
    with pytest.raises(ConfigError, match="not an output"):
        train_unit_gates(model, data, {12: units}, SMALL)


CONDITIONAL = SymbioteConfig(steps=300, batch_size=64, lr=5e-3, kind="conditional",
                             preservation=1.0)


def test_conditional_symbiote_reads_a_and_gates_each_image(setup):
    data, primary, fixed = setup
    trained = train_symbiote(primary, data, CONDITIONAL, seed=0)
    symbiote, model = trained.symbiote, primary.model
    assert symbiote.read_hook == model.hidden_hooks[0]
    # what it imports is counted: the fixed B plus a reader of the pooled first layer
    reader = symbiote.reader.weight.numel() + symbiote.reader.bias.numel()
    assert reader == (8 * 7 * 7 + 1) * CONDITIONAL.hidden
    assert symbiote.n_parameters == fixed.symbiote.n_parameters + reader
    # NONE stays exactly the identity, and gates differ between images
    images = data.test_images[:64]
    hooks = symbiote.hooks(torch.full((64,), NONE), images, model)
    with torch.no_grad():
        assert torch.equal(model.run_with_hooks(images, fwd_hooks=hooks), model(images))
    variation = gate_variation(trained, data, 2)
    assert max(v["std"].max().item() for v in variation.values()) > 1e-3
    assert all(v["std"].abs().max().item() == 0.0 for v in gate_variation(fixed, data, 2).values())
    row = evaluate_symbiote(trained, data, 2)
    assert row["symbiote_kind"] == "conditional" and row["target_output_rate"] <= 0.05
    assert row["symbiote_parameters"] == symbiote.n_parameters
    with pytest.raises(ConfigError, match="images"):
        symbiote.hooks(torch.full((4,), 2))
    with pytest.raises(ConfigError, match="per-class table"):
        symbiote.table([2])
    with pytest.raises(ShapeError, match="one target per image"):
        symbiote(torch.full((3,), 2), symbiote.read(model, images))
    with pytest.raises(ConfigError, match="kind"):
        SymbioteConfig(kind="adaptive")
    with pytest.raises(ConfigError, match="read_hook"):
        train_symbiote(primary, data, SymbioteConfig(steps=1, kind="conditional",
                                                     read_hook="fc9.hook_post"))


def test_mixed_basis_keeps_the_function_and_mixes_the_units(setup):
    from mechinterp.models import mix_basis

    data, primary, _ = setup
    mixed = mix_basis(primary.model, seed=1)
    with torch.no_grad():
        assert torch.allclose(mixed(data.test_images), primary.model(data.test_images),
                              atol=1e-4)
    assert mixed.arch == "cnn+mixed" and primary.model.fc1.mix is None
    q = mixed.fc1.mix
    assert torch.allclose(q @ q.T, torch.eye(q.shape[0]), atol=1e-5)
    # the hook sees mixtures: q times the original units, so some take negative values
    _, cache = mixed.run_with_cache(data.test_images, names_filter="fc1.hook_post")
    _, plain = primary.model.run_with_cache(data.test_images, names_filter="fc1.hook_post")
    assert torch.allclose(cache["fc1.hook_post"], plain["fc1.hook_post"] @ q.T, atol=1e-4)
    assert (cache["fc1.hook_post"] < 0).any()
    live = unit_class_entropy(mixed, data)["fc1.hook_post"]
    assert ((live >= 0) & (live <= 1 + 1e-6)).all()  # the measure copes with negative units
    # an edit through the mixed hook still reaches the output
    hooks = [("fc1.hook_post", lambda act, hook: act * 0)]
    with torch.no_grad():
        assert not torch.allclose(mixed.run_with_hooks(data.test_images, fwd_hooks=hooks),
                                  mixed(data.test_images))
