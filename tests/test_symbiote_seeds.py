"""SymbioteNet over seeds: the summary, the stored study and its check against a live seed."""

import json
import math

import pytest

from mechinterp.errors import ConfigError
from mechinterp.symbiote import SymbioteConfig
from mechinterp.symbiote import seeds as seeds_module
from mechinterp.symbiote.seeds import (
    SEEDS,
    StaleStudyError,
    per_digit_over_seeds,
    seed_rows,
    seed_summary,
)


def _row(seed: int, rate: float, drop: float, best: str = "selective_zero") -> dict:
    """A seed row in the shape of ``seed_row``: two digits, the symbiote and two ablations."""
    def rows(r: float, d: float, units_key: str) -> list[dict]:
        return [{"digit": k, "target_output_rate": r + k * 0.001,
                 "nontarget_accuracy_drop": d, units_key: 3 + k,
                 f"{units_key}_fraction": (3 + k) / 20} for k in (0, 1)]

    return {"condition": "normal", "seed": seed, "primary_test_accuracy": 0.95 + seed / 100,
            "polysemanticity": 4.5, "class_entropy": 0.8,
            "best_ablation_at_budget": best,
            "parameters": {"symbiote": 10, "conditional_symbiote": 20},
            "rows": {"symbiote": rows(rate, drop, "units_touched"),
                     "selective_zero": rows(0.0, 0.4 + seed / 10, "units"),
                     "attribution_mean": rows(0.2, 0.1, "units")}}


def test_seed_summary_means_stds_and_each_seeds_own_choice():
    rows = {0: _row(0, 0.01, 0.002), 1: _row(1, 0.03, 0.004, best="attribution_mean")}
    summary = seed_summary(rows)
    sym = summary["symbiote"]
    assert sym["target_output_rate"] == pytest.approx(0.0205)  # mean of digits, then seeds
    assert sym["target_output_rate_std"] == pytest.approx(0.02 / math.sqrt(2))  # ddof=1
    assert sym["units"] == pytest.approx(3.5)
    # seed 0 chose selective_zero (drop 0.4), seed 1 attribution_mean (drop 0.1)
    assert summary["best_ablation"]["nontarget_accuracy_drop"] == pytest.approx(0.25)
    assert summary["primary"]["test_accuracy"] == pytest.approx(0.955)
    one = seed_summary({0: _row(0, 0.01, 0.002)})
    assert one["symbiote"]["target_output_rate_std"] == 0.0
    mean, worst = per_digit_over_seeds(rows, "symbiote", "target_output_rate")
    assert mean == pytest.approx([0.02, 0.021]) and worst == pytest.approx([0.03, 0.031])


