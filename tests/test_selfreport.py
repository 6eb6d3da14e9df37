"""Neuron self-report: scanning, document splits, heads, strategies, baselines, config, pipeline.

The toy model is trained for a few steps only (the cache of a test session starts empty): the
tests check behaviour and bookkeeping, not how well a well-trained model reports itself.
"""

from __future__ import annotations

import math

import pytest
import torch

from mechinterp.bridge import copy_bridge
from mechinterp.errors import ConfigError, DataError, DataUnavailableError
from mechinterp.selfreport import (
    HEAD_TYPES,
    ActivationDatasetGenerator,
    ActivationPredictor,
    NeuronScanner,
    PredictorTrainer,
    SelfReportConfig,
    check_against_model,
    cross_prediction_baseline,
    fit_head,
    linear_probe_baseline,
    load_config,
    mean_baseline,
    mlp_probe_baseline,
    plot_scan,
    prepare,
    pretrained_documents,
    run_pipeline,
    score_predictions,
    token_lookup_baseline,
    toyworld_documents,
)
from mechinterp.selfreport.dataset import read_corpus
from mechinterp.toyworld import load_toy_model

TOY_STEPS = 20
LAYER = 1


@pytest.fixture(scope="module")
def toy():
    torch.manual_seed(0)
    return load_toy_model("toyworld-2l", steps=TOY_STEPS)


@pytest.fixture(scope="module")
def docs(toy):
    return toyworld_documents(toy.tokenizer, toy.spec.n_ctx, toy.spec.mixture)


@pytest.fixture(scope="module")
def dataset(toy, docs):
    return ActivationDatasetGenerator(toy.model, LAYER, [3, 7, 11], docs).generate(48, seed=5)


def test_scanner_statistics_dead_neurons_and_examples(toy, docs):
    model = copy_bridge(toy.model)
    fc_in = {n: p for n, p in model.named_parameters() if f"layers.{LAYER}." in n and "fc_in" in n}
    assert len(fc_in) == 2
    with torch.no_grad():  # neuron 0 of layer 1 can no longer move: gelu(0) everywhere
        for p in fc_in.values():
            p[0] = 0
    tokens = docs(24, torch.Generator().manual_seed(1))
    scanner = NeuronScanner(model, toy.tokenizer, layers=[LAYER], batch_size=10)
    stats = scanner.scan(tokens)[LAYER]
    _, cache = model.run_with_cache(tokens, names_filter=[f"blocks.{LAYER}.mlp.hook_post"])
    acts = cache[f"blocks.{LAYER}.mlp.hook_post"][:, 1:].reshape(-1, model.cfg.d_mlp)
    assert torch.allclose(stats.variance, acts.double().var(0, unbiased=False).float(),
                          rtol=1e-3, atol=1e-6)
    assert torch.allclose(stats.frequency, (acts > 0).float().mean(0), atol=1e-6)
    assert bool(stats.dead[0]) and int(stats.dead.sum()) == 1
    # kurtosis and selectivity recomputed from the activations and the current tokens
    a = acts.double()
    centred = a - a.mean(0)
    var = centred.pow(2).mean(0)
    live = var > 1e-12
    kurtosis = centred.pow(4).mean(0) / var.pow(2) - 3
    assert torch.allclose(stats.kurtosis[live], kurtosis[live].float(), rtol=1e-3, atol=1e-3)
    assert torch.all(stats.kurtosis[~live] == 0)
    current = tokens[:, 1:].reshape(-1)
    between = torch.zeros_like(var)
    for t in current.unique():
        rows = a[current == t]
        between += len(rows) * (rows.mean(0) - a.mean(0)).pow(2)
    selectivity = between / len(a) / var
    assert torch.allclose(stats.selectivity[live], selectivity[live].float(), atol=1e-4)
    assert torch.allclose(stats.context_variance, stats.variance * (1 - stats.selectivity),
                          atol=1e-6)
    assert float(selectivity[live].min()) < 0.9 < float(selectivity[live].max())
    picked = scanner.select(10, by="variance", layer=LAYER)
    assert (LAYER, 0) not in picked and len(picked) == 10
    assert [float(stats.variance[n]) for _, n in picked] == sorted(
        [float(stats.variance[n]) for _, n in picked], reverse=True)
    with pytest.raises(ConfigError, match="select_by must be one of"):
        scanner.select(3, by="loudness")
    top = scanner.top_examples(LAYER, picked[0][1], k=3)
    assert top[0].activation == pytest.approx(float(acts[:, picked[0][1]].max()), rel=1e-5)
    assert top[0].activation >= top[1].activation >= top[2].activation
    assert f"[[{top[0].token}]]" in top[0].context
    assert top[0].token == toy.tokenizer.decode([int(tokens[top[0].document, top[0].position])])
    marked = [n for _, n in picked[:3]]
    fig = plot_scan(stats, marked)
    (ax,) = fig.axes
    cloud, *points = ax.collections
    alive = ~stats.dead
    assert torch.allclose(torch.tensor(cloud.get_offsets().data, dtype=torch.float32),
                          torch.stack([stats.selectivity[alive], stats.variance[alive]], 1))
    assert [tuple(p.get_offsets()[0]) for p in points] == [
        pytest.approx((float(stats.selectivity[n]), float(stats.variance[n]))) for n in marked]
    assert [t.get_text() for t in ax.texts] == [str(n) for n in marked]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("selectivity", "variance")
    assert ax.get_title() == f"MLP neurons of layer {LAYER} (1 dead dropped)"
    assert ax.get_legend().get_texts()[0].get_text() == f"{int(alive.sum())} live neurons"
    with pytest.raises(ConfigError, match="y must be one of"):
        plot_scan(stats, y="loudness")


