"""The benchmark scripts' own arithmetic and options (their figures come from running them, not from tests)."""

from pathlib import Path

import pytest

from benchmarks.adaptation import pair_config
from benchmarks.embedding_backends import main as embedding_backends_main
from benchmarks.int8_settings import dev_sample
from benchmarks.int8_settings import main as int8_settings_main
from benchmarks.sweep import ratios
from benchmarks.throughput import main as throughput_main
from benchmarks.throughput import median_run, paired_ratios
from tasks.errors import ConfigError


def test_each_variant_reports_its_median_round_and_every_rounds_figure():
    runs = [{"ex_per_s": 7.0, "round": 1}, {"ex_per_s": 6.0, "round": 2}, {"ex_per_s": 8.0, "round": 3}]
    assert median_run(runs) == {"ex_per_s": 7.0, "round": 1, "ex_per_s_runs": [7.0, 6.0, 8.0]}
    assert median_run(runs[:2])["ex_per_s"] == 6.0  # an even count takes the lower middle: never flatters


def test_ratios_pair_the_engine_with_the_naive_loop_of_the_same_round():
    runs = {"naive": [{"ex_per_s": 4.0}, {"ex_per_s": 3.0}], "engine": [{"ex_per_s": 8.0}, {"ex_per_s": 7.5}]}
    assert paired_ratios(runs) == [2.0, 2.5]


def test_the_throughput_benchmark_refuses_a_device_torch_does_not_see_in_one_line(tmp_path, capsys):
    assert throughput_main(["--data", str(tmp_path), "--device", "cuda:99"]) == 1  # no machine has GPU 99
    error = capsys.readouterr().err
    assert error.startswith("throughput benchmark: --device: train.device: cuda:99 asked for") and error.count("\n") == 1


