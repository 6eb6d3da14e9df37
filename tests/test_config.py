import pytest
import torch

from mechinterp.config import (
    PROFILES,
    Profile,
    apply_thread_policy,
    cache_dir,
    get_device,
    get_profile,
    seed_everything,
)
from mechinterp.errors import ConfigError


def test_default_profile_is_quick():
    assert get_profile().name == "quick"
    assert get_profile().data_source == "mnist-5k"


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("MECHINTERP_PROFILE", "full")
    assert get_profile().name == "full"
    assert get_profile().data_source == "mnist"


def test_unknown_profile_names_the_choices(monkeypatch):
    monkeypatch.setenv("MECHINTERP_PROFILE", "fast")
    with pytest.raises(ConfigError, match=r"unknown profile 'fast'.*\['full', 'quick'\]"):
        get_profile()


def test_data_override_keeps_other_fields(monkeypatch):
    monkeypatch.setenv("MECHINTERP_PROFILE", "full")
    monkeypatch.setenv("MECHINTERP_DATA", "mnist-5k")
    profile = get_profile()
    assert profile.data_source == "mnist-5k"
    assert profile.seeds == PROFILES["full"].seeds


def test_profiles_are_frozen_and_validated():
    with pytest.raises(AttributeError):
        PROFILES["quick"].epochs = 99
    with pytest.raises(ConfigError, match="epochs"):
        PROFILES["quick"].with_overrides(epochs=0)
    with pytest.raises(ConfigError, match="unknown Profile field"):
        PROFILES["quick"].with_overrides(epochz=3)
    with pytest.raises(ConfigError, match="test_fraction"):
        Profile("x", "mnist-5k", 1.5, 1, 1, 1e-3, (0,))


def test_seed_everything_reproduces_draws():
    g1 = seed_everything(7)
    a = (torch.rand(3), torch.randn(3, generator=g1))
    g2 = seed_everything(7)
    b = (torch.rand(3), torch.randn(3, generator=g2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ConfigError, match="non-negative integer"):
        seed_everything(-1)


def test_device_selection(monkeypatch):
    assert get_device("cpu").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_device("auto").type == "cpu"
    with pytest.raises(ConfigError, match="CUDA is not available"):
        get_device("cuda")
    with pytest.raises(ConfigError, match="unknown device"):
        get_device("tpu")


def test_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MECHINTERP_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    assert (tmp_path / "c").is_dir()


def test_thread_policy_sets_one_thread(monkeypatch):
    monkeypatch.delenv("MECHINTERP_THREADS", raising=False)
    torch.set_num_threads(2)
    apply_thread_policy()
    assert torch.get_num_threads() == 1