@pytest.fixture
def fake_study(tmp_path, monkeypatch, digits_5k):
    """A stored study in a temporary folder and a ``seed_row`` that counts its calls."""
    calls = []

    def fake_seed_row(condition, data, seed, config=None):
        calls.append(seed)
        return json.loads(json.dumps(_row(seed, 0.01, 0.002)))

    monkeypatch.setattr(seeds_module, "seed_row", fake_seed_row)
    monkeypatch.setattr(seeds_module, "STUDIES", tmp_path)
    # rows computed in a build are cached: keep this test's fakes out of the shared cache
    monkeypatch.setattr(seeds_module, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.delenv(seeds_module.LIVE_ENV, raising=False)
    data = digits_5k
    stored = {s: _row(s, 0.01, 0.002) for s in SEEDS}
    seeds_module.write_study("normal", data, stored)
    return data, calls, tmp_path


def test_stored_study_is_used_and_seed_zero_is_checked(fake_study):
    data, calls, _ = fake_study
    rows = seed_rows("normal", data, log=False)
    assert sorted(rows) == list(SEEDS) and calls == [0]  # only the verified seed is computed
    assert rows[3]["primary_test_accuracy"] == pytest.approx(0.98)
    assert rows[0]["stored_gap"] == {"share": 0.0, "units": 0.0, "classes": 0.0}
    calls.clear()
    seed_rows("normal", data, verify=(), log=False)
    assert calls == []


def test_a_stale_study_fails_with_what_to_do(fake_study, monkeypatch):
    data, calls, folder = fake_study
    path = next(folder.glob("*-normal.json"))
    study = json.loads(path.read_text())
    # another CPU's rounding may move a digit by an image or a unit: within the margins
    study["seeds"]["0"]["rows"]["symbiote"][0]["target_output_rate"] += 0.004
    study["seeds"]["0"]["rows"]["symbiote"][1]["units_touched"] += 2
    study["seeds"]["0"]["rows"]["symbiote"][1]["units_touched_fraction"] += 2 / 20
    study["seeds"]["0"]["polysemanticity"] += 0.04
    path.write_text(json.dumps(study))
    gap = seed_rows("normal", data, seeds=(0,), log=False)[0]["stored_gap"]
    assert gap == pytest.approx({"share": 0.002, "units": 1.0, "classes": 0.04})
    # A's polysemanticity is compared too (a twentieth of a class)
    study["seeds"]["0"]["polysemanticity"] += 0.02
    path.write_text(json.dumps(study))
    with pytest.raises(StaleStudyError, match="polysemanticity"):
        seed_rows("normal", data, seeds=(0,), log=False)
    study["seeds"]["0"]["polysemanticity"] -= 0.06
    # the ablation a seed chose must be the same choice
    study["seeds"]["0"]["best_ablation_at_budget"] = "attribution_mean"
    path.write_text(json.dumps(study))
    with pytest.raises(StaleStudyError, match="best_ablation_at_budget"):
        seed_rows("normal", data, seeds=(0,), log=False)
    study["seeds"]["0"]["best_ablation_at_budget"] = "selective_zero"
    # a change of method moves more than that
    study["seeds"]["0"]["rows"]["symbiote"][0]["target_output_rate"] += 0.05
    path.write_text(json.dumps(study))
    with pytest.raises(StaleStudyError, match="make symbiote-seeds"):
        seed_rows("normal", data, log=False)
    # forcing live computation ignores the stored rows
    monkeypatch.setenv(seeds_module.LIVE_ENV, "1")
    calls.clear()
    seed_rows("normal", data, seeds=(0, 1), log=False)
    assert calls == [1]  # seed 0 came from the cache written by the failed run


def test_training_depth_checks_the_symbiotes_and_keeps_the_stored_baselines(fake_study,
                                                                           monkeypatch):
    data, calls, folder = fake_study
    retrained = []

    def fake_training_row(condition, data, seed, stored, config=None):
        retrained.append(seed)
        live = _row(seed, 0.01, 0.002)
        return {**stored, "rows": {"symbiote": live["rows"]["symbiote"],
                                   "conditional_symbiote": live["rows"]["symbiote"]}}

    monkeypatch.setattr(seeds_module, "training_row", fake_training_row)
    path = next(folder.glob("*-normal.json"))
    study = json.loads(path.read_text())
    for row in study["seeds"].values():
        row["rows"]["conditional_symbiote"] = row["rows"]["symbiote"]
    # a baseline's stored number is not recomputed at this depth (a full check would fail)
    study["seeds"]["0"]["rows"]["selective_zero"][0]["target_output_rate"] += 0.3
    path.write_text(json.dumps(study))
    rows = seed_rows("normal", data, depth="training", log=False)
    assert retrained == [0] and calls == []
    assert rows[0]["rows"]["selective_zero"][0]["target_output_rate"] == pytest.approx(0.3)
    assert rows[0]["stored_gap"] == {"share": 0.0, "units": 0.0, "classes": 0.0}
    # the symbiotes are: a stored symbiote row that the retrained B does not reproduce fails
    study["seeds"]["0"]["rows"]["conditional_symbiote"] = [
        {**r, "nontarget_accuracy_drop": 0.05} for r in study["seeds"]["0"]["rows"]["symbiote"]]
    path.write_text(json.dumps(study))
    with pytest.raises(StaleStudyError, match="conditional_symbiote.nontarget_accuracy_drop"):
        seed_rows("normal", data, depth="training", log=False)
    with pytest.raises(ConfigError, match="depth"):
        seed_rows("normal", data, depth="some", log=False)


def test_a_study_for_another_config_does_not_apply(fake_study):
    data, calls, _ = fake_study
    seed_rows("normal", data, seeds=(2,), config=SymbioteConfig(steps=10), log=False)
    assert calls == [2]
    with pytest.raises(ConfigError, match="unknown condition"):
        seed_rows("wide", data, log=False)


def test_shipped_studies_hold_every_seed_and_method():
    shipped = sorted(seeds_module.STUDIES.glob("*.json"))
    assert shipped, "no stored SymbioteNet seed study ships with the package"
    for path in shipped:
        study = json.loads(path.read_text())
        assert study["config"] == SymbioteConfig().as_dict(), path.name
        assert sorted(int(s) for s in study["seeds"]) == list(SEEDS), path.name
        for row in study["seeds"].values():
            assert {"symbiote", "conditional_symbiote", "logit_mask",
                    "trained_gates_symbiote_units"} <= set(row["rows"]), path.name
            assert all(len(r) == len(study["classes"]) for r in row["rows"].values())
