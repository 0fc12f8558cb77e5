"""Object stores: input and output on a real S3-compatible server (moto, on 127.0.0.1).

The demo's stages on s3:// input and output give the local run's shards byte for byte; a run
killed with SIGKILL resumes; a publication cut short is never seen as a finished run and is done
again; a missing bucket or bad credentials get one paragraph; storage_options in the pipeline file
work and are never written out; objects cleanmix did not write are never deleted."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import free_port, start_server
from test_formats import write_jsonl
from test_resume import kill_when

import cleanmix.pipelines.jsonl
from cleanmix.pipelines.config import validate_pipeline
from cleanmix.pipelines.errors import UserError
from cleanmix.pipelines.local import run_local
from cleanmix.pipelines.progress import Reporter
from cleanmix.pipelines.shards import plan_input, read_unit
from conftest import REPO, assert_user_error, clean

try:
    import boto3
    import moto  # noqa: F401
    import s3fs  # noqa: F401
except ImportError:  # the `test` extra installs them; CI must not skip
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("needs s3fs and moto[server]: pip install -e '.[test]'", allow_module_level=True)

DEMO = REPO / "sample" / "demo"
SMALL_STAGES = [{"type": "normalize"}, {"type": "length", "min_chars": 20}, {"type": "pii"}, {"type": "exact_dedup"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """moto's S3 server on 127.0.0.1 with authentication on: one user whose keys may do anything in S3."""
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}  # the user, its policy and its key are made unsigned
    log = open(tmp_path_factory.mktemp("moto") / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    process, endpoint = start_server(["moto.server", "-H", "127.0.0.1", "-p", "{port}"], log, env)
    try:
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        iam.create_user(UserName="cleanmix")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="cleanmix", PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="cleanmix")["AccessKey"]
        yield {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
               "AWS_DEFAULT_REGION": "us-east-1"}
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def s3(server, monkeypatch, tmp_path, request):
    """A fresh bucket holding the demo corpus under demo/; the environment points at the server."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in server.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLEANMIX_STAGING", str(tmp_path / "staging"))
    client = boto3.client("s3", endpoint_url=server["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id=server["AWS_ACCESS_KEY_ID"], aws_secret_access_key=server["AWS_SECRET_ACCESS_KEY"])
    bucket = request.node.name.lower().replace("_", "-")[:50].strip("-")
    client.create_bucket(Bucket=bucket)
    for path in sorted(DEMO.glob("*.parquet")):
        client.upload_file(str(path), bucket, f"demo/{path.name}")
    return Store(client, bucket)


class Store:
    def __init__(self, client, bucket: str) -> None:
        self.client, self.bucket = client, bucket

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def objects(self, prefix: str) -> dict[str, bytes]:
        """Every object under a prefix, by its key relative to the prefix."""
        keys = [o["Key"] for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix + "/")
                for o in page.get("Contents", [])]
        return {k.removeprefix(prefix + "/"): self.client.get_object(Bucket=self.bucket, Key=k)["Body"].read() for k in keys}

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)


def pipeline(path: Path, input_path: str, output_path: str, stages: list[dict] | None = None, **top) -> Path:
    """The demo's pipeline (its stages by default) with another input and output."""
    data = yaml.safe_load((REPO / "pipelines" / "presets" / "demo.yaml").read_text())
    data["input"]["path"], data["output"]["path"] = input_path, output_path
    if stages is not None:
        data["stages"] = stages
    for key, value in top.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def local_files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def shards(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k.endswith(".parquet")}


def stage_counts(summary: dict) -> list[dict]:
    return [{k: v for k, v in stage.items() if k != "seconds"} for stage in summary["stages"]]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The demo run on local files: what every run on the object store must give."""
    folder = tmp_path_factory.mktemp("reference")
    clean("run", str(pipeline(folder / "p.yaml", str(DEMO), str(folder / "out"), workers=2)), "-q", check=True)
    return folder / "out"


def assert_published_as_local(store, reference: Path, config: Path) -> dict[str, bytes]:
    """`clean run` of the demo onto `store` (runs/demo): the local run's files byte for byte plus the marker, every
    stage's documents conserved, the input listed in the marker; a re-run does nothing. The published objects."""
    result = clean("run", str(config), check=True)
    assert f"under {store.url('runs/demo')}/data" in result.stdout
    published = store.objects("runs/demo")
    expected = local_files(reference)
    assert set(published) == set(expected) | {".cleanmix-output.json"}  # no lock, no _work, no temporary object
    assert shards(published) == shards(expected) and len(shards(expected)) == 15
    summary, local = json.loads(published["stats/summary.json"]), json.loads(expected["stats/summary.json"])
    assert stage_counts(summary) == stage_counts(local) and summary["output"] == local["output"]
    assert summary["input"]["docs"] == 812 and summary["output"]["docs"] == 517
    for stage in summary["stages"]:  # conservation: every document that left a stage has a reason
        assert stage["docs_in"] + stage.get("added", 0) == stage["docs_out"] + sum(stage["removed"].values()), stage["name"]
    marker = json.loads(published[".cleanmix-output.json"])
    assert marker["complete"] and list(marker["input"]["files"]) == [store.url(f"demo/part-0{i}.parquet") for i in range(3)]
    again = clean("run", str(config), check=True)
    assert "already holds this run, complete: nothing to do" in again.stderr
    assert store.objects("runs/demo") == published
    assert "812 docs in → 517 kept" in clean("stats", store.url("runs/demo"), check=True).stdout
    return published


