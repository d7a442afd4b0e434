"""Configuration: defaults once, TOML overrides, errors naming the file."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from sattag.config import Config, OverlapRule, load_config
from sattag.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_parses_and_overrides():
    text = README.read_text()
    block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    path = Path(README.parent / ".readme-example.toml")
    try:
        path.write_text(block)
        cfg = load_config(path)
    finally:
        path.unlink()
    assert cfg.sample.n_in == 50000 and cfg.model.n_trees == 200 and cfg.cluster.tolerance == 0.05
    assert cfg.predict.threshold_for(9) == 0.7 and cfg.predict.threshold_for(1) == 0.5
    assert cfg.engine.memory_limit == "6GiB"
    assert cfg.ingest == Config().ingest  # untouched sections keep the defaults


def test_seed_defaults():
    cfg = Config()
    assert (cfg.sample.n_in, cfg.sample.n_out, cfg.sample.validation_fraction) == (200_000, 200_000, 0.1)
    assert (cfg.model.n_trees, cfg.model.max_depth) == (100, 15)
    assert (cfg.cluster.tolerance, cfg.cluster.min_size) == (0.03, 50)
    assert cfg.ingest.bit_depths == {"R": 11, "P": 11, "M": 11, "A": 14}


def test_rules_from_toml(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text('[predict]\noverlap_rules = [{target = 5, other = 3, scope = "neighbours", reason = "x"}]\n')
    cfg = load_config(path)
    assert cfg.predict.overlap_rules == (OverlapRule(5, 3, "neighbours", "x"),)


@pytest.mark.parametrize("text, fault", [
    ("[modle]\nn_trees = 3\n", "unknown config section"),
    ("[model]\nn_tres = 3\n", "n_tres"),
    ("[model\n", "not valid TOML"),
    ('[predict]\noverlap_rules = [{target = 5}]\n', "bad rule"),
])
def test_bad_config_names_the_file(tmp_path, text, fault):
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fault) as e:
        load_config(path)
    assert "cfg.toml" in str(e.value)
