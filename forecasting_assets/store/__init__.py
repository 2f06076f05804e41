"""Read-only access to the materialized exports and the champion model.

Shared by the REST API and the dashboard, always as ``from forecasting_assets import store``
then ``store.<reader>``: this facade is the contract, the submodules are its rooms.

- :mod:`~forecasting_assets.store.exports`: the export files and the features table;
- :mod:`~forecasting_assets.store.model_registry`: the champion, its versions and their files;
- :mod:`~forecasting_assets.store.tracking`: the training runs and their artifacts.

"Not materialized yet" is a normal state: readers return ``None`` (or an empty frame / list),
never raise. Paths and the tracking URI are read from the settings on every call.
"""

from forecasting_assets.store.exports import (
    assets_dir,
    exports_dir,
    features_path,
    file_version,
    load_alerts,
    load_backtest_metrics,
    load_drift_report,
    load_feature_catalog,
    load_feature_importance,
    load_forecasts,
    load_forecasts_aggregated,
    load_interval_coverage,
    load_inventory_plan,
    load_inventory_validation,
    load_validation_report,
)
from forecasting_assets.store.model_registry import (
    RegistryUnavailable,
    champion_feature_columns,
    champion_info,
    champion_version,
    download_model,
    list_model_versions,
    load_champion,
    load_champion_model,
    model_versions,
    registry_exists,
    tracking_uri,
    version_info,
)
from forecasting_assets.store.tracking import list_training_runs, load_run_json_artifact

__all__ = [
    "RegistryUnavailable",
    "assets_dir",
    "champion_feature_columns",
    "champion_info",
    "champion_version",
    "download_model",
    "exports_dir",
    "features_path",
    "file_version",
    "list_model_versions",
    "list_training_runs",
    "load_alerts",
    "load_backtest_metrics",
    "load_champion",
    "load_champion_model",
    "load_drift_report",
    "load_feature_catalog",
    "load_feature_importance",
    "load_forecasts",
    "load_forecasts_aggregated",
    "load_interval_coverage",
    "load_inventory_plan",
    "load_inventory_validation",
    "load_run_json_artifact",
    "load_validation_report",
    "model_versions",
    "registry_exists",
    "tracking_uri",
    "version_info",
]