def test_demo_on_s3_gives_the_local_output_byte_for_byte(s3, reference, tmp_path):
    assert_published_as_local(s3, reference, pipeline(tmp_path / "p.yaml", s3.url("demo"), s3.url("runs/demo"), workers=2))
    assert not any((tmp_path / "staging").iterdir())  # the staging folder goes once published
    assert clean("report", s3.url("runs/demo"), check=True).stdout.strip() == f"{s3.url('runs/demo')}/report.html"
    assert b"minhash_dedup" in s3.objects("runs/demo")["report.html"]
    assert_user_error(clean("stats", s3.url("demo")), f"'{s3.url('demo')}' is not a finished cleanmix output folder")


def test_sigkill_mid_run_then_rerun_resumes_to_the_same_output(s3, reference, tmp_path):
    """Killed in the first pass and again in a later one; the lock a killed run leaves is taken over."""
    config = pipeline(tmp_path / "p.yaml", s3.url("demo"), s3.url("runs/killed"), workers=2)
    cmd = [sys.executable, "-m", "cleanmix.pipelines.cli", "run", str(config), "-q"]
    assert kill_when(cmd, tmp_path / "staging", 1, "*/_work/seg-*/u*.json")
    assert ".cleanmix.lock" in s3.objects("runs/killed")  # left by the killed run
    assert kill_when(cmd, tmp_path / "staging", 5, "*/_work/seg-*/u*.json")  # 3 units per pass: inside the second
    assert "stats/summary.json" not in s3.objects("runs/killed")
    resumed = clean("run", str(config), "--workers", "1", check=True)
    assert "already done, resuming" in resumed.stderr
    assert shards(s3.objects("runs/killed")) == shards(local_files(reference))