def test_distinct_selection_skips_near_copies(toy, docs):
    tokens = docs(24, torch.Generator().manual_seed(2))
    scanner = NeuronScanner(toy.model, toy.tokenizer, layers=[LAYER], batch_size=10)
    scanner.scan(tokens)
    ranked = scanner.select(6, by="variance", layer=LAYER)
    distinct = scanner.select(6, by="variance", layer=LAYER, max_correlation=0.5)
    assert distinct[0] == ranked[0]
    with torch.no_grad():
        _, cache = toy.model.run_with_cache(tokens,
                                            names_filter=[f"blocks.{LAYER}.mlp.hook_post"])
    acts = cache[f"blocks.{LAYER}.mlp.hook_post"][:, 1:].reshape(-1, toy.model.cfg.d_mlp)
    corr = torch.corrcoef(acts.T.double()).abs()
    kept = [n for _, n in distinct]
    assert float(corr[kept][:, kept].fill_diagonal_(0).max()) <= 0.5 + 1e-6
    # each neuron the walk passed over correlates above the bound with one kept before it
    order = [n for _, n in scanner.select(256, by="variance", layer=LAYER)]
    passed = [n for n in order[:order.index(kept[-1])] if n not in kept]
    assert passed, "the bound should have skipped at least one neuron"
    for n in passed:
        earlier = [m for m in kept if order.index(m) < order.index(n)]
        assert float(corr[n, earlier].max()) > 0.5
    with pytest.raises(ConfigError, match="max_correlation must lie in"):
        scanner.select(2, max_correlation=1.5)
    with pytest.raises(ConfigError, match="correlate at most"):
        scanner.select(200, layer=LAYER, max_correlation=1e-4)


def test_documents_are_split_without_leakage_and_deterministically(toy, docs, dataset):
    train, test = set(dataset.train_ids.tolist()), set(dataset.test_ids.tolist())
    assert not train & test and train | test == set(dataset.document_ids.tolist())
    assert len(test) == round(len(dataset.tokens) * 0.25)
    rows_train, rows_test = dataset.examples("train"), dataset.examples("test")
    assert not set(rows_train["document"].tolist()) & set(rows_test["document"].tolist())
    assert len(rows_test["target"]) == len(test) * (toy.spec.n_ctx - 1)
    train_docs = {tuple(r) for r in dataset.split("train")[0].tolist()}
    assert not train_docs & {tuple(r) for r in dataset.split("test")[0].tolist()}
    again = ActivationDatasetGenerator(toy.model, LAYER, [3, 7, 11], docs).generate(48, seed=5)
    assert torch.equal(again.tokens, dataset.tokens) and torch.equal(again.test_ids,
                                                                     dataset.test_ids)
    assert torch.allclose(again.targets, dataset.targets)
    other = ActivationDatasetGenerator(toy.model, LAYER, [3, 7, 11], docs).generate(48, seed=6)
    assert not torch.equal(other.tokens, dataset.tokens)


