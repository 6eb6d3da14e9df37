"""SIIT benchmark models: causal models, tasks, the stacked forward pass, training, checks."""

import pytest
import torch

from mechinterp.errors import ConfigError, ShapeError
from mechinterp.siit import (
    SIIT_TASKS,
    CausalModel,
    CausalNode,
    SIITArch,
    SIITConfig,
    SIITModel,
    StackedTransformer,
    component_names,
    draw_alignment,
    get_siit_task,
    load_siit_models,
    patched_logits,
    siit_tokenizer,
    train_siit,
    verify,
)
from mechinterp.siit.distractors import (
    MAX_OFFSET,
    distractor_loss,
    distractor_targets,
    draw_distractor_jobs,
)
from mechinterp.siit.model import from_bridges, to_bridge
from mechinterp.siit.tasks import IGNORE, readout
from mechinterp.siit.training import default_arch
from mechinterp.siit.verify import Verification

TOK = siit_tokenizer()


def _encode(text: str) -> torch.Tensor:
    return torch.tensor([TOK.encode(text)])


def test_causal_model_interchange_recomputes_downstream():
    model = CausalModel([
        CausalNode("a", ("embed",), lambda t, v: t[:, 0]),
        CausalNode("b", ("embed",), lambda t, v: t[:, 1]),
        CausalNode("out", ("a", "b"), lambda t, v: v["a"] * 10 + v["b"]),
    ])
    base, source = torch.tensor([[1, 2]]), torch.tensor([[7, 8]])
    assert model.label(base).item() == 12
    assert model.interchange(base, source, "a").item() == 72
    assert model.interchange(base, source, "b").item() == 18
    assert model.interchange(base, source, ["a", "b"]).item() == 78
    rows = model.interchange_rows(torch.cat([base, base]), torch.cat([source, source]), ["a", None])
    assert rows.tolist() == [72, 12]
    assert ("a", "out") in model.edges and ("out", "logits") in model.edges
    with pytest.raises(ConfigError, match="before they are defined"):
        CausalModel([CausalNode("x", ("y",), lambda t, v: t)])
    with pytest.raises(ConfigError, match="unknown causal nodes"):
        model.run(base, {"zzz": base})


def test_task_labels_by_hand():
    ioi = get_siit_task("siit-ioi").model
    text = "alice and bob went to bob the shop <end>"
    assert ioi.label(_encode(text)).item() == TOK.index["alice"]
    values = ioi.run(_encode(text))
    assert values["duplicate"].item() == TOK.index["bob"]
    # the repeated name taken from a source that repeats alice: the answer becomes bob
    source = _encode("bob and alice the alice shop went to <end>")
    assert ioi.interchange(_encode(text), source, "duplicate").item() == TOK.index["bob"]
    assert ioi.interchange(_encode(text), source, "s_inhibition").item() == TOK.index["bob"]
    hist = get_siit_task("siit-histogram").model
    labels = hist.label(_encode("x y y c1 x c2 c3 y"))[0]
    assert TOK.decode(labels[1:]) == "x x y y x x x y"  # so far: x >= y, ties go to x
    assert labels[0].item() == IGNORE
    ind = get_siit_task("siit-induction").model
    base = _encode("a b c d e f c a e b d")
    assert TOK.decode(ind.label(base)[0, 7:]) == "d b f c e"
    assert bool((ind.label(base)[0, :7] == IGNORE).all())
    # previous tokens from the reordering "f e d c b a": the key "previous token is c" now
    # marks position 5 (base token e), "is a" position 7 (c), "is e" 3 (c), "is b" 6 (f)
    source = _encode("f e d c b a e d c b f")
    assert TOK.decode(ind.interchange(base, source, "previous_token")[0, 7:]) == "e c c f d"


@pytest.mark.parametrize("name", sorted(SIIT_TASKS))
def test_task_distributions(name):
    task = get_siit_task(name)
    g = torch.Generator().manual_seed(0)
    base = task.sample(256, g)
    assert base.shape == (256, task.n_ctx) and bool((base[:, 0] == TOK.bos_id).all())
    paired = task.paired_source(base, g)
    labels = task.model.label(base)
    for node in task.model.node_names:  # every interchange has a defined answer
        assert task.model.interchange(base, paired, node).shape == labels.shape
    prompts = task.prompts(100, seed=3)
    assert len(prompts) == 100 and bool((prompts.answer != prompts.wrong).all())
    assert bool((readout(task.model.label(prompts.corrupted)) == prompts.wrong).all())
    assert prompts.clean.shape == prompts.corrupted.shape
    assert torch.equal(task.prompts(100, seed=3).clean, prompts.clean)


