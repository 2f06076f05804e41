"""Store partitions of `features`: same table as the unpartitioned asset, fed to downstream
assets as one union, stores discovered from the data, backfills split into a few runs."""

from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from forecasting_assets import scaleout
from forecasting_assets.definitions import defs as default_defs
from forecasting_assets.definitions_scaleout import build_scaleout_defs

pytestmark = pytest.mark.slow  # every test materializes the features twice (~5 s each)

UPTO_FEATURES = dg.define_asset_job(
    "upto_features", selection=dg.AssetSelection.assets("features").upstream()
)


@pytest.fixture
def partitioned_home(raw_dir: Path, home: Path) -> dict[str, object]:
    """Default features.parquet, then the same table as store partitions, in one home."""
    instance = dg.DagsterInstance.ephemeral()
    default = dg.Definitions.merge(default_defs, dg.Definitions(jobs=[UPTO_FEATURES]))
    assert default.resolve_job_def("upto_features").execute_in_process(instance=instance).success

    split = build_scaleout_defs(dg.in_process_executor)
    new = scaleout.register_stores(instance, pl.scan_parquet(scaleout.sales_long_path()))
    assert new == ["CA_1", "CA_2"]
    assert scaleout.register_stores(instance, pl.scan_parquet(scaleout.sales_long_path())) == []
    job = split.resolve_job_def("features_by_store")
    # one partition per run, as a backfill with max_partitions_per_run=1 would launch them
    results = [job.execute_in_process(instance=instance, partition_key=s) for s in new]
    assert all(r.success for r in results)
    return {"instance": instance, "results": results, "defs": split}


def test_partitions_equal_unpartitioned_table(partitioned_home: dict[str, object], home: Path):
    whole = pl.read_parquet(home / "assets" / "features.parquet")
    parts = [
        pl.read_parquet(home / "assets" / "features" / f"{s}.parquet") for s in ("CA_1", "CA_2")
    ]
    union = pl.concat(parts)
    assert union.schema == whole.schema
    assert union.height == whole.height > 0
    keys = ["id", "d"]
    assert_frame_equal(union.sort(keys), whole.sort(keys), check_exact=True)
    # and in the same order: stores in order of appearance, rows in input order within a store
    assert_frame_equal(union, whole, check_exact=True)


def test_partition_checks_and_metadata(partitioned_home: dict[str, object]) -> None:
    for result in partitioned_home["results"]:  # type: ignore[attr-defined]
        checks = result.get_asset_check_evaluations()
        assert {c.check_name for c in checks} == {
            "features_rows_match_sales_long",
            "features_horizon_direct_inputs",
            "features_schema_complete",
        }
        assert all(c.passed for c in checks), [c.description for c in checks if not c.passed]
        (mat,) = result.asset_materializations_for_node("features")
        assert mat.partition in ("CA_1", "CA_2")
        assert mat.metadata["rows"].value == mat.metadata["rows_by_store"].value[mat.partition]
        assert mat.metadata["worker"].value  # in-process here: host:pid


def test_downstream_reads_union_of_partitions(
    partitioned_home: dict[str, object], home: Path
) -> None:
    """An unpartitioned asset with a `features: pl.LazyFrame` input gets every store."""

    @dg.asset
    def probe(features: pl.LazyFrame) -> dict[str, int]:
        return {
            "rows": features.select(pl.len()).collect().item(),
            "stores": features.select(pl.col("store_id").n_unique()).collect().item(),
        }

    split: dg.Definitions = partitioned_home["defs"]  # type: ignore[assignment]
    result = dg.materialize(
        [*split.assets, probe],  # type: ignore[misc]
        selection=[probe],
        instance=partitioned_home["instance"],  # type: ignore[arg-type]
        resources=split.resources,
    )
    out = result.output_for_node("probe")
    whole = pl.scan_parquet(home / "assets" / "features.parquet").select(pl.len()).collect().item()
    assert out == {"rows": whole, "stores": 2}


def test_partition_checks_fail_on_a_broken_partition(
    partitioned_home: dict[str, object], home: Path
) -> None:
    """The per-store rows check compares with that store's rows in sales_long, not all rows."""
    path = home / "assets" / "features" / "CA_2.parquet"
    pl.read_parquet(path).head(100).write_parquet(path)
    assert scaleout.partition_rows_outcome(["CA_1"]).passed
    outcome = scaleout.partition_rows_outcome(["CA_2"])
    assert not outcome.passed
    assert outcome.metadata["features"]["rows"] == 100


def test_store_sensor_registers_stores_and_requests_chunked_runs(
    raw_dir: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    split = build_scaleout_defs(dg.in_process_executor)
    assert split.resolve_job_def("ingest").execute_in_process(instance=instance).success
    monkeypatch.setenv(scaleout.PARTITIONS_PER_RUN_ENV, "1")
    context = dg.build_sensor_context(instance=instance, definitions=split)
    (result,) = list(scaleout.store_partitions_sensor(context))  # asset sensors yield
    (add,) = result.dynamic_partitions_requests
    assert list(add.partition_keys) == ["CA_1", "CA_2"]
    ranges = [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in result.run_requests
    ]
    assert ranges == [("CA_1", "CA_1"), ("CA_2", "CA_2")]


def test_backfill_policy_and_chunks() -> None:
    policy = scaleout.features_by_store.backfill_policy
    assert policy is not None
    assert policy.max_partitions_per_run == scaleout.DEFAULT_PARTITIONS_PER_RUN
    stores = [f"S_{i}" for i in range(10)]  # full M5: 10 stores -> 5 runs of 2
    chunks = scaleout.chunk_stores(stores, scaleout.DEFAULT_PARTITIONS_PER_RUN)
    assert len(chunks) == 5
    assert [s for c in chunks for s in c] == stores
    assert scaleout.features_by_store.partitions_def == scaleout.stores_partitions
    assert scaleout.features_by_store.key == dg.AssetKey("features")