def test_repeated_documents_are_dropped_before_the_split(toy, docs):
    def repeating(n, generator):
        half = docs((n + 1) // 2, generator)
        return torch.cat([half, half])[:n]

    data = ActivationDatasetGenerator(toy.model, LAYER, [0], repeating).generate(40, seed=0)
    assert data.duplicates_dropped == 20 and len(data.tokens) == 20
    train = {tuple(r) for r in data.split("train")[0].tolist()}
    assert not train & {tuple(r) for r in data.split("test")[0].tolist()}


@pytest.mark.parametrize("bad, message", [
    ({"nuerons": [1]}, r"unknown config field\(s\) \['nuerons'\]; allowed fields: \[.*'neurons'"),
    ({"neurons": [3, 999]}, r"neurons \[999\] are out of range: neurons must lie in \[0, 255\]"),
    ({"heads": ["regression", "poetry"]}, r"heads must be .*'classification', 'token'.*poetry"),
    ({"strategy": "thaw"}, r"strategy must be one of \['head', 'last_k', 'gradual', 'full'\]"),
    ({"layer": 4}, r"layer must lie in \[0, 1\]"),
    ({"unfreeze_k": 3}, r"unfreeze_k must lie in \[1, 2\]"),
    ({"steps": 0}, r"steps must be an integer >= 1"),
    ({"model": "attn-only-2l"}, r"no MLP layers"),
    ({"cross_model": "attn-only-2l"}, r"cross_model .attn-only-2l. must share"),
    ({"lm_weight": -0.5}, r"lm_weight must be a number >= 0, got -0.5"),
    ({"max_correlation": 0}, r"max_correlation must lie in \(0, 1\] or be null"),
])
def test_config_errors_are_raised_before_any_work(monkeypatch, bad, message):
    def no_work(*args, **kwargs):
        raise AssertionError("a model was loaded before the config was validated")

    monkeypatch.setattr("mechinterp.selfreport.pipeline.load_subject", no_work)
    with pytest.raises(ConfigError, match=message):
        run_pipeline(bad)


def test_config_from_json_file_and_wandb_without_the_package(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    path.write_text('{"neurons": [1, 2], "heads": "token", "steps": 7}')
    config = load_config(path)
    assert config.neurons == (1, 2) and config.heads == ("token",) and config.steps == 7
    assert check_against_model(config).d_mlp == 256
    monkeypatch.setattr("mechinterp.selfreport.config.importlib.util.find_spec", lambda n: None)
    with pytest.raises(ConfigError, match="wandb is true but the wandb package is not installed"):
        SelfReportConfig(wandb=True)


def test_token_head_answers_through_the_models_own_unembedding(toy, dataset):
    model = copy_bridge(toy.model)
    predictor = ActivationPredictor.for_dataset(model, dataset, "token", n_bins=6,
                                                tokenizer=toy.tokenizer)
    ids = predictor.bin_tokens
    assert ids.shape == (3, 6) and len(ids.unique()) == 18
    assert int(ids.min()) >= 0 and int(ids.max()) < model.cfg.d_vocab
    assert toy.tokenizer.decode(ids[0, :3]) == "t00 t01 t02"  # answer words of the vocabulary
    assert predictor.readout is None
    assert {id(p) for p in predictor.head_parameters()} == {id(p) for p in
                                                           model.unembed.parameters()}
    tokens = dataset.tokens[:4]
    found = {}
    # by default it answers from just before the neurons' MLP, through the final norm and
    # the unembedding (a logit lens), not from the output the neurons already fed
    assert predictor.residual_hook == f"blocks.{dataset.layer}.hook_resid_mid"
    with torch.no_grad():
        out = predictor(tokens)
        model.run_with_hooks(tokens, fwd_hooks=[(predictor.residual_hook,
                                                 lambda a, hook: found.setdefault("r", a))])
        logits = model.ln_final(found["r"]) @ model.W_U + model.b_U
    assert torch.allclose(out.logits, logits[..., ids], atol=1e-5)
    expected = (out.logits.softmax(-1) * predictor.bin_values).sum(-1)
    assert torch.allclose(out.prediction, expected, atol=1e-6)
    # read at the last block's output, the lens is the model's own output
    last = ActivationPredictor.for_dataset(
        model, dataset, "token", n_bins=6, tokenizer=toy.tokenizer,
        read_hook=f"blocks.{model.cfg.n_layers - 1}.hook_resid_post")
    with torch.no_grad():
        out = last(tokens)
    assert torch.allclose(out.logits, out.model_logits[..., ids], atol=1e-5)


@pytest.mark.parametrize("hook", ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post",
                                  "blocks.1.hook_resid_mid"])
def test_linear_heads_read_exactly_the_configured_hook(toy, dataset, hook):
    model = copy_bridge(toy.model)
    for head in ("regression", "classification"):
        predictor = ActivationPredictor.for_dataset(model, dataset, head, n_bins=4,
                                                    read_hook=hook)
        tokens = dataset.tokens[:3]
        with torch.no_grad():
            out = predictor(tokens)
            _, cache = model.run_with_cache(tokens, names_filter=hook)
            raw = predictor.readout(cache[hook])
        got = out.raw if head == "regression" else out.logits.flatten(-2)
        assert torch.allclose(got, raw, atol=1e-5), (head, hook)


def test_a_read_point_after_the_neurons_is_refused_unless_allowed():
    from mechinterp.selfreport.config import leaks, load_config

    layer = 1  # the last MLP of toyworld-2l
    assert check_against_model(SelfReportConfig(layer=layer)).n_layers == 2  # default: resid_mid
    for hook in ("blocks.1.hook_resid_post",):
        with pytest.raises(ConfigError, match="already holds what the reported neurons wrote"):
            check_against_model(SelfReportConfig(layer=layer, read_hook=hook))
        check_against_model(SelfReportConfig(layer=layer, read_hook=hook, allow_leak=True))
    assert [leaks(f"blocks.{b}.hook_resid_{p}", 0) for b in (0, 1) for p in ("pre", "mid", "post")
            ] == [False, False, True, True, True, True]
    with pytest.raises(ConfigError, match="read_hook must be"):
        SelfReportConfig(read_hook="blocks.1.attn.hook_z")
    with pytest.raises(ConfigError, match="read_hook must name a block"):
        check_against_model(SelfReportConfig(read_hook="blocks.5.hook_resid_pre"))
    with pytest.raises(ConfigError, match="read_layer was replaced by read_hook"):
        load_config({"read_layer": 0})


def test_head_strategy_leaves_the_neurons_where_they_were(toy, dataset):
    before = {n: p.detach().clone() for n, p in toy.model.named_parameters()}
    model = copy_bridge(toy.model)
    trainer = PredictorTrainer(ActivationPredictor.for_dataset(model, dataset, "token",
                                                               n_bins=4, tokenizer=toy.tokenizer),
                               dataset, strategy="head", steps=6, lr=1e-2, head_lr=5e-2)
    trainer.train()
    result = trainer.evaluate()
    assert result["drift"] == pytest.approx(0, abs=1e-5)
    assert result["relative_change"] == pytest.approx(0, abs=1e-5)
    assert result["pearson_r_live"] == pytest.approx(result["pearson_r"], abs=1e-5)
    assert result["r2_live"] == pytest.approx(result["r2"], abs=1e-4)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("head" in n or "unembed" in n for n in changed)  # only W_U moved
    full = PredictorTrainer(ActivationPredictor.for_dataset(copy_bridge(toy.model), dataset,
                                                            "regression"),
                            dataset, strategy="full", steps=6, lr=3e-2, anchor_weight=0.0)
    full.train()
    assert full.evaluate()["relative_change"] > 1e-3  # the neurons moved


def test_language_modelling_and_anchor_terms(toy, dataset):
    def trained(**weights):
        predictor = ActivationPredictor.for_dataset(copy_bridge(toy.model), dataset,
                                                    "regression")
        trainer = PredictorTrainer(predictor, dataset, strategy="full", steps=8, lr=3e-2,
                                   **weights)
        trainer.train()
        return trainer

    plain = trained(lm_weight=0.0, anchor_weight=0.0)
    mixed = trained(lm_weight=0.5, anchor_weight=0.0)
    for record in mixed.history:  # the logged loss is the weighted sum of its two terms
        assert record["loss"] == pytest.approx(record["report_loss"] + 0.5 * record["lm_loss"],
                                               rel=1e-5)
    assert all(r["loss"] == pytest.approx(r["report_loss"]) for r in plain.history)
    anchored = trained(lm_weight=0.0, anchor_weight=50.0)
    assert (anchored.evaluate()["relative_change"]  # deterministic: 1.00 against 1.67
            < 0.7 * plain.evaluate()["relative_change"])
    with pytest.raises(ConfigError, match="lm_weight must be a number >= 0"):
        PredictorTrainer(plain.predictor, dataset, lm_weight=-1)
    with pytest.raises(ConfigError, match="anchor_weight must be a number >= 0"):
        PredictorTrainer(plain.predictor, dataset, anchor_weight="lots")


def test_gradual_unfreezes_from_the_top(toy, dataset):
    predictor = ActivationPredictor.for_dataset(copy_bridge(toy.model), dataset, "regression")
    trainer = PredictorTrainer(predictor, dataset, strategy="gradual", steps=8)
    assert [trainer.n_unfrozen(s) for s in range(8)] == [1, 1, 2, 2, 3, 3, 4, 4]
    groups = trainer.parameter_groups()
    assert groups[0] == list(predictor.readout.parameters())
    assert {id(p) for p in groups[1]} >= {id(p) for p in predictor.model.blocks[1].parameters()}
    last_k = PredictorTrainer(predictor, dataset, strategy="last_k", unfreeze_k=1, steps=8)
    names = last_k.trained_parameter_names()
    assert any("blocks.1." in n for n in names) and not any("blocks.0." in n for n in names)


def test_baselines_are_scored_on_the_same_test_rows(toy, dataset):
    targets = dataset.flat_targets("test")
    hook = f"blocks.{LAYER}.hook_resid_post"
    results = [mean_baseline(dataset), token_lookup_baseline(dataset),
               linear_probe_baseline(toy.model, dataset, hook)]
    for result in results:
        assert result.prediction.shape == targets.shape
        assert result.scores["n_rows"] == len(targets)
        assert result.scores["pearson_r"] == pytest.approx(
            score_predictions(result.prediction, targets)["pearson_r"], abs=1e-6)
    # the mean baseline: no correlation, and an R² that is 1 - SS_res / SS_tot of the training
    # mean on the test rows, per neuron (below 0 by as much as the two means differ)
    train_mean = dataset.flat_targets("train").mean(0)
    ss_res = (targets - train_mean).pow(2).sum(0)
    ss_tot = (targets - targets.mean(0)).pow(2).sum(0)
    assert results[0].scores["pearson_r"] == 0.0
    assert results[0].scores["r2"] == pytest.approx(float((1 - ss_res / ss_tot).mean()),
                                                    rel=1e-4)
    assert results[0].scores["r2"] < 0
    # the neurons are columns of their own layer's activations: a probe there is exact
    exact = linear_probe_baseline(toy.model, dataset, f"blocks.{LAYER}.mlp.hook_post")
    assert exact.scores["pearson_r"] > 0.999


def test_mlp_probe_computes_what_a_linear_probe_cannot(toy, dataset):
    # just before the MLP the neurons are a layer norm, a linear map and a GELU of the
    # stream: the nonlinear probe can follow that, a linear one cannot
    hook = f"blocks.{LAYER}.hook_resid_mid"
    linear = linear_probe_baseline(toy.model, dataset, hook)
    mlp = mlp_probe_baseline(toy.model, dataset, hook, steps=600)
    assert mlp.prediction.shape == dataset.flat_targets("test").shape
    assert mlp.scores["pearson_r"] > linear.scores["pearson_r"] + 0.02
    assert mlp.scores["pearson_r"] > 0.95
    assert 50 <= mlp.details["step"] <= 600 and mlp.details["step"] % 50 == 0
    again = mlp_probe_baseline(toy.model, dataset, hook, steps=600)
    assert torch.equal(again.prediction, mlp.prediction)  # seeded
    with pytest.raises(ConfigError, match="validation_fraction"):
        mlp_probe_baseline(toy.model, dataset, hook, validation_fraction=1.0)
    with pytest.raises(ConfigError, match="hidden and steps"):
        mlp_probe_baseline(toy.model, dataset, hook, hidden=0)


def test_cross_prediction_trains_without_an_anchor(toy, dataset, monkeypatch):
    seen = {}

    def record(trainer, run, retrain=False):
        seen.update(anchor=trainer.anchor_weight, lm=trainer.lm_weight, role=run["role"])
        return {"history": [], "train_seconds": 0.0, "cached": False}

    monkeypatch.setattr("mechinterp.selfreport.baselines.train_predictor", record)
    result = cross_prediction_baseline(copy_bridge(toy.model), dataset, "regression",
                                       {"steps": 2, "anchor_weight": 10.0, "lm_weight": 0.5},
                                       {"model": "other"})
    assert seen == {"anchor": 0.0, "lm": 0.5, "role": "cross"}
    assert result.prediction.shape == dataset.flat_targets("test").shape


def test_pipeline_end_to_end(toy):
    config = {"model_steps": TOY_STEPS, "k": 2, "steps": 4, "n_documents": 24,
              "scan_documents": 8, "n_bins": 4, "cross_model_steps": 4, "batch_size": 4}
    result = run_pipeline(config)
    for key in ("pearson_r", "r2", "pearson_r_live", "best_head", "heads", "baselines", "drift",
                "table", "seconds", "neurons", "neuron_stats", "dataset", "beats_linear_probe"):
        assert key in result, key
    assert set(result["heads"]) == set(HEAD_TYPES) == set(result["drift"])
    assert set(result["baselines"]) == {"mean", "token_lookup", "linear_probe", "mlp_probe",
                                        "frozen_model", "cross_prediction"}
    assert set(result["baselines"]["cross_prediction"]) == set(HEAD_TYPES)
    frozen = result["baselines"]["frozen_model"]
    assert set(frozen) == set(HEAD_TYPES)
    assert all(f["drift"] == pytest.approx(0, abs=1e-5) for f in frozen.values())
    assert len(result["neurons"]) == 2
    # the headline head is the best on the training documents, whatever the test split says
    train_r = result["best_head_train_r"]
    assert set(train_r) == set(HEAD_TYPES) and train_r[result["best_head"]] == max(train_r.values())
    assert result["pearson_r"] == result["heads"][result["best_head"]]["pearson_r"]
    assert result["beats_frozen_head"] == (
        result["pearson_r"] > result["baselines"]["frozen_model"][result["best_head"]]["pearson_r"])
    assert result["beats_mlp_probe"] == (
        result["pearson_r"] > result["baselines"]["mlp_probe"]["pearson_r"])
    assert len(result["table"]) == 3 + 4 + 3 + 3
    again = run_pipeline(config)  # every predictor now comes from the cache
    assert all(h["cached"] for h in again["heads"].values())
    assert again["pearson_r"] == pytest.approx(result["pearson_r"], abs=1e-6)
    prep = prepare(config)  # the pieces the pipeline is made of give the same runs
    assert prep.neurons == result["neurons"]
    # the headline r is the best head's score on the test split, recomputed here from that
    # head's own predictions
    best, _ = fit_head(prep, result["best_head"])
    prediction, _ = best.predict("test")
    assert result["pearson_r"] == pytest.approx(
        score_predictions(prediction, prep.dataset.flat_targets("test"))["pearson_r"], abs=1e-6)
    trainer, scores = fit_head(prep, "regression", strategy="head")
    assert scores["cached"] and trainer.strategy == "head"
    assert scores["pearson_r"] == pytest.approx(
        result["baselines"]["frozen_model"]["regression"]["pearson_r"], abs=1e-6)
    with pytest.raises(ConfigError, match=r"unknown trainer setting\(s\) \['stratgy'\]"):
        fit_head(prep, "regression", stratgy="head")


def test_gpt2_standin_builds_a_dataset(tmp_path):
    from gpt2_standin import save_standin

    from mechinterp.pretrained import load_pretrained, natural_corpus

    _, tokenizer = save_standin(tmp_path, natural_corpus(), n_head=2, n_embd=32, n_positions=32,
                                vocab_size=2000)
    shape = check_against_model(SelfReportConfig(model=str(tmp_path), neurons=(5,)))
    assert (shape.n_layers, shape.d_mlp, shape.n_ctx) == (2, 128, 32)
    with pytest.raises(ConfigError, match=r"neurons must lie in \[0, 127\]"):
        check_against_model(SelfReportConfig(model=str(tmp_path), neurons=(128,)))
    model = load_pretrained(str(tmp_path), device="cpu")
    source = pretrained_documents(tokenizer, 16)
    data = ActivationDatasetGenerator(model, 1, [5, 9], source).generate(12, seed=0)
    assert data.tokens.shape == (12, 16) and data.duplicates_dropped > 0  # repeated sentences
    assert data.targets.shape == (len(data.tokens), 16, 2)
    assert torch.all(data.tokens[:, 0] == tokenizer.bos_token_id)
    assert data.flat_targets("test").shape == (len(data.test_ids) * 15, 2)
    result = run_pipeline({"model": str(tmp_path), "k": 1, "steps": 2, "n_documents": 12,
                           "scan_documents": 4, "n_bins": 3, "n_ctx": 16,
                           "heads": ["regression", "token"]})
    assert set(result["heads"]) == {"regression", "token"} and result["layer"] == 1
    assert "skipped" in result["baselines"]["cross_prediction"]


def test_english_corpus_has_no_sentence_in_both_splits(tmp_path):
    from gpt2_standin import save_standin

    from mechinterp.pretrained import natural_corpus
    from mechinterp.selfreport.dataset import TextCorpus, english_sentences

    _, tokenizer = save_standin(tmp_path, natural_corpus(), n_head=2, n_embd=32, n_positions=32,
                                vocab_size=2000)
    source = pretrained_documents(tokenizer, 16, test_fraction=0.25, seed=3)
    train, test = set(source.documents["train"]), set(source.documents["test"])
    assert train and test and not train & test
    assert len(train) + len(test) == len({" ".join(t.split()) for t in english_sentences(
        tokenizer)})
    # windows of each split are cut from that split's sentences only
    decoded = {split: tokenizer.decode(source.streams[split].tolist())
               for split in ("train", "test")}
    windows = source.windows("test", 20, torch.Generator().manual_seed(0))
    assert all(tokenizer.decode(w[1:].tolist()) in decoded["test"] for w in windows)
    with pytest.raises(DataError, match="fewer than the"):
        source.windows("test", source.available("test") + 1, torch.Generator())
    assert all(sentence not in decoded["train"] for sentence in list(test)[:50])
    # a corpus file: documents separated by blank lines, deduplicated, split by document
    corpus = tmp_path / "notes.txt"
    corpus.write_text("the cat sat on the mat\n\nthe dog ran home\n\nthe cat sat on the mat\n\n"
                      "a bird sang in the tree")
    texts = TextCorpus(read_corpus(corpus), tokenizer, 4, test_fraction=0.34, seed=0)
    assert texts.duplicates_dropped == 1
    assert len(texts.documents["train"]) + len(texts.documents["test"]) == 3
    with pytest.raises(DataError, match="does not exist"):
        read_corpus(tmp_path / "missing.txt")


def test_config_corpus_field(tmp_path):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "a.txt").write_text("one document")
    config_file = tmp_path / "run.json"
    config_file.write_text('{"model": "gpt2-small", "corpus": "docs"}')
    loaded = load_config(config_file)  # relative to the config file
    assert loaded.corpus == str(corpus)
    with pytest.raises(ConfigError, match="corpus must be an existing text file or folder"):
        SelfReportConfig(corpus=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="corpus applies to pretrained models"):
        check_against_model(SelfReportConfig(corpus=str(corpus)))