def test_a_data_directory_without_the_two_domains_is_one_line_naming_the_missing_file(tmp_path, capsys):
    (tmp_path / "books.csv").write_text("text,label\n")
    assert throughput_main(["--data", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error == f"throughput benchmark: {tmp_path / 'kitchen.csv'} not found; pass --data a directory with " \
                    "books.csv and kitchen.csv (the Multi-Domain Sentiment Dataset's format)\n"


def test_a_negative_warm_up_is_refused_before_anything_runs(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        throughput_main(["--data", str(tmp_path), "--warmup", "-1"])
    assert stopped.value.code == 2 and "--warmup: '-1' is not a whole number >= 0" in capsys.readouterr().err



def test_the_embedding_backends_benchmark_refuses_zero_rounds_before_anything_runs(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        embedding_backends_main(["--repeats", "0", "--json", str(tmp_path / "out.json")])
    assert stopped.value.code == 2 and "--repeats 0: needs at least 1 round" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()

LONE = {"learning_rate-3e-5_seed-0": 20.0, "learning_rate-3e-5_seed-1": 20.0, "learning_rate-5e-5_seed-0": 30.0,
        "learning_rate-5e-5_seed-1": 30.0}


def test_int8_dev_texts_are_drawn_from_the_whole_pool_not_its_head_where_one_label_comes_first():
    pool = [f"positive {i}" for i in range(800)] + [f"negative {i}" for i in range(743)]  # a file's label order
    texts = dev_sample(pool, 1000)
    assert len(texts) == len(set(texts)) == 1000 and texts == dev_sample(pool, 1000)
    negatives = sum(text.startswith("negative") for text in texts)
    assert 430 <= negatives <= 530  # about 743/1543 of them; the first 1,000 would hold 200
    assert dev_sample(pool[:10], 1000) == pool[:10]


def test_int8_settings_will_not_add_rows_to_figures_measured_on_the_pools_head(tmp_path, capsys):
    old = tmp_path / "settings.json"
    old.write_text('{"texts": 1000, "pairs": {}}')  # written before the seeded sample
    assert int8_settings_main(["--json", str(old), "--work", str(tmp_path / "missing")]) == 1
    assert f"{old} was measured on the first texts of each pool" in capsys.readouterr().err
    assert old.read_text() == '{"texts": 1000, "pairs": {}}'


def test_int8_settings_refuses_variant_letters_it_does_not_have_in_one_line(tmp_path, capsys):
    assert int8_settings_main(["--variants", "Z", "--work", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("int8 settings: --variants Z: name some of A,B,") and error.count("\n") == 1


def test_the_sweep_benchmark_reports_the_speed_up_and_what_the_machinery_adds_to_the_candidates_lone_time():
    figures = {"sweep_s": {1: 120.0, 2: 66.0}, "candidates": 4, "lone_shared_s": 10.0, "lone_candidates_s": LONE}
    # 1 worker: 120 s = 10 s shared + 100 s of candidates alone + 10 s of machinery: 10 % of the candidates' time
    assert ratios(figures) == {"speedup_2_workers": 1.818, "overhead_per_candidate_pct": 10.0}


def test_adaptation_variants_override_the_benchmark_config(tmp_path):
    config = pair_config(Path("data"), "books", "kitchen", "small", 1, tmp_path,
                         ("strategy.target_weight=5", "train.device=cpu",
                          "strategy.shift_strategies=[class_balance,pseudo_labeling]"))
    assert config.strategy.target_weight == 5 and config.train.device == "cpu"
    assert config.strategy.shift_strategies == ["class_balance", "pseudo_labeling"]
    assert (config.model.max_length, config.train.epochs, config.split.seed) == (128, 1, 1)


def test_a_bad_adaptation_override_is_a_config_error():
    with pytest.raises(ConfigError, match="strategy.shift_strategies"):
        pair_config(Path("data"), "books", "kitchen", "small", 0, Path("out"), ("strategy.shift_strategies=[nope]",))


def test_the_dev_split_comes_from_the_targets_training_part_and_no_method_sees_a_test_text(tmp_path):
    from benchmarks.adaptation import DEV_SIZE, dev_config
    from tasks.loading import load_roles
    from tests.conftest import SAMPLE

    config = pair_config(SAMPLE, "books", "kitchen", "small", 0, tmp_path, ("split.target_test_size=100", "split.source_test_size=0"))
    test_texts = set(load_roles(config.data, config.split).target_test["text"])
    dev_run = dev_config(config, tmp_path)
    dev = load_roles(dev_run.data, dev_run.split)
    scored = set(dev.target_test["text"])
    seen = set(dev.target_labeled["text"]) | set(dev.target_validation["text"]) | set(dev.target_unlabeled["text"])
    assert len(scored) == DEV_SIZE and len(test_texts) == 100
    assert not scored & test_texts and not seen & test_texts and not seen & scored
    assert len(seen) == 400 - 100 - DEV_SIZE  # the sample's 400 kitchen texts: all the rest is labelled or unlabelled


SIMILAR = ("--set", "similarity.mmd2_max=10", "--set", "similarity.proxy_a_distance_max=2")  # any pair is similar
DISSIMILAR = ("--set", "similarity.mmd2_max=0")  # MMD² > 0 for two different samples: no pair is similar


@pytest.mark.parametrize(("thresholds", "branch"), [(SIMILAR, "joint_training"), (DISSIMILAR, "shift_adaptation")],
                         ids=["similar", "dissimilar"])
def test_auto_decides_once_and_reuses_a_forced_branch_that_already_ran(tmp_path, tiny_model_dir, monkeypatch,
                                                                       thresholds, branch):
    import json

    from benchmarks.adaptation import main
    from flows import stage_registry
    from tests.conftest import SAMPLE

    validated = []
    real_run_stage = stage_registry.run_stage

    def run_stage(config, name):
        if name == "validate":
            validated.append(config.output.dir)
        return real_run_stage(config, name)

    monkeypatch.setattr(stage_registry, "run_stage", run_stage)
    common = ["--data", str(SAMPLE), "--pairs", "books:kitchen", "--budget", "small", "--workdir", str(tmp_path),
              "--set", f"model.name_or_path={tiny_model_dir}", "--set", "model.max_length=32",
              "--set", "split.source_test_size=40", "--set", "split.target_test_size=60",
              "--set", "similarity.sample_size=100", "--set", "similarity.permutations=20",
              *thresholds]
    assert main([*common, "--methods", "auto", "--json", str(tmp_path / "auto.json")]) == 0
    assert validated == [tmp_path / "books-kitchen-0" / "auto"]  # the decision's stages run once, not again
    (auto,) = json.loads((tmp_path / "auto.json").read_text())
    assert auto["method"] == "auto" and auto["branch"] == branch
    assert {"source", "target", "method", "branch", "accuracy", "macro_f1", "seed"} <= set(auto)

    validated.clear()
    assert main([*common, "--methods", f"auto,{branch}", "--json", str(tmp_path / "all.json")]) == 0
    assert validated == [tmp_path / "books-kitchen-0" / branch, tmp_path / "books-kitchen-0" / "auto"]
    rows = {row["method"]: row for row in json.loads((tmp_path / "all.json").read_text())}
    assert rows["auto"]["reused_from"] == branch and rows[branch]["branch"] == branch  # not a retrain
    assert rows["auto"]["accuracy"] == rows[branch]["accuracy"]


def test_the_sweep_benchmark_splits_the_machinery_into_a_fixed_cost_per_sweep_and_one_per_candidate():
    figures = {"sweep_s": {1: 120.0}, "sweep_2_candidates_s": 67.0, "candidates": 4, "lone_shared_s": 10.0,
               "lone_candidates_s": LONE}
    # the seed-1 candidates took 50 s alone and 53 s more in the sweep (6 % over); 10 s of machinery in all, so
    # 7 s is fixed per sweep
    assert ratios(figures) == {"overhead_per_candidate_pct": 10.0, "marginal_candidates_s": 53.0,
                               "marginal_overhead_pct": 6.0, "fixed_per_sweep_s": 7.0}
