"""An S3-compatible server for tests: moto's server mode, in this process, with one bucket.

The store the object-storage tests (`tests/engine/durable/test_object_storage.py`) and the multi-host tests
(`tests/cluster/multihost/`) use: a real S3 server over HTTP, reached through pyarrow's filesystem layer as an
installation reaches AWS S3 or MinIO, by the `RAYWEAVE_*_URI` and `RAYWEAVE_S3_*` settings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

BUCKET = "rayweave-test"
KEY_ID, SECRET = "rayweave-key", "rayweave-secret"


@dataclass(frozen=True)
class S3Server:
    """A running S3 server: its endpoint and a boto3 client to look into the bucket."""

    endpoint: str
    client: Any

    def keys(self, prefix: str) -> list[str]:
        """Every object key under `prefix` (folder markers left out)."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        # Keys ending in '/' are the empty folder markers pyarrow leaves when it deletes a folder's last file.
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return [key for key in keys if not key.endswith("/")]

    def read(self, key: str) -> bytes:
        """The bytes of an object."""
        return bytes(self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def env(self) -> dict[str, str]:
        """The settings an installation on this server has, as environment variables."""
        return {
            "RAYWEAVE_S3_ENDPOINT_URL": self.endpoint,
            "RAYWEAVE_S3_ACCESS_KEY_ID": KEY_ID,
            "RAYWEAVE_S3_SECRET_ACCESS_KEY": SECRET,
        }


@contextmanager
def moto_s3(ip_address: str = "127.0.0.1") -> Iterator[S3Server]:
    """moto's S3 server listening on `ip_address` (a free port) with the bucket `BUCKET`, for the block."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request in a failure's report
    server = ThreadedMotoServer(ip_address=ip_address, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=BUCKET)
        yield S3Server(endpoint, client)
    finally:
        server.stop()