def test_alignment_respects_the_causal_order():
    arch = SIITArch(n_ctx=10, d_vocab=len(TOK))
    for name, task in SIIT_TASKS.items():
        seen = set()
        for seed in range(20):
            alignment = draw_alignment(task, arch, seed)
            assert len(set(alignment.values())) == len(alignment)
            layer = {n: int(c.split(".")[0][1:]) for n, c in alignment.items()}
            for node in task.model.nodes.values():
                for parent in node.parents:
                    if parent != "embed":
                        gap = layer[node.name] - layer[parent]
                        assert gap >= (1 if ".H" in alignment[node.name] else 0), name
            seen.add(tuple(sorted(alignment.values())))
        assert len(seen) > 5  # the circuit's place varies with the seed
    with pytest.raises(ConfigError, match="no alignment"):
        draw_alignment(get_siit_task("siit-ioi"), SIITArch(n_layers=2, n_ctx=10), 0)


def test_stacked_forward_matches_the_bridge_and_its_hooks():
    from transformer_lens import TransformerBridge

    task = get_siit_task("siit-ioi")
    arch = default_arch(task)
    bridges = [TransformerBridge.boot_native(arch.bridge_config(s, "t"), device="cpu").eval()
               for s in (3, 4)]
    net = StackedTransformer(arch, from_bridges(bridges))
    g = torch.Generator().manual_seed(1)
    base = torch.stack([task.sample(6, g) for _ in range(2)])
    source = torch.stack([task.sample(6, g) for _ in range(2)])
    names = component_names(arch)
    mask = torch.zeros(2, len(names), 6)
    mask[0, names.index("L1.H2"), [0, 3]] = 1
    mask[0, names.index("L2.mlp"), 1] = 1
    mask[1, names.index("L0.H0"), :] = 1
    with torch.no_grad():
        logits, _ = net(base)
        _, acts = net(source, keep=True)
        patched, _ = net(base, acts, mask)
    for i, bridge in enumerate(bridges):
        with torch.no_grad():
            assert torch.allclose(logits[i], bridge(base[i]), atol=1e-4)
        rows = {c: mask[i, j].bool() for j, c in enumerate(names) if mask[i, j].any()}
        hooked = patched_logits(bridge, base[i], source[i], rows)
        assert torch.allclose(patched[i], hooked, atol=1e-4)
    assert not torch.allclose(patched[0, :, -1], logits[0, :, -1], atol=1e-3)
    # weights travel back to a bridge unchanged
    fresh = TransformerBridge.boot_native(arch.bridge_config(9, "t"), device="cpu").eval()
    to_bridge({k: v.detach() for k, v in net.w.items()}, 1, fresh)
    with torch.no_grad():
        assert torch.equal(fresh(base[1]), bridges[1](base[1]))
    with pytest.raises(ShapeError):
        net(base[:1])
    with pytest.raises(ConfigError, match="go together"):
        net(base, acts)


def test_training_moves_the_losses_and_caches_each_seed():
    config = SIITConfig(steps=30, batch_size=16, lr=3e-3)
    task = get_siit_task("siit-histogram")
    bridges, alignments, log = train_siit(task, [0, 1], config=config)
    assert len(bridges) == 2 and alignments[0] == draw_alignment(task, default_arch(task), 0)
    for key in ("behaviour", "iit", "strict"):
        assert log["losses"][key][-1] < log["losses"][key][0]
    first = load_siit_models("siit-histogram", [5], config=config)[0]
    again = load_siit_models("siit-histogram", [5], config=config)[0]
    assert again.meta["key"] == first.meta["key"]
    for (name, a), b in zip(first.model.named_parameters(), again.model.parameters(), strict=True):
        assert torch.equal(a, b), name
    truth = first.truth()
    assert truth.source == "siit" and truth.nodes == frozenset(first.alignment.values())
    assert f"{first.alignment['compare']} -> logits" in truth.edges
    assert f"embed -> {first.alignment['count_x']}" in truth.edges
    with pytest.raises(ConfigError, match="distinct"):
        load_siit_models("siit-histogram", [1, 1], config=config)
    with pytest.raises(ConfigError, match="unknown SIIT task"):
        load_siit_models("siit-poetry", [0], config=config)
    with pytest.raises(ConfigError, match="resample_prob"):
        SIITConfig(resample_prob=1.5)
    with pytest.raises(ConfigError, match="SIITConfig.batch_size must be a positive integer"):
        SIITConfig(batch_size=0)
    with pytest.raises(ConfigError, match="SIITArch.n_heads must be a positive integer"):
        SIITArch(n_heads=0)


