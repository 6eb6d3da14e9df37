"""The stored transfer study: seeds after the first are read from it, the first is recomputed
and checked against it, and a study the code no longer reproduces fails with what to do."""

import json

import pytest

from mechinterp.errors import StaleStudyError
from mechinterp.transfer import leaderboard, study
from mechinterp.transfer.leaderboard import cached_run
from mechinterp.transfer.registry import ArchitectureMismatchError


def _result(method: str, seed: int, transfer: float) -> dict:
    return {"method": method, "transfer": transfer, "preservation": 0.97,
            "validation": {"transfer": transfer + 0.01}, "concept_images_used": 12,
            "params_added": 100, "recipient_arch": "simplenn", "donor_arch": "simplenn",
            "seed": seed, "seconds": 1.5 + seed}


@pytest.fixture
def fake_runs(tmp_path, monkeypatch):
    """``cached_run`` with a fake method run (counting its seeds) and temporary folders."""
    calls = []

    def fake_pair(*args, seed, **kwargs):
        calls.append(seed)
        return seed

    monkeypatch.setattr(leaderboard, "model_pair", fake_pair)
    monkeypatch.setattr(leaderboard, "run_method",
                        lambda method, pair, concept_budget: _result(method, pair, 0.5 + pair / 10))
    monkeypatch.setattr(leaderboard, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(study, "STUDIES", tmp_path / "studies")
    monkeypatch.delenv(study.LIVE_ENV, raising=False)
    return calls, tmp_path


def test_study_is_written_from_a_cache_and_read_for_later_seeds(fake_runs, digits_5k,
                                                                 monkeypatch):
    calls, folder = fake_runs
    live = [cached_run("direct_weight_copy", "simplenn", "simplenn", seed=s, data=digits_5k)
            for s in (0, 1, 2)]
    assert calls == [0, 1, 2] and live[2]["transfer"] == pytest.approx(0.7)
    path = study.write_study(folder / "cache", "quick", digits_5k.source)
    assert len(json.loads(path.read_text())["runs"]) == 3
    # a fresh cache: seed 0 is computed and checked, seeds 1 and 2 come from the study
    monkeypatch.setattr(leaderboard, "cache_dir", lambda: folder / "cache2")
    calls.clear()
    again = [cached_run("direct_weight_copy", "simplenn", "simplenn", seed=s, data=digits_5k)
             for s in (0, 1, 2)]
    assert calls == [0] and [r["transfer"] for r in again] == pytest.approx([0.5, 0.6, 0.7])
    # a run the study does not hold is computed
    cached_run("direct_weight_copy", "simplenn", "simplenn", seed=3, data=digits_5k)
    assert calls == [0, 3]
    # the live switch computes every seed
    monkeypatch.setenv(study.LIVE_ENV, "1")
    cached_run("direct_weight_copy", "simplenn", "simplenn", seed=1, data=digits_5k)
    assert calls == [0, 3, 1]
    # an unsupported pair is refused before any model is trained
    with pytest.raises(ArchitectureMismatchError):
        cached_run("direct_weight_copy", "simplenn", "megann", seed=1, data=digits_5k)
    assert calls == [0, 3, 1]


def test_a_stale_study_fails_with_what_to_do(fake_runs, digits_5k, monkeypatch):
    calls, folder = fake_runs
    cached_run("direct_weight_copy", "simplenn", "simplenn", seed=0, data=digits_5k)
    path = study.write_study(folder / "cache", "quick", digits_5k.source)
    content = json.loads(path.read_text())
    (key, stored), = content["runs"].items()
    # within half a point (another CPU's rounding) the stored run still counts as reproduced
    stored["validation"]["transfer"] += 0.004
    path.write_text(json.dumps(content))
    cached_run("direct_weight_copy", "simplenn", "simplenn", seed=0, data=digits_5k)
    stored["validation"]["transfer"] += 0.01
    path.write_text(json.dumps(content))
    with pytest.raises(StaleStudyError, match=r"validation.transfer.*make transfer-study"):
        cached_run("direct_weight_copy", "simplenn", "simplenn", seed=0, data=digits_5k)
    # counts must be equal; the wall-clock time may differ
    stored["validation"]["transfer"] -= 0.014
    stored["concept_images_used"] = 13
    stored["seconds"] = 99.0
    path.write_text(json.dumps(content))
    with pytest.raises(StaleStudyError, match="concept_images_used: stored 13, now 12"):
        cached_run("direct_weight_copy", "simplenn", "simplenn", seed=0, data=digits_5k)
    assert "seconds" not in str(study._differences({"seconds": 1.0}, {"seconds": 2.0}, "")[1])


def test_write_study_needs_runs_of_this_code(tmp_path):
    (tmp_path / "transfer-runs").mkdir()
    (tmp_path / "transfer-runs" / "old.json").write_text(json.dumps({"method": "x"}))
    with pytest.raises(StaleStudyError, match="MECHINTERP_SEEDS_LIVE"):
        study.write_study(tmp_path, "quick", "mnist-5k")


def test_the_study_command_writes_the_active_profiles_study(fake_runs, digits_5k, monkeypatch):
    calls, folder = fake_runs
    monkeypatch.setenv("MECHINTERP_PROFILE", "full")
    monkeypatch.setenv("MECHINTERP_DATA", "mnist-5k")
    cached_run("direct_weight_copy", "simplenn", "simplenn", seed=1, data=digits_5k)
    study.main(["--from-cache", str(folder / "cache")])
    written = json.loads((folder / "studies" / "full-mnist-5k.json").read_text())
    assert written["profile"] == "full" and len(written["runs"]) == 1
    assert not (folder / "studies" / "quick-mnist-5k.json").exists()
    monkeypatch.setenv("MECHINTERP_PROFILE", "quick")  # the cache holds no quick-profile run
    with pytest.raises(StaleStudyError, match="profile 'quick'"):
        study.main(["--from-cache", str(folder / "cache")])
