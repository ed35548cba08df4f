"""The `reprolab` command: listings, registry check exit codes, config printing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from reprolab.cli import EXIT_REGISTRY, EXIT_USAGE, main


def test_list_recipes(mini_root: Path, capsys):
    assert main(["list", "recipes"]) == 0
    out = capsys.readouterr().out
    assert "toyvid-toy-r18" in out and "Toy-R18 on toy videos" in out


def test_list_json_is_machine_readable(mini_root: Path, capsys):
    assert main(["list", "papers", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"id": "toy", "short": "TOY", "arXiv": "2101.00001", "venue": "Nowhere 2021",
                     "recipes": 1, "published rows": 2}]


def test_list_papers_prints_arxiv_ids_as_written(mini_root: Path, capsys):
    # tabulate would read 2101.00001 as a number and print 2101.
    assert main(["list", "papers"]) == 0
    assert "2101.00001" in capsys.readouterr().out


def test_check_passes_then_fails_with_file_and_key(mini_root: Path, capsys):
    assert main(["check"]) == 0
    assert "1 recipes" in capsys.readouterr().out
    card = mini_root / "datasets/toyvid/card.yaml"
    card.write_text(card.read_text().replace("expect:", "expected:"))
    assert main(["check"]) == EXIT_REGISTRY
    err = capsys.readouterr().err
    assert str(card) in err and "`expected`" in err


def test_check_type_checks_every_recipe_block_in_both_profiles(mini_root: Path, capsys):
    base = mini_root / "reproductions/toy/recipes/_base.yaml"
    text = base.read_text()
    base.write_text(text.replace("data: {crop: 224}", "data: {crop: 224, scalse: 0.8}"))
    assert main(["check"]) == EXIT_REGISTRY
    err = capsys.readouterr().err
    assert "toyvid-toy-r18.yaml" in err and "key `data.scalse`: unknown key (did you mean `scales`?)" in err
    assert "profile full" in err and "profile tiny" in err
    base.write_text(text.replace("lr: 0.01", "lr: fast"))
    assert main(["check"]) == EXIT_REGISTRY
    assert "key `optim.lr`: Input should be a valid number" in capsys.readouterr().err


def test_a_wrong_override_value_is_a_usage_error_before_anything_runs(mini_root: Path, capsys):
    assert main(["train", "toyvid-toy-r18", "--profile", "tiny", "optim.lr=abc"]) == EXIT_USAGE
    assert "key `optim.lr`" in capsys.readouterr().err
    assert not (mini_root / "runs").exists() and not (mini_root / "results").exists()


def test_config_prints_resolved_yaml(mini_root: Path, capsys):
    assert main(["config", "toyvid-toy-r18", "--profile", "tiny", "optim.lr=0.5"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["profile"] == "tiny" and config["optim"]["lr"] == 0.5 and config["optim"]["epochs"] == 2


def test_config_errors_are_usage_errors(mini_root: Path, capsys):
    assert main(["config", "no-such-recipe"]) == EXIT_USAGE
    assert "unknown recipe 'no-such-recipe'; known: toyvid-toy-r18" in capsys.readouterr().err
    assert main(["config", "toyvid-toy-r18", "optim.nope=1"]) == EXIT_USAGE


def test_every_subcommand_has_help():
    from reprolab.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        done = subprocess.run([sys.executable, "-m", "reprolab.cli", name, "--help"],
                              capture_output=True, text=True)
        assert done.returncode == 0, (name, done.stderr)
        assert "usage: reprolab " + name in done.stdout