def test_gpt2_small_is_gpt2(monkeypatch):
    from transformers import AutoConfig

    asked = []

    def fake(name, *args, **kwargs):
        asked.append(name)
        raise OSError("offline")

    monkeypatch.setattr(AutoConfig, "from_pretrained", fake)
    with pytest.raises(DataUnavailableError):
        check_against_model(SelfReportConfig(model="gpt2-small"))
    assert asked == ["gpt2"]


def test_cli_parses_overrides_and_rejects_bad_ones(monkeypatch):
    from mechinterp.cli import build_parser
    from mechinterp.selfreport import cli_command

    parser = build_parser()
    seen = {}
    monkeypatch.setattr("mechinterp.selfreport.pipeline.run_pipeline",
                        lambda fields, retrain=False: seen.update(fields) or {"ok": True})
    args = parser.parse_args(["self-report", "--set", "neurons=[1, 2]", "--set",
                              "strategy=full", "--json"])
    assert args.func(args) == {"ok": True}
    assert seen == {"neurons": [1, 2], "strategy": "full"}
    with pytest.raises(ConfigError, match="--set takes FIELD=VALUE"):
        cli_command(parser.parse_args(["self-report", "--set", "steps"]))


@pytest.mark.parametrize("name", ["toy", "gpt2-small", "custom-corpus"])
def test_shipped_configs_load_and_read_before_the_neurons(name):
    from pathlib import Path

    from mechinterp.selfreport.config import leaks, read_hook_for

    path = Path(__file__).parents[1] / "configs" / "selfreport" / f"{name}.json"
    config = load_config(path)
    layer = config.layer if config.layer is not None else 1
    assert not leaks(read_hook_for(config, layer), layer)
    if name == "toy":  # the toy config is the default every self-report page runs
        import dataclasses

        shape = check_against_model(config)
        assert config.layer == shape.n_layers - 1
        assert config.read_hook == read_hook_for(SelfReportConfig(), config.layer)
        assert dataclasses.replace(config, layer=None, read_hook=None) == SelfReportConfig()
    if name == "custom-corpus":
        assert Path(config.corpus).is_file() and len(read_corpus(config.corpus)) >= 10
    if name == "gpt2-small":
        assert config.model == "gpt2-small" and config.cross_model == "gpt2-medium"


