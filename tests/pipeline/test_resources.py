"""Resources read their locations from the environment through ``dg.EnvVar`` at run time."""

from pathlib import Path

import dagster as dg
import pytest

from forecasting_assets.defs.resources import M5Source, PipelineHome, from_env


def test_from_env_names_set_variables_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORECASTING_HOME", raising=False)
    assert from_env("FORECASTING_HOME") is None
    monkeypatch.setenv("FORECASTING_HOME", "/somewhere")
    assert from_env("FORECASTING_HOME") == dg.EnvVar("FORECASTING_HOME")


def test_env_var_resolves_when_the_run_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORECASTING_HOME", str(tmp_path / "first"))
    monkeypatch.setenv("M5_RAW_DIR", str(tmp_path / "raw"))
    resources = {
        "home": PipelineHome(home=from_env("FORECASTING_HOME")),
        "m5_source": M5Source(raw_dir=from_env("M5_RAW_DIR")),
    }

    @dg.asset
    def where(home: PipelineHome, m5_source: M5Source) -> tuple[Path, Path]:
        return home.exports_dir, m5_source.folder

    monkeypatch.setenv("FORECASTING_HOME", str(tmp_path / "second"))
    result = dg.materialize([where], resources=resources)
    assert result.output_for_node("where") == (tmp_path / "second" / "exports", tmp_path / "raw")


def test_unset_fields_fall_back_to_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FORECASTING_HOME", raising=False)
    monkeypatch.delenv("M5_RAW_DIR", raising=False)
    assert PipelineHome().exports_dir == tmp_path / "data" / "exports"
    assert M5Source().folder == tmp_path / "data" / "raw"