def test_verification_fails_an_untrained_model():
    from transformer_lens import TransformerBridge

    task = get_siit_task("siit-ioi")
    arch = default_arch(task)
    bridge = TransformerBridge.boot_native(arch.bridge_config(0, "t"), device="cpu").eval()
    model = SIITModel("siit-ioi", 0, bridge, draw_alignment(task, arch, 0), {})
    check = verify(model, n=64)
    assert not check.passed and check.min_iia < 0.5
    summary = check.summary()
    assert set(summary) >= {"iia", "non_circuit_retained", "min_node_effect", "passed"}
    good = Verification(1.0, {"a": 0.97}, 0.96, {"a": 0.5}, 64)
    assert good.passed
    for bad in (Verification(1.0, {"a": 0.94}, 0.96, {"a": 0.5}, 64),
                Verification(1.0, {"a": 0.97}, 0.94, {"a": 0.5}, 64),
                Verification(1.0, {"a": 0.97}, 0.96, {"a": 0.1}, 64)):
        assert not bad.passed


def test_stacked_gradients_match_the_bridge():
    """Training runs through the stacked forward pass: its gradients must be the bridge's
    (a written-out softmax once zeroed the gradient of each row's largest score)."""
    from transformer_lens import TransformerBridge

    task = get_siit_task("siit-histogram")
    arch = default_arch(task)
    bridge = TransformerBridge.boot_native(arch.bridge_config(2, "t"), device="cpu")
    with torch.no_grad():  # sharpen attention so that the largest scores matter
        for name, p in bridge.named_parameters():
            if ".q." in name or ".k." in name:
                p.mul_(8)
    bridge.eval()
    net = StackedTransformer(arch, from_bridges([bridge]))
    tokens = task.sample(8, torch.Generator().manual_seed(0))
    logits, _ = net(tokens[None])
    logits.logsumexp(-1).mean().backward()
    bridge(tokens).logsumexp(-1).mean().backward()
    params = dict(bridge.named_parameters())
    q = params["layers.1._original_component.attn._original_component.q._original_component.weight"]
    # float32 noise of two different kernels is ~3e-5 here; the bug this guards against
    # zeroed whole gradient entries of order 0.1
    assert torch.allclose(net.w["q_w"].grad[0, 1], q.grad, atol=1e-4, rtol=1e-3)
    emb = params["tok_embed._original_component.weight"]
    assert torch.allclose(net.w["embed"].grad[0], emb.grad, atol=1e-4, rtol=1e-3)


def test_shipped_models_match_the_current_training_settings():
    """The benchmark's models ship with the package; a change to their tasks or training must
    come with retrained ones (``make siit-models``), or every build would retrain them."""
    import json

    from mechinterp.checkpoints import checkpoint_key
    from mechinterp.siit import CONTROL, busy_attempt, strictness_control
    from mechinterp.siit.training import SIIT_SEEDS, _run_spec, shipped_paths, task_config

    # the benchmark's models, the record of the busy attempt and the negative control
    runs = [(name, seed, task_config(name)) for name in SIIT_TASKS for seed in SIIT_SEEDS]
    runs += [(name, seed, busy_attempt(name)) for name in SIIT_TASKS for seed in SIIT_SEEDS
             if busy_attempt(name) != task_config(name)]
    runs.append((*CONTROL, strictness_control(CONTROL[0])))
    for name, seed, config in runs:
        task = SIIT_TASKS[name]
        weights, sidecar = shipped_paths(name, seed, config)
        assert weights.exists() and sidecar.exists(), f"{name} seed {seed} is not shipped"
        meta = json.loads(sidecar.read_text())
        key = checkpoint_key(_run_spec(task, seed, default_arch(task), config, config.steps))
        assert meta["key"] == key, f"{name} seed {seed}: shipped for other settings"
        assert meta["alignment"] == draw_alignment(task, default_arch(task), seed)