def test_quantile_bins_by_hand():
    from mechinterp.selfreport.predictor import assign_bins, quantile_bins

    values = torch.stack([torch.arange(8.0), torch.ones(8)], dim=1)
    edges, centres = quantile_bins(values, 4)
    assert torch.allclose(edges[0], torch.tensor([1.75, 3.5, 5.25]))
    assert torch.allclose(centres[0], torch.tensor([0.5, 2.5, 4.5, 6.5]))
    # a constant neuron: every value in the first bin, empty bins take their edge
    assert torch.allclose(centres[1], torch.ones(4))
    assert assign_bins(values, edges)[:, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ConfigError, match="n_bins must be at least 2"):
        quantile_bins(values, 1)


def test_classification_loss_is_cross_entropy_over_the_bins(toy):
    import math

    from mechinterp.selfreport.predictor import PredictorOutput

    predictor = ActivationPredictor(
        copy_bridge(toy.model), LAYER, [0], "classification",
        bin_edges=torch.tensor([[1.75, 3.5, 5.25]]),
        bin_values=torch.tensor([[0.5, 2.5, 4.5, 6.5]]))
    targets = torch.tensor([[[9.0], [0.0], [7.0]]])  # position 0 (<bos>) is not an example

    def loss(logits):
        out = PredictorOutput(torch.zeros(1, 3, 1), logits, None, torch.zeros(1, 3, 1), None)
        return float(predictor.loss(out, targets))

    assert loss(torch.zeros(1, 3, 1, 4)) == pytest.approx(math.log(4), rel=1e-5)
    right = torch.zeros(1, 3, 1, 4)
    right[0, 1, 0, 0] = right[0, 2, 0, 3] = 30.0  # the bins of 0 and 7
    assert loss(right) < 1e-6
    wrong = torch.zeros(1, 3, 1, 4)
    wrong[0, 1, 0, 3] = wrong[0, 2, 0, 0] = 30.0
    assert loss(wrong) == pytest.approx(30.0, rel=1e-3)