def test_a_publication_cut_short_is_never_a_finished_run_and_is_done_again(s3, tmp_path, monkeypatch):
    data = {"input": {"path": s3.url("demo")}, "output": {"path": s3.url("runs/cut"), "shard_rows": 100}, "stages": SMALL_STAGES,
            "workers": 1}
    put_file = s3fs.S3FileSystem._put_file

    async def cut_before_the_summary(self, lpath, rpath, *args, **kwargs):
        if rpath.endswith("stats/summary.json"):
            raise ConnectionResetError("the connection dropped while publishing")  # as a crash would, mid-publication
        return await put_file(self, lpath, rpath, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_put_file", cut_before_the_summary)
    with pytest.raises(ConnectionResetError):
        run_local(validate_pipeline(data), "p.yaml", Reporter(quiet=True))
    monkeypatch.setattr(s3fs.S3FileSystem, "_put_file", put_file)
    cut = s3.objects("runs/cut")
    assert "data/part-00000.parquet" in cut and "stats/summary.json" not in cut
    assert not json.loads(cut[".cleanmix-output.json"])["complete"]
    config = tmp_path / "p.yaml"
    config.write_text(yaml.safe_dump(data))
    assert_user_error(_read_as_input(s3, tmp_path), "has not finished")
    result = clean("run", str(config), check=True)
    assert "publishing the finished run staged in" in result.stderr
    local = tmp_path / "local.yaml"
    local.write_text(yaml.safe_dump({**data, "input": {"path": str(DEMO)}, "output": {**data["output"], "path": str(tmp_path / "local")}}))
    clean("run", str(local), "-q", check=True)
    assert shards(s3.objects("runs/cut")) == shards(local_files(tmp_path / "local"))


def _read_as_input(s3: Store, tmp_path: Path):
    """A run reading an unfinished object-store output folder as its input."""
    config = tmp_path / "reader.yaml"
    config.write_text(yaml.safe_dump({"input": {"path": s3.url("runs/cut")}, "output": {"path": str(tmp_path / "reader")}, "stages": []}))
    return clean("run", str(config))


def assert_missing_locations_are_one_paragraph(store, scheme: str, tmp_path: Path) -> str:  # noqa: ANN001
    """A missing output bucket, input bucket and input prefix on `store` each stop the run with one
    paragraph naming the key; returns the output URL used."""
    out = store.url("runs/x")
    missing_out = clean("run", str(pipeline(tmp_path / "a.yaml", str(DEMO), f"{scheme}://no-such-bucket/out")))
    assert_user_error(missing_out, f"output.path '{scheme}://no-such-bucket/out'", "the bucket 'no-such-bucket' does not exist")
    missing_in = clean("run", str(pipeline(tmp_path / "b.yaml", f"{scheme}://no-such-bucket/demo", out)))
    assert_user_error(missing_in, f"input.path '{scheme}://no-such-bucket/demo'", "does not exist")
    no_prefix = clean("run", str(pipeline(tmp_path / "c.yaml", store.url("nothing-here"), out)))
    assert_user_error(no_prefix, f"input path '{store.url('nothing-here')}' does not exist")
    return out


def test_missing_bucket_bad_credentials_and_no_server_are_one_paragraph(s3, tmp_path, monkeypatch):
    out = assert_missing_locations_are_one_paragraph(s3, "s3", tmp_path)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    refused = clean("run", str(pipeline(tmp_path / "d.yaml", s3.url("demo"), out)))
    assert_user_error(refused, f"input.path '{s3.url('demo')}': the object store refused access", "AWS_ACCESS_KEY_ID")
    refused = clean("run", str(pipeline(tmp_path / "e.yaml", str(DEMO), out)))
    assert_user_error(refused, f"output.path '{out}': the object store refused access")
    assert s3.objects("runs/x") == {}
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    quick = {"config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1}}
    unreachable = clean("run", str(pipeline(tmp_path / "f.yaml", s3.url("demo"), out, input={"storage_options": quick})))
    assert_user_error(unreachable, f"input.path '{s3.url('demo')}': the object store could not be reached", "AWS_ENDPOINT_URL")
    misspelt = clean("run", str(pipeline(tmp_path / "g.yaml", s3.url("demo"), out, input={"storage_options": {"retires": 1}})))
    assert_user_error(misspelt, f"input.path '{s3.url('demo')}': its storage_options do not fit", "retires")


def test_storage_options_in_the_pipeline_file_and_never_written_out(s3, server, tmp_path, monkeypatch):
    for name in server:
        monkeypatch.delenv(name)
    options = {"endpoint_url": server["AWS_ENDPOINT_URL"], "key": server["AWS_ACCESS_KEY_ID"], "secret": server["AWS_SECRET_ACCESS_KEY"],
               "client_kwargs": {"region_name": "us-east-1"}}
    config = pipeline(tmp_path / "p.yaml", s3.url("demo"), s3.url("runs/options"), SMALL_STAGES,
                      input={"storage_options": options}, output={"storage_options": options})
    clean("run", str(config), "-q", check=True)
    published = s3.objects("runs/options")
    assert json.loads(published["stats/summary.json"])["input"]["docs"] == 812
    assert not any(server["AWS_SECRET_ACCESS_KEY"].encode() in data for data in published.values())
    assert "storage_options" not in published["pipeline.yaml"].decode()


def test_objects_cleanmix_did_not_write_are_never_deleted(s3, tmp_path):
    s3.put("theirs/notes.txt", b"mine")
    refused = clean("run", str(pipeline(tmp_path / "a.yaml", str(DEMO), s3.url("theirs"), SMALL_STAGES)))
    assert_user_error(refused, "is not empty and was not written by cleanmix")
    assert s3.objects("theirs") == {"notes.txt": b"mine"}
    out = s3.url("runs/ours")
    clean("run", str(pipeline(tmp_path / "b.yaml", str(DEMO), out, SMALL_STAGES)), "-q", check=True)
    s3.put("runs/ours/notes.txt", b"mine")
    s3.put("runs/ours/data-backup/part-00000.parquet", b"mine too")
    other = pipeline(tmp_path / "c.yaml", str(DEMO), out, SMALL_STAGES[:2])
    assert_user_error(clean("run", str(other)), "holds a run of a different pipeline")
    clean("run", str(other), "--overwrite", "-q", check=True)
    after = s3.objects("runs/ours")
    assert after["notes.txt"] == b"mine" and after["data-backup/part-00000.parquet"] == b"mine too"
    assert "rejected/exact_dedup/part-00000.parquet" not in after  # the replaced run's files went


def test_jsonl_ranges_and_warc_read_from_s3_as_from_disk(s3, tmp_path, monkeypatch):
    """A plain JSON Lines file cut into byte ranges, a compressed one and a WARC file: the same units and rows."""
    monkeypatch.setattr(cleanmix.pipelines.jsonl, "UNIT_BYTES", 100_000)
    folder = tmp_path / "in"
    demo = pl.read_parquet(DEMO).select("id", "text", "source")
    write_jsonl(demo, folder / "big.jsonl")
    write_jsonl(demo.head(100), folder / "small.jsonl.zst")
    (folder / "crawl.warc.gz").write_bytes(_warc(demo.head(30).get_column("text").to_list()))
    for path in sorted(folder.iterdir()):
        s3.put(f"mixed/{path.name}", path.read_bytes())
    on_disk, in_store = (validate_pipeline({"input": {"path": p}, "output": {"path": "unused"}}).input
                         for p in (str(folder), s3.url("mixed")))
    a, b = plan_input(on_disk), plan_input(in_store)
    assert [[(s.name, s.part, s.first_row) for s in u.slices] for u in a.units] == \
           [[(s.name, s.part, s.first_row) for s in u.slices] for u in b.units]
    assert sum(len(u.slices[0].part) == 2 for u in b.units) >= 5  # big.jsonl in byte ranges
    for x, y in zip(a.units, b.units):
        assert pl.concat(read_unit(x, on_disk)).equals(pl.concat(read_unit(y, in_store)))


def test_objects_are_planned_several_at_once_in_order_and_a_damaged_one_is_named(s3, tmp_path):
    """Planning looks at objects on threads: the plan keeps file order, and a damaged object stops it or is skipped."""
    for i in range(40):
        s3.put(f"many/p{i:03d}.parquet", (DEMO / f"part-0{i % 3}.parquet").read_bytes())
    s3.put("many/p017.parquet", b"PAR1 not a parquet file")
    config = validate_pipeline({"input": {"path": s3.url("many")}, "output": {"path": "unused"}}).input
    with pytest.raises(UserError, match=re.escape(f"input file {s3.url('many/p017.parquet')} is not a readable Parquet file")):
        plan_input(config)
    plan = plan_input(config.model_copy(update={"on_error": "skip"}))
    assert list(plan.skipped) == [s3.url("many/p017.parquet")]
    assert [s.name for u in plan.units for s in u.slices] == [f"p{i:03d}.parquet" for i in range(40) if i != 17]


def _warc(texts: list[str]) -> bytes:
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    for i, text in enumerate(texts):
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        page = f"<html><body><p>{text}</p></body></html>".encode()
        record = writer.create_warc_record(f"https://example.org/{i}", "response", payload=io.BytesIO(page), http_headers=headers)
        writer.write_record(record)
    return buffer.getvalue()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=60), st.booleans(), st.integers(2, 90), st.integers(1, 50))