def test_distractor_jobs_by_hand():
    task = get_siit_task("siit-ioi")
    arch = default_arch(task)
    alignment = draw_alignment(task, arch, 0)
    circuit = set(alignment.values())
    jobs = draw_distractor_jobs([alignment], [0], arch)
    assert set(jobs.describe(0, arch)) == set(component_names(arch)) - circuit
    tokens = task.sample(4, torch.Generator().manual_seed(0))[None]
    heads, mlps = distractor_targets(jobs, tokens)
    assert heads.shape == (1, arch.n_layers, 4, task.n_ctx, arch.n_heads)
    # the expected targets, written out position by position
    expected = torch.full_like(heads, IGNORE)
    offsets = set()
    for layer in range(arch.n_layers):
        for h in range(arch.n_heads):
            k = int(jobs.head_offset[0, layer, h])
            if f"L{layer}.H{h}" in circuit:
                assert k == 0  # a circuit head has no job
                continue
            offsets.add(k)
            for row in range(4):
                for pos in range(k, task.n_ctx):
                    expected[0, layer, row, pos, h] = tokens[0, row, pos - k]
        assert torch.equal(mlps[0, layer], jobs.mlp_table[0, layer][tokens[0]])
        assert bool(jobs.mlp_job[0, layer]) == (f"L{layer}.mlp" not in circuit)
    assert torch.equal(heads, expected)
    assert offsets == set(range(1, MAX_OFFSET + 1))  # every offset is exercised


def _weight_norms(bridge) -> tuple[torch.Tensor, torch.Tensor]:
    ov = torch.einsum("lhde,lhef->lhdf", bridge.W_V, bridge.W_O).detach().flatten(2).norm(dim=-1)
    return ov, bridge.W_out.detach().flatten(1).norm(dim=-1)


def test_held_norms_and_busy_components():
    """Training with head_norm/mlp_norm leaves every head's OV matrix and every MLP's W_out
    at one norm; the shipped models were trained that way, and their non-circuit components
    do their distractor jobs far better than chance."""
    task = get_siit_task("siit-histogram")
    config = SIITConfig(steps=4, batch_size=8, distractor_weight=1.0, head_norm=2.5,
                        mlp_norm=3.5)
    bridges, _, log = train_siit(task, [0], config=config)
    ov, out = _weight_norms(bridges[0])
    assert torch.allclose(ov, torch.full_like(ov, 2.5), atol=1e-4)
    assert torch.allclose(out, torch.full_like(out, 3.5), atol=1e-4)
    assert log["losses"]["distractor"] and log["distractor_jobs"][0]
    with pytest.raises(ConfigError, match="frozen component"):
        SIITConfig(freeze_others=True, distractor_weight=1.0)
    # a ramp starts the held norms at a quarter and reaches them when the ramp ends
    from mechinterp.siit.training import _hold_norms

    ramped = SIITConfig(head_norm=2.0, mlp_norm=4.0, norm_ramp=0.5)
    net = StackedTransformer(default_arch(task), from_bridges(bridges))
    for progress, share in ((0.0, 0.25), (0.25, 0.625), (0.5, 1.0), (0.9, 1.0)):
        _hold_norms(net, default_arch(task), ramped, progress)
        ov, out = _weight_norms(to_bridge({k: v.detach() for k, v in net.w.items()}, 0,
                                          bridges[0]))
        assert torch.allclose(ov, torch.full_like(ov, 2.0 * share), atol=1e-4), progress
        assert torch.allclose(out, torch.full_like(out, 4.0 * share), atol=1e-4), progress
    from mechinterp.siit import task_config

    busy = [name for name in SIIT_TASKS if task_config(name).distractor_weight]
    assert busy  # at least one task's shipped models are trained this way
    for name in busy:
        shipped = load_siit_models(name, [1])[0]
        config = shipped.meta["config"]
        ov, out = _weight_norms(shipped.model)
        assert torch.allclose(ov, torch.full_like(ov, config["head_norm"]), atol=1e-3)
        assert torch.allclose(out, torch.full_like(out, config["mlp_norm"]), atol=1e-3)
        arch = default_arch(SIIT_TASKS[name])
        jobs = draw_distractor_jobs([shipped.alignment], [1], arch)
        tokens = SIIT_TASKS[name].sample(64, torch.Generator().manual_seed(99))[None]
        net = StackedTransformer(arch, from_bridges([shipped.model]))
        with torch.no_grad():
            _, acts = net(tokens, keep=True)
            loss = float(distractor_loss(jobs, acts, net.w["o_w"], tokens))
        untrained = StackedTransformer(arch, from_bridges([
            type(shipped.model).boot_native(arch.bridge_config(1, name), device="cpu")]))
        with torch.no_grad():
            _, acts = untrained(tokens, keep=True)
            before = float(distractor_loss(jobs, acts, untrained.w["o_w"], tokens))
        assert loss < 0.5 * before, (name, loss, before)