def test_drift_by_hand():
    from mechinterp.selfreport.scores import activation_drift

    before = torch.tensor([[1.0], [2.0], [3.0]])
    affine = activation_drift(before, 2 * before + 1)  # same up to an affine map: no drift
    assert affine["drift"] == pytest.approx(0.0, abs=1e-9)
    assert affine["relative_change"] == pytest.approx(math.sqrt(29 / 14))
    flipped = activation_drift(before, -before)
    assert flipped["drift"] == pytest.approx(2.0) and flipped["correlation"] == pytest.approx(-1)


def test_auto_cross_model_for_pretrained_models(monkeypatch, tmp_path):
    from mechinterp.selfreport import pipeline

    assert pipeline.auto_cross_model("gpt2-small") == "gpt2-medium"
    assert pipeline.auto_cross_model("gpt2-medium") == "gpt2"
    assert pipeline.auto_cross_model(str(tmp_path)) is None

    def absent(name, **kwargs):
        raise DataUnavailableError(f"{name} is not on disk")

    monkeypatch.setattr(pipeline, "load_subject", absent)
    other, why = pipeline._cross_subject(SelfReportConfig(model="gpt2"), subject=None)
    assert other is None and "'gpt2-medium' is not available here" in why
    other, why = pipeline._cross_subject(SelfReportConfig(model=str(tmp_path)), subject=None)
    assert other is None and "no other model is known" in why


@pytest.mark.parametrize(("hook", "first_block"), [("blocks.0.hook_resid_mid", 0),
                                                   ("blocks.1.hook_resid_pre", 0),
                                                   ("blocks.1.hook_resid_mid", 1)])
def test_unfreezing_starts_at_the_read_point(toy, dataset, hook, first_block):
    predictor = ActivationPredictor.for_dataset(copy_bridge(toy.model), dataset, "regression",
                                                read_hook=hook)
    trainer = PredictorTrainer(predictor, dataset, strategy="last_k", unfreeze_k=1, steps=1)
    groups = trainer.parameter_groups()
    assert len(groups) == len(predictor.model.blocks) + 2 and trainer.n_unfrozen(0) == 2
    block = {id(p) for p in predictor.model.blocks[first_block].parameters()}
    assert block <= {id(p) for p in groups[1]}
    # the report's own loss reaches the first unfrozen group (it feeds the read point)
    out = predictor(dataset.tokens[:4])
    predictor.loss(out, dataset.targets[:4]).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in groups[1]
               if id(p) in block)
