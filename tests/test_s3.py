"""The S3 path for real: landing zone and lakehouse on an S3-compatible server on loopback (moto)."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time

import boto3
import pyarrow as pa
import pytest
from dagster_aws.s3 import S3Resource

from recsys_assets.runner import run_job
from recsys_assets.sources.landing import LandingStore
from recsys_assets.sources.simulator import simulate, write_landing
from resources.lakehouse import LakehouseResource
from resources.landing import LandingZoneResource
from tests.conftest import SIM_END_DAY, small_sim_config

BUCKET = "recsys-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    # A separate process: deltalake holds the GIL during its requests, so an in-process
    # (threaded) server would never get to answer them.
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"the moto S3 server did not start on 127.0.0.1:{port} (see {log.name})")
            time.sleep(0.2)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket=BUCKET)
    yield endpoint
    server.terminate()
    server.wait(timeout=10)
    log.close()


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def _prefix(request) -> str:
    return request.node.name.replace("[", "_").replace("]", "")


def test_landing_listing_read_write(s3_env, request):
    client = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"])
    store = LandingStore(f"s3://{BUCKET}/{_prefix(request)}/landing", s3_client=client)
    store.write_bytes("events/dt=2024-03-09/hour=01/p-1.jsonl", b'{"a": 1}\n')
    store.write_bytes("events/dt=2024-03-10/hour=02/p-2.jsonl", b'{"a": 2}\n')
    store.write_bytes("events/dt=2024-03-10/hour=02/.p-3.jsonl.tmp", b"partial")
    files = store.list_files("events")
    assert [f.key for f in files] == ["events/dt=2024-03-09/hour=01/p-1.jsonl", "events/dt=2024-03-10/hour=02/p-2.jsonl"]
    assert [f.arrival_day for f in files] == [dt.date(2024, 3, 9), dt.date(2024, 3, 10)]
    assert files[0].uri == f"s3://{BUCKET}/{_prefix(request)}/landing/events/dt=2024-03-09/hour=01/p-1.jsonl"
    assert store.read_bytes(files[1].key) == b'{"a": 2}\n'
    local = store.local_paths([files[0].key])
    assert open(local[files[0].key], "rb").read() == b'{"a": 1}\n'


def test_delta_write_overwrite_read_back(s3_env, request):
    lakehouse = LakehouseResource(root_uri=f"s3://{BUCKET}/{_prefix(request)}/lakehouse")
    d1, d2 = dt.date(2024, 3, 9), dt.date(2024, 3, 10)
    table = pa.table({"event_date": pa.array([d1, d1, d2], pa.date32()), "v": [1, 2, 3]})
    lakehouse.overwrite_range("t", table, d1, d2)
    assert lakehouse.exists("t") and lakehouse.version("t") == 0
    lakehouse.overwrite_range("t", pa.table({"event_date": pa.array([d2], pa.date32()), "v": [30]}), d2, d2)
    back = lakehouse.read("t").sort_by("v").to_pylist()
    assert back == [{"v": 1, "event_date": d1}, {"v": 2, "event_date": d1}, {"v": 30, "event_date": d2}]
    assert lakehouse.read_range("t", d2, d2).column("v").to_pylist() == [30]
    assert lakehouse.version("t") == 1
    # artifacts go to the same bucket
    uri = lakehouse.write_json_artifact("models/abc/config.json", {"dim": 64})
    assert uri.startswith(f"s3://{BUCKET}/") and lakehouse.read_json_artifact("models/abc/config.json") == {"dim": 64}


def test_ingestion_pipeline_on_s3(s3_env, request, make_defs):
    prefix = _prefix(request)
    s3 = S3Resource(endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    landing = LandingZoneResource(root_uri=f"s3://{BUCKET}/{prefix}/landing", s3=s3)
    lakehouse = LakehouseResource(root_uri=f"s3://{BUCKET}/{prefix}/lakehouse")
    world = simulate(small_sim_config(n_users=40, n_items=30, n_days=3))
    write_landing(world, landing.store())
    defs = make_defs(lakehouse, landing)
    run_job(defs, "ingestion_job", days=(SIM_END_DAY - dt.timedelta(days=2), SIM_END_DAY))
    raw = lakehouse.read("raw_events")
    assert raw.num_rows == len(world.events)
    assert lakehouse.read("dead_letter_events").num_rows == sum(world.summary["bad_events"].values())
    assert lakehouse.read("users").num_rows == 40
    assert lakehouse.table_uri("raw_events").startswith("s3://")
