"""Configuration: defaults once, TOML overrides, errors naming the file."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sattag.classes import DSTL_CLASSES
from sattag.config import (DSTL_OVERLAP_RULES, Config, OverlapRule, SizeRule, check_classes, config_from_dict,
                           load_config)
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
    assert cfg.predict.threshold_for(DSTL_CLASSES.by_id(9)) == 0.7
    assert cfg.predict.threshold_for(DSTL_CLASSES.by_id(1)) == 0.5
    assert cfg.engine.memory_limit == "6GiB"
    assert cfg.ingest.tile_px == 1024
    assert cfg.ingest == Config().ingest.__class__(tile_px=1024)  # its other fields keep the defaults
    assert cfg.split == Config().split  # untouched sections keep the defaults


def test_every_readme_toml_block_loads(tmp_path):
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    for i, block in enumerate(blocks):
        path = tmp_path / f"block{i}.toml"
        path.write_text(block)
        check_classes(load_config(path), DSTL_CLASSES, path)


def test_seed_defaults():
    cfg = Config()
    assert (cfg.sample.n_in, cfg.sample.n_out, cfg.sample.validation_fraction) == (200_000, 200_000, 0.1)
    assert (cfg.model.n_trees, cfg.model.max_depth) == (100, 15)
    assert (cfg.cluster.tolerance, cfg.cluster.min_size) == (0.03, 50)
    assert cfg.ingest.bit_depths == {"R": 11, "P": 11, "M": 11, "A": 14}


def test_rules_from_toml(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text('[predict]\n'
                    'overlap_rules = [{target = "Trees", other = "Road", scope = "neighbours", reason = "x"}]\n'
                    '[[predict.size_rules]]\ntarget = "Crops"\nmin_px = 500\n'
                    '[predict.thresholds]\n"Vehicle Large" = 0.7\n10 = 0.6\n')
    cfg = load_config(path)
    assert cfg.predict.overlap_rules == (OverlapRule("Trees", "Road", "neighbours", "x"),)
    assert cfg.predict.size_rules == (SizeRule("Crops", min_px=500),)
    assert cfg.predict.thresholds == {"Vehicle Large": 0.7, 10: 0.6}  # integer-looking keys are class ids
    assert cfg.predict.threshold_for(DSTL_CLASSES.by_id(9)) == 0.7
    assert cfg.predict.threshold_for(DSTL_CLASSES.by_id(10)) == 0.6


def test_defaults_are_dstl_rules_by_name():
    assert Config().predict.overlap_rules == DSTL_OVERLAP_RULES
    names = set(DSTL_CLASSES.names)
    for r in Config().predict.overlap_rules + Config().predict.size_rules:
        assert r.target in names and getattr(r, "other", r.target) in names


def test_config_round_trips_through_json():
    cfg = (Config().replace("predict", thresholds={9: 0.7, "Trees": 0.6},
                            overlap_rules=(OverlapRule("Trees", "Road", "neighbours"),))
           .replace("engine", workers=0))
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert config_from_dict(json.loads(json.dumps(Config().to_dict()))) == Config()


@pytest.mark.parametrize("text, fault", [
    ("[modle]\nn_trees = 3\n", "unknown config section [modle]"),
    ("[model]\nn_tres = 3\n", "unknown field(s) in [model]: n_tres"),
    ("[model\n", "not valid TOML"),
    ("model = 3\n", "[model] must be a table of fields, got 3"),
    # Literal fields refuse other values
    ('[model]\ndistributed = "cols"\n', "[model] distributed: must be one of 'classes', 'rows', got 'cols'"),
    ('[predict]\noverlap_rules = [{target = "Trees", other = "Road", scope = "near"}]\n',
     "[predict] overlap_rules #1 scope: must be one of 'cluster', 'neighbours', got 'near'"),
    ('[ingest]\nresampling = "cubic-spline"\n', "[ingest] resampling: must be one of 'nearest'"),
    # numbers refuse text and booleans; an int field refuses a fraction
    ('[model]\nn_trees = "200"\n', "[model] n_trees: must be an integer, got '200'"),
    ("[model]\nn_trees = true\n", "[model] n_trees: must be an integer, got True"),
    ("[model]\nn_trees = 2.5\n", "[model] n_trees: must be an integer, got 2.5"),
    ('[cluster]\ntolerance = "3%"\n', "[cluster] tolerance: must be a number, got '3%'"),
    ("[ingest]\nalign = 1\n", "[ingest] align: must be true or false, got 1"),
    ("[engine]\nmemory_limit = 4\n", "[engine] memory_limit: must be text (a string), got 4"),
    ('[engine]\nworkers = "two"\n', "[engine] workers: must be an integer, got 'two'"),
    # ranges
    ("[cluster]\ntolerance = 0\n", "[cluster] tolerance: must be in (0, 1], got 0"),
    ("[cluster]\ntolerance = 1.5\n", "[cluster] tolerance: must be in (0, 1], got 1.5"),
    ("[cluster]\nmin_size = 0\n", "[cluster] min_size: must be >= 1, got 0"),
    ("[sample]\nvalidation_fraction = 1.0\n", "[sample] validation_fraction: must be in [0, 1), got 1"),
    ("[sample]\nn_in = 0\n", "[sample] n_in: must be >= 1, got 0"),
    ("[predict]\nthreshold = 1.2\n", "[predict] threshold: must be in [0, 1], got 1.2"),
    ("[predict]\nthresholds = { 9 = -0.1 }\n", "[predict] thresholds[9]: must be in [0, 1], got -0.1"),
    ("[engine]\nworkers = -1\n", "[engine] workers: must be >= 0, got -1"),
    # dict fields: key and value types
    ('[predict]\nthresholds = { "Trees" = "high" }\n', "[predict] thresholds['Trees']: must be a number, got 'high'"),
    ('[ingest]\nbit_depths = { R = 11.5 }\n', "[ingest] bit_depths['R']: must be an integer, got 11.5"),
    ("[predict]\nthresholds = 0.7\n", "[predict] thresholds: must be a table, got 0.7"),
    # rules: their fields
    ('[predict]\noverlap_rules = [{target = "Trees"}]\n', "[predict] overlap_rules #1: missing field(s) other"),
    ("[predict]\noverlap_rules = [{target = 5, other = 3}]\n",
     "[predict] overlap_rules #1 target: must be a class name (a string), got 5"),
    ('[[predict.size_rules]]\ntarget = "Crops"\nmin_px = "big"\n',
     "[predict] size_rules #1 min_px: must be an integer, got 'big'"),
    ('[[predict.size_rules]]\ntarget = "Crops"\nsize = 3\n', "[predict] size_rules #1: unknown field(s) size"),
    ('[predict]\nsize_rules = "Crops"\n', "[predict] size_rules: must be a list, got 'Crops'"),
])
def test_bad_config_names_the_file_section_and_field(tmp_path, text, fault):
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(fault)) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)


def test_replace_is_validated_too():
    with pytest.raises(ConfigError, match=re.escape("configuration: [engine] workers: must be >= 0, got -1")):
        Config().replace("engine", workers=-1)
    with pytest.raises(ConfigError, match=re.escape("configuration: [model] distributed: must be one of")):
        Config().replace("model", distributed="cols")
    assert Config().replace("model", n_trees=7).model.n_trees == 7