def test_held_unembedding_and_every_shipped_model_at_its_norms():
    """unembed_norm holds the unembedding's norm; every shipped model trained with held norms
    has every head's OV matrix, every MLP's W_out and (where held) W_U at them, frozen
    non-circuit components included."""
    from mechinterp.siit import task_config

    task = get_siit_task("siit-induction")
    config = SIITConfig(steps=3, batch_size=8, freeze_others=True, head_norm=1.5, mlp_norm=1.5,
                        unembed_norm=1.5)
    bridge = train_siit(task, [0], config=config)[0][0]
    assert float(bridge.W_U.detach().norm()) == pytest.approx(1.5, abs=1e-4)
    ov, out = _weight_norms(bridge)
    assert torch.allclose(ov, torch.full_like(ov, 1.5), atol=1e-4)
    with pytest.raises(ConfigError, match="unembed_norm"):
        SIITConfig(unembed_norm=-1.0)
    held = [name for name in SIIT_TASKS if task_config(name).head_norm]
    assert {"siit-ioi", "siit-histogram"} <= set(held)
    for name in held:
        cfg = task_config(name)
        for shipped in load_siit_models(name):
            ov, out = _weight_norms(shipped.model)
            assert torch.allclose(ov, torch.full_like(ov, cfg.head_norm), atol=1e-3), name
            assert torch.allclose(out, torch.full_like(out, cfg.mlp_norm), atol=1e-3), name
            if cfg.unembed_norm:
                assert float(shipped.model.W_U.detach().norm()) == pytest.approx(
                    cfg.unembed_norm, abs=1e-3)


def test_distractor_probes_read_only_their_subspace():
    task = get_siit_task("siit-ioi")
    arch = default_arch(task)
    alignment = draw_alignment(task, arch, 0)
    full = draw_distractor_jobs([alignment], [0], arch)
    half = draw_distractor_jobs([alignment], [0], arch, rank=arch.d_model // 2)
    for probe in (half.head_probe, half.mlp_probe):
        rows = probe.reshape(-1, arch.d_model)
        assert int(torch.linalg.matrix_rank(rows)) == arch.d_model // 2
    assert int(torch.linalg.matrix_rank(full.head_probe.reshape(-1, arch.d_model))) == arch.d_model
    # rows keep about the norm of a full-rank probe's
    ratio = half.head_probe.norm(dim=-1).mean() / full.head_probe.norm(dim=-1).mean()
    assert 0.8 < float(ratio) < 1.2
    assert torch.equal(half.head_offset, full.head_offset)  # the same jobs
    with pytest.raises(ConfigError, match="distractor rank"):
        draw_distractor_jobs([alignment], [0], arch, rank=arch.d_model + 1)


def test_strictness_control_fails_verification():
    """The negative control: the same task, seed and settings without the strictness term.
    Its non-circuit components are free to help with the task, and verification must catch
    it (while the strictly trained model of the same seed passes)."""
    from mechinterp.siit import RETAINED_MIN
    from mechinterp.siit.training import CONTROL, strictness_control

    task, seed = CONTROL
    control = load_siit_models(task, [seed], config=strictness_control(task))[0]
    assert control.meta["config"]["strict_weight"] == 0
    strict = load_siit_models(task, [seed])[0]
    assert control.alignment == strict.alignment
    checked, reference = verify(control, n=256), verify(strict, n=256)
    assert reference.passed and not checked.passed
    assert checked.accuracy > 0.95  # it does the task...
    assert checked.non_circuit_retained < RETAINED_MIN  # ...but not only through its circuit
