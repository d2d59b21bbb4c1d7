"""The staging namespace: writes go aside, reads see staged partitions over live ones."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from resources.lakehouse import LakehouseResource

D1, D2, D3 = dt.date(2024, 3, 8), dt.date(2024, 3, 9), dt.date(2024, 3, 10)


def rows(day: dt.date, values: list[int]) -> pa.Table:
    return pa.table({"v": pa.array(values, pa.int64()), "event_date": pa.array([day] * len(values), pa.date32())})


def test_staged_writes_leave_live_untouched_and_reads_merge(tmp_path):
    live = LakehouseResource(root_uri=str(tmp_path))
    live.overwrite_range("t", pa.concat_tables([rows(D1, [1]), rows(D2, [2, 2]), rows(D3, [3])]), D1, D3)
    version = live.version("t")

    staged = LakehouseResource(root_uri=str(tmp_path), staging="fix-1")
    staged.overwrite_range("t", rows(D2, [20]), D2, D2)
    assert staged.table_uri("t").endswith("_staging/fix-1/t")
    # live readers see nothing new
    assert live.version("t") == version
    assert sorted(live.read("t").column("v").to_pylist()) == [1, 2, 2, 3]
    # the staging run sees the staged day over the live ones
    assert sorted(staged.read("t").column("v").to_pylist()) == [1, 3, 20]
    assert staged.read_range("t", D2, D2).column("v").to_pylist() == [20]
    assert sorted(staged.read_range("t", D1, D2).column("v").to_pylist()) == [1, 20]
    segments = staged.file_segments("t")
    assert [root.endswith("_staging/fix-1/t") for root, _ in segments] == [True, False]
    assert sum(len(files) for _, files in segments) == 3  # D2 staged + D1, D3 live


def test_staging_a_new_table_and_spark_reads_merge(tmp_path, spark_resource):
    live = LakehouseResource(root_uri=str(tmp_path))
    live.overwrite_range("t", pa.concat_tables([rows(D1, [1]), rows(D2, [2])]), D1, D2)
    staged = LakehouseResource(root_uri=str(tmp_path), staging="fix-2")
    staged.overwrite_range("t", rows(D2, [22, 23]), D2, D2)
    staged.overwrite_range("only_staged", rows(D3, [9]), D3, D3)
    assert staged.exists("only_staged") and not live.exists("only_staged")
    df = spark_resource.read_delta(staged, "t")
    assert sorted(r.v for r in df.collect()) == [1, 22, 23]
    assert [r.v for r in spark_resource.read_delta(staged, "t", "event_date = '2024-03-09'").collect()] in ([22, 23], [23, 22])
