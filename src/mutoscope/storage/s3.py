"""An S3-compatible bucket (AWS S3, MinIO, SeaweedFS, ...) behind the `Storage` interface.

Every object is written with one request that either lands whole or not at all (a PUT, or a multipart
upload that becomes visible only when it completes), so readers never see a part. Failures of the
service itself become `StorageUnavailable` with a message safe for clients; the cause is logged.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from mutoscope.storage.base import CHUNK_BYTES, Storage, StorageUnavailable, check_key
from mutoscope.storage.private import private_dir

logger = logging.getLogger(__name__)

_MISSING = {"404", "NoSuchKey", "NotFound"}
# Objects up to this size are spooled in memory by `open`; larger ones go to a scratch file.
_SPOOL_BYTES = 8 * 1024 * 1024


def _missing(e: Exception) -> bool:
    return isinstance(e, ClientError) and str(e.response.get("Error", {}).get("Code")) in _MISSING


class S3Storage(Storage):
    """Args:
        bucket: the bucket; it must exist (the operator creates it and its lifecycle rules).
        prefix: a folder inside the bucket for this deployment ("" for the whole bucket).
        scratch: a local folder for jobs' temporary files and spooled downloads.
        client: a boto3 S3 client; built from the keyword arguments below when None.
        endpoint_url, region, access_key_id, secret_access_key: connection; None leaves each to boto3's
            own lookup (AWS_* variables, ~/.aws, instance roles).
        addressing_style: "path" for most self-hosted servers, "auto"/"virtual" for AWS.
        multipart_threshold: files at least this large are uploaded in parts of this size, in parallel.
    """

    page_size = 1000  # keys per listing page and per DeleteObjects call (S3's maximum for both)

    def __init__(self, bucket: str, prefix: str = "", *, scratch: Path, client: Any = None,
                 endpoint_url: str | None = None, region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, addressing_style: str = "path",
                 multipart_threshold: int = 16 * 1024 * 1024):
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.client = client or boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region, aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(s3={"addressing_style": addressing_style}, connect_timeout=5, read_timeout=60,
                          retries={"mode": "standard", "max_attempts": 3},
                          # Checksums only where S3 requires them: several S3-compatible servers refuse
                          # the CRC trailers newer boto3 sends by default.
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))
        self.transfer = TransferConfig(multipart_threshold=multipart_threshold, multipart_chunksize=multipart_threshold)
        # 0700 like the local store: spooled downloads and job scratch can hold uploads that show a face.
        self.scratch = private_dir(scratch)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _unavailable(self, op: str, key: str, e: Exception) -> StorageUnavailable:
        logger.warning("storage %s: %s %s failed: %s", self.url, op, key, e)
        return StorageUnavailable("The server's storage is unavailable; try again later.")

    def check(self) -> None:
        """Fail fast at start-up when the bucket cannot be reached, naming it (for the operator's console)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as e:
            where = f" at {self.endpoint_url}" if self.endpoint_url else ""
            if isinstance(e, ClientError):
                code = e.response.get("Error", {}).get("Code")
                reason = "the bucket does not exist" if str(code) in ("404", "NoSuchBucket") else \
                    f"the service answered {code}"
            elif isinstance(e, NoCredentialsError):
                reason = "no credentials (set MUTOSCOPE_S3_ACCESS_KEY_ID / MUTOSCOPE_S3_SECRET_ACCESS_KEY)"
            elif isinstance(e, (BotoConnectionError, HTTPClientError)):
                reason = "cannot connect"
            else:
                reason = type(e).__name__
            raise StorageUnavailable(f"Storage {self.url}{where} is unreachable: {reason}.") from None

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except (BotoCoreError, ClientError) as e:
            raise self._unavailable("put", key, e) from None

    def put_file(self, key: str, src: Path) -> None:
        try:
            self.client.upload_file(str(src), self.bucket, self._key(key), Config=self.transfer)
        except (BotoCoreError, ClientError, Boto3Error) as e:
            raise self._unavailable("upload", key, e) from None
        os.unlink(src)

    def open(self, key: str) -> BinaryIO:
        # Callers seek (PyAV, zip readers), which a response body cannot: spool the object first.
        f = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, dir=self.scratch)
        try:
            self.client.download_fileobj(self.bucket, self._key(key), f, Config=self.transfer)
        except (BotoCoreError, ClientError, Boto3Error) as e:
            f.close()
            if _missing(e):
                raise FileNotFoundError(key) from None
            raise self._unavailable("get", key, e) from None
        f.seek(0)
        return f  # type: ignore[return-value]

    def open_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key),
                                          Range=f"bytes={start}-{end}")["Body"]
        except (BotoCoreError, ClientError) as e:
            if _missing(e):
                raise FileNotFoundError(key) from None
            raise self._unavailable("get", key, e) from None
        return self._chunks(body, key)

    def _chunks(self, body: Any, key: str) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK_BYTES)
        except BotoCoreError as e:
            raise self._unavailable("read", key, e) from None
        finally:
            body.close()

    def local_path(self, key: str) -> Path | None:
        return None

    def local_copy(self, key: str, dest: Path) -> Path | None:
        part = dest.with_name(dest.name + ".part")
        try:
            self.client.download_file(self.bucket, self._key(key), str(part), Config=self.transfer)
        except (BotoCoreError, ClientError, Boto3Error) as e:
            part.unlink(missing_ok=True)
            if _missing(e):
                return None
            raise self._unavailable("get", key, e) from None
        os.replace(part, dest)
        return dest

    def size(self, key: str) -> int | None:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except (BotoCoreError, ClientError) as e:
            if _missing(e):
                return None
            raise self._unavailable("head", key, e) from None

    def delete_prefix(self, prefix: str) -> None:
        base = self._key(prefix.rstrip("/"))
        # The object itself and what is under base/ -- never "videos/abc" matching "videos/abcdef".
        keys = [base]
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base + "/", PaginationConfig={"PageSize": self.page_size})
            for page in pages:
                keys.extend(o["Key"] for o in page.get("Contents", ()))
            for i in range(0, len(keys), self.page_size):
                batch = [{"Key": k} for k in keys[i:i + self.page_size]]
                out = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
                errors = [e for e in out.get("Errors", ()) if str(e.get("Code")) not in _MISSING]
                if errors:
                    raise ClientError({"Error": errors[0]}, "DeleteObjects")
        except (BotoCoreError, ClientError) as e:
            raise self._unavailable("delete", prefix, e) from None

    def scratch_dir(self) -> Path:
        return self.scratch
