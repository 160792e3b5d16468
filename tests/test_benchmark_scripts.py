"""The zoo and the recipe sweep: configs found, a real tiny run through each, tables written (not their results)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import real_data_dir

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


zoo, sweep = _load("mnist_zoo"), _load("recipe_sweep")
TINY = [
    "--model.init_args.g_channels",
    "8",
    "--model.init_args.d_channels",
    "8",
    "--data.init_args.num_workers",
    "0",
    "--data.init_args.val_size",
    "256",
    "--trainer.callbacks.init_args.num_samples",
    "256",
    "--trainer.callbacks.init_args.batch_size",
    "128",
    "--data.init_args.download",
    "false",
]


def test_the_zoo_finds_every_mnist_config_with_the_classifier_evaluation():
    names = [p.stem for p in zoo.zoo_configs()]
    assert {"dcgan_mnist", "gan_mnist", "wgan_gp_mnist", "vae_mnist"} <= set(names)
    assert all("mnist" in n for n in names) and zoo.zoo_configs("dcgan") == [REPO / "configs" / "dcgan_mnist.yaml"]


def test_zoo_and_sweep_run_a_real_tiny_config_and_write_their_tables(tmp_path, monkeypatch):
    real_data_dir("MNIST/raw")
    monkeypatch.setattr(sys, "argv", ["zoo"])
    runs = zoo.main(
        [
            "--only",
            "dcgan_mnist",
            "--runs-dir",
            str(tmp_path / "zoo"),
            "--out-dir",
            str(tmp_path),
            "--",
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "3",
            *TINY,
        ]
    )
    assert len(runs) == 1 and runs[0].g_steps == 3 and 0 <= runs[0].final["classes_covered"] <= 10
    report = (tmp_path / "mnist_zoo.md").read_text()
    assert "| `dcgan_mnist` |" in report and (tmp_path / "zoo" / "dcgan_mnist.png").is_file()

    file = tmp_path / "tiny.yaml"
    file.write_text(
        "config: configs/dcgan_mnist.yaml\nminutes: 0.05\n"
        f"common: {TINY + ['--trainer.max_epochs', '-1', '--trainer.check_val_every_n_epoch', '1000']}\n"
        "variants:\n  base: []\n  ema: [--model.init_args.ema_decay, '0.9']\n"
    )
    out = tmp_path / "sweep.md"
    where = ["--runs-dir", str(tmp_path / "sweep"), "--out", str(tmp_path / "part.md")]
    # Two processes can share a sweep: each trains its --only variants and saves them; --collect writes the table.
    with pytest.raises(SystemExit, match=r"--only nothing: no variant matches; the sweep has base, ema"):
        sweep.main([str(file), "--only", "nothing", *where])
    with pytest.raises(SystemExit, match=r"no finished run of base in .*--only base"):
        sweep.main([str(file), "--collect", *where])
    runs = [*sweep.main([str(file), "--only", "base", *where]), *sweep.main([str(file), "--only", "ema", *where])]
    assert list(sweep.selected({"ema": [], "b_ema": [], "paper": []}, "ema,pap")) == ["ema", "paper"]
    assert [r.name for r in runs] == ["base", "ema"] and all(r.g_steps > 0 for r in runs)
    assert (tmp_path / "sweep" / "ema" / "sweep_run.json").is_file()
    collected = sweep.main([str(file), "--collect", *where, "--out", str(out)])
    row = lambda r: (r.name, r.g_steps, r.final["fid"])  # noqa: E731
    assert [row(r) for r in collected] == [row(r) for r in runs]
    text = out.read_text()
    assert "| `ema` | `--model.init_args.ema_decay 0.9` |" in text and "| `base` | `(only the common ones)` |" in text
    assert "3 seconds" not in text and re.search(r"torch threads per run: \d+", text)


def test_zoo_jobs_train_each_config_in_a_child_process_longest_first(tmp_path, monkeypatch):
    real_data_dir("MNIST/raw")
    monkeypatch.setattr(sys, "argv", ["zoo"])
    tiny = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", *TINY]
    args = ["--only", "dcgan_mnist", "--jobs", "2", "--runs-dir", str(tmp_path / "zoo"), "--out-dir", str(tmp_path)]
    runs = zoo.main([*args, "--", *tiny])
    # The Run came back from the child through its JSON file, with the child's numbers and grid.
    assert len(runs) == 1 and runs[0].g_steps == 2 and runs[0].history[-1][0] == 2
    assert (tmp_path / "zoo" / "dcgan_mnist" / "zoo_run.json").is_file() and Path(runs[0].grid).is_file()
    assert re.search(r"\d+ threads? per run, 2 runs at a time", (tmp_path / "mnist_zoo.md").read_text())
    # --collect writes the same table again from the saved run, without training; a missing run is named.
    zoo.main(
        [
            "--only",
            "dcgan_mnist",
            "--collect",
            "--jobs",
            "2",
            "--runs-dir",
            str(tmp_path / "zoo"),
            "--out-dir",
            str(tmp_path / "again"),
        ]
    )
    table = (tmp_path / "mnist_zoo.md").read_text().split("| config |")[1].split("\n\n")[0]
    assert table in (tmp_path / "again" / "mnist_zoo.md").read_text()
    with pytest.raises(SystemExit, match=r"no finished run of fast_mnist in .*--only NAME"):
        zoo.main(["--only", "fast_mnist", "--collect", "--runs-dir", str(tmp_path / "zoo")])
    zoo.main(
        [
            "--only",
            "_mnist",
            "--collect",
            "--missing-ok",
            "--runs-dir",
            str(tmp_path / "zoo"),
            "--out-dir",
            str(tmp_path / "partial"),
        ]
    )
    partial = (tmp_path / "partial" / "mnist_zoo.md").read_text()
    assert "| `fast_mnist` | not run |" in partial and "| `dcgan_mnist` | not run |" not in partial
    # A child that fails names its log.
    with pytest.raises(
        RuntimeError, match=r"dcgan_mnist failed \(exit code [1-9]\d*\); its output is in .*dcgan_mnist.log"
    ):
        zoo.main([*args, "--", *tiny, "--model.init_args.no_such_argument", "1"])
    assert zoo.stated_epochs(REPO / "configs" / "wgan_mnist.yaml") > zoo.stated_epochs(
        REPO / "configs" / "dcgan_mnist.yaml"
    )
    assert zoo.stated_epochs(REPO / "configs" / "dfgan_mnist.yaml") == 8000 / 2 / 859


@pytest.mark.slow  # the classifier over 6,000 real digits: kept out of the default run's 10 minutes
def test_the_zoo_reference_row_scores_real_digits_as_real():
    real_data_dir("MNIST/raw")
    m = zoo.real_reference(num_test=1000)
    # Real test digits against the validation digits: every class, confidently, and close to the real features.
    assert m["classes_covered"] == 10 and m["confident_share"] > 0.95 and m["precision"] > 0.8
    assert m["fid"] < 20 and m["is"] > 8.5, m  # 10.8 and 9.2 here (1,000 digits bias FID up, IS down)
    row = zoo.reference_row(m)
    assert row.startswith("| real digits") and row.count("|") == 10 and "| 10/10 |" in row


def test_a_sweep_file_must_name_its_config_budget_and_variants(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("config: configs/dcgan_mnist.yaml\n")
    with pytest.raises(ValueError, match=r"needs \['minutes', 'variants'\]"):
        sweep.load_sweep(bad)


@pytest.mark.slow
def test_the_fast_mnist_recipe_reaches_fid_40_with_every_class(tmp_path, monkeypatch):
    # configs/fast_mnist.yaml exactly as shipped (README, Results: FID 31.1, 10/10 after 3 epochs, about 6 minutes on
    # 2 cores), through the zoo as `python benchmarks/mnist_zoo.py --only fast_mnist` runs it.
    real_data_dir("MNIST/raw")
    monkeypatch.setattr(sys, "argv", ["zoo"])
    runs = zoo.main(["--only", "fast_mnist", "--runs-dir", str(tmp_path / "zoo"), "--out-dir", str(tmp_path)])
    assert len(runs) == 1 and runs[0].g_steps == 3 * 859
    assert runs[0].final["fid"] <= 40 and runs[0].final["classes_covered"] == 10, runs[0].final


def test_a_saved_run_finds_its_folder_and_grid_after_the_runs_were_moved(tmp_path):
    from benchmarks._runs import Run, load_run, save_run

    old = tmp_path / "old" / "zoo" / "dcgan_mnist"
    grid = old / "logs" / "version_0" / "samples" / "final.png"
    grid.parent.mkdir(parents=True)
    grid.write_bytes(b"png")
    run = Run(name="dcgan_mnist", final={"fid": 1.0}, history=[(3, {"fid": 1.0})], run_dir=str(old / "logs"))
    run.grid, run.args, run.threads = str(grid), ["--seed_everything", "1"], 1
    save_run(run, old / "zoo_run.json")
    (tmp_path / "new").mkdir()
    moved = (tmp_path / "old" / "zoo").rename(tmp_path / "new" / "zoo") / "dcgan_mnist"
    back = load_run(moved / "zoo_run.json")
    assert back.grid == str(moved / "logs" / "version_0" / "samples" / "final.png") and Path(back.grid).is_file()
    assert back.run_dir == str(moved / "logs") and back.history == [(3, {"fid": 1.0})] and back.args == run.args