def test_streamed_line_ranges_cut_where_memory_mapped_ones_do(tmp_path_factory, lines, tail, unit, block):
    """An object cannot be memory-mapped: its ranges come from one sequential read, at the same cuts."""
    path = tmp_path_factory.mktemp("ranges") / "a.jsonl"
    data = b"".join(b"x" * n + b"\n" for n in lines) + (b"tail" if tail else b"")
    path.write_bytes(data)
    jsonl = cleanmix.pipelines.jsonl
    saved = jsonl.UNIT_BYTES, jsonl.BLOCK_BYTES
    jsonl.UNIT_BYTES, jsonl.BLOCK_BYTES = unit, block
    try:
        assert jsonl._ranges_streamed(str(path), len(data), None) == jsonl._ranges(str(path), len(data))
    finally:
        jsonl.UNIT_BYTES, jsonl.BLOCK_BYTES = saved


def test_a_live_runs_lock_is_respected_and_names_its_holder(s3, tmp_path):
    """A lock whose run lives (here: this test's own pid), or that another machine holds, refuses the run and stays."""
    config = pipeline(tmp_path / "p.yaml", str(DEMO), s3.url("runs/locked"), SMALL_STAGES)
    for holder in ({"host": socket.gethostname(), "pid": os.getpid(), "since": "now"}, {"host": "elsewhere", "pid": 1, "since": "then"}):
        lock = json.dumps(holder).encode()
        s3.put("runs/locked/.cleanmix.lock", lock)
        refused = clean("run", str(config))
        assert_user_error(refused, f"another `clean run` (pid {holder['pid']} on {holder['host']}", "runs/locked/.cleanmix.lock")
        assert s3.objects("runs/locked") == {".cleanmix.lock": lock}
