"""The object store (MinIO in production, any S3-compatible server here) as a dependency.

Two clients: one for the services' own calls (internal endpoint) and one that signs
presigned URLs for the phone, whose host must be the endpoint the phone can reach. The
region is fixed so that signing a URL never needs a round trip to the server.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import urllib3
from minio import Minio
from minio.commonconfig import ENABLED, CopySource, Filter
from minio.datatypes import PostPolicy
from minio.error import S3Error, ServerError
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule
from nameko.extensions import DependencyProvider

from minqing_kernel.errors import Unavailable

REGION = "us-east-1"
MISSING = ("NoSuchKey", "NoSuchObject", "NotFound")
UPLOADS_PREFIX = "uploads/"  # where upload tickets write (services/intake/domain.py)
UPLOADS_KEPT_DAYS = 1


def make_client(endpoint_url: str, access_key: str, secret_key: str) -> Minio:
    url = urlparse(endpoint_url)
    # minio's default client retries a refused connection five times with backoff: a
    # resident would wait ~6 s to hear that the store is down. Fail fast and say so.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=2.0, read=20.0), maxsize=20,
        retries=urllib3.Retry(total=2, backoff_factor=0.1,
                              status_forcelist=[500, 502, 503, 504]))
    return Minio(url.netloc, access_key=access_key, secret_key=secret_key,
                 secure=url.scheme == "https", region=REGION, http_client=http)


@contextmanager
def store_errors():
    """The store being away is a 503 the caller may retry, not a 500."""
    try:
        yield
    except (urllib3.exceptions.HTTPError, ServerError, OSError) as exc:
        raise Unavailable.of("kernel.object-store-unavailable",
                             code="object-store-unavailable") from exc


class Store:
    def __init__(self, config: dict):
        s3 = config["S3"]
        self.bucket = s3["BUCKET"]
        self.client = make_client(s3["ENDPOINT"], s3["ACCESS_KEY"], s3["SECRET_KEY"])
        public = s3.get("PUBLIC_ENDPOINT") or s3["ENDPOINT"]
        self.public = make_client(public, s3["ACCESS_KEY"], s3["SECRET_KEY"])
        # Path-style, as the minio client addresses any host that is not AWS.
        self.post_url = f"{public.rstrip('/')}/{self.bucket}"

    def presigned_post(self, key: str, content_type: str, max_size: int,
                       expires: timedelta) -> tuple[str, dict]:
        """A browser-style POST policy for exactly one key, one content type and at most
        `max_size` bytes: the store itself refuses any other body. Returns the URL and the
        form fields to send before the file (which goes last, in a field named `file`)."""
        policy = PostPolicy(self.bucket, datetime.now(UTC) + expires)
        policy.add_equals_condition("key", key)
        policy.add_equals_condition("Content-Type", content_type)
        policy.add_content_length_range_condition(1, max_size)
        fields = self.public.presigned_post_policy(policy)
        return self.post_url, {**fields, "key": key, "Content-Type": content_type}

    def copy(self, source: str, target: str) -> bool:
        """Server-side copy, metadata included; False if there is no such source."""
        try:
            with store_errors():
                self.client.copy_object(self.bucket, target, CopySource(self.bucket, source))
        except S3Error as exc:
            if exc.code in MISSING:
                return False
            raise
        return True

    def remove(self, key: str) -> None:
        with store_errors():
            self.client.remove_object(self.bucket, key)

    def presigned_put(self, key: str, expires: timedelta) -> str:
        return self.public.presigned_put_object(self.bucket, key, expires=expires)

    def presigned_get(self, key: str, expires: timedelta) -> str:
        return self.public.presigned_get_object(self.bucket, key, expires=expires)

    def stat(self, key: str):
        """The object's metadata, or None if there is no such object."""
        try:
            with store_errors():
                return self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in MISSING:
                return None
            raise

    def head_bytes(self, key: str, length: int = 32) -> bytes:
        with store_errors():
            response = self.client.get_object(self.bucket, key, offset=0, length=length)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    def check_reachable(self) -> None:
        """Before handing out an upload URL: a URL to a store that is down helps nobody."""
        with store_errors():
            self.client.bucket_exists(self.bucket)

    def ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)
        # What phones write under uploads/ is staging: what a report keeps is copied out
        # when it is attached. An upload nobody attached within a day is not kept.
        self.client.set_bucket_lifecycle(self.bucket, LifecycleConfig([Rule(
            ENABLED, rule_filter=Filter(prefix=UPLOADS_PREFIX), rule_id="expire-uploads",
            expiration=Expiration(days=UPLOADS_KEPT_DAYS))]))


class ObjectStore(DependencyProvider):
    def setup(self) -> None:
        self.store = Store(self.container.config)

    def get_dependency(self, worker_ctx) -> Store:
        return self.store
