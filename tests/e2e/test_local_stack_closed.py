"""The local stack's side doors are shut (issue #10, findings 8 and 10).

What `make run` and the test stacks start besides the services, tried the way an attacker
on the machine would: SeaweedFS's filer, volume and master ports, the S3 API with the
documented default keys, and the 平安365 simulator's knobs. Uploads reach the store
only through the S3 gateway with the installation's own credentials.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from minio import Minio
from minio.error import S3Error

from tools import stack as stk

PHOTO = b"\xff\xd8\xff\xe0 the resident's photo"
EVIL = b"<html>replaced</html>"
# Keys the code or its docs once shipped as defaults: none may open the store.
DOCUMENTED_KEYS = [("minqing", "minqing-secret-key"), ("minqing", "minqing-dev-only-secret")]


def s3(stack, access_key: str | None = None, secret_key: str | None = None) -> Minio:
    host = stack.st.env["S3_ENDPOINT"].removeprefix("http://")
    return Minio(host, access_key or stack.st.env["S3_ACCESS_KEY"],
                 secret_key or stack.st.env["S3_SECRET_KEY"], secure=False,
                 region="us-east-1")


def port(stack, part: str) -> int:
    return stk.seaweedfs_ports(int(stack.st.env["S3_PORT"]))[part]


def address(stack, part: str) -> str:
    return stk.seaweedfs_address(int(stack.st.env["S3_PORT"]), part)


@pytest.fixture
def stored(stack):
    """An object put through the S3 API with the installation's credentials."""
    bucket, key = stack.st.env["S3_BUCKET"], f"closed-test/{uuid.uuid4().hex}.jpg"
    s3(stack).put_object(bucket, key, io.BytesIO(PHOTO), len(PHOTO), content_type="image/jpeg")
    return bucket, key


def read_back(stack, bucket: str, key: str) -> bytes:
    response = s3(stack).get_object(bucket, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def weed(*args: str, stdin: str = "", certificate: dict | None = None
         ) -> subprocess.CompletedProcess:
    """The `weed` command line, as a client of the S3 server's gRPC ports, with the
    installation's client certificate if given."""
    binary = Path(sys.executable).parent / "weed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEED_")}
    return subprocess.run([str(binary), *args], input=stdin, capture_output=True, text=True,
                          timeout=60, env=env | (certificate or {}))


def volume_file_id(stack, bucket: str, key: str) -> str:
    """Where the volume server keeps the object, from the filer's metadata (weed shell
    asks over gRPC with the installation's certificate, as the S3 gateway does)."""
    done = weed("shell", f"-master={address(stack, 'master')}",
                f"-filer={address(stack, 'filer')}",
                stdin=f"fs.meta.cat /buckets/{bucket}/{key}\n",
                certificate=stk.seaweedfs_tls(stack.st.run_dir))
    start, end = done.stdout.find("{"), done.stdout.rfind("}")
    assert start >= 0, done.stdout + done.stderr
    (chunk,) = json.loads(done.stdout[start:end + 1])["chunks"]
    return chunk["fileId"]


def test_the_filer_port_refuses_an_unauthenticated_read_and_write_of_an_upload(stack,
                                                                               stored):
    # Given an upload in the bucket
    bucket, key = stored
    filer = f"http://127.0.0.1:{port(stack, 'filer')}"
    # When someone without credentials reads it, lists the bucket and overwrites it there
    read = requests.get(f"{filer}/buckets/{bucket}/{key}", timeout=5)
    listing = requests.get(f"{filer}/buckets/{bucket}/closed-test/",
                           headers={"Accept": "application/json"}, timeout=5)
    write = requests.put(f"{filer}/buckets/{bucket}/{key}", data=EVIL, timeout=5)
    # Then every request is refused, nothing of the upload leaks, and it is unchanged
    statuses = [r.status_code for r in (read, listing, write)]
    assert all(status >= 400 for status in statuses), statuses
    assert PHOTO not in read.content and key.split("/")[1] not in listing.text
    assert read_back(stack, bucket, key) == PHOTO


def test_the_volume_port_refuses_an_unauthenticated_read_and_write_of_an_upload(stack,
                                                                                stored):
    # Given an upload and where the volume server keeps it
    bucket, key = stored
    fid = volume_file_id(stack, bucket, key)
    volume = f"http://127.0.0.1:{port(stack, 'volume')}/{fid}"
    # When someone without a token reads it and writes over it there
    read = requests.get(volume, timeout=5)
    write = requests.post(volume, files={"file": ("x.html", EVIL, "text/html")}, timeout=5)
    # Then both are refused and the upload is unchanged
    assert (read.status_code, write.status_code) == (401, 401)
    assert PHOTO not in read.content
    assert read_back(stack, bucket, key) == PHOTO


def test_the_master_port_hands_out_no_upload_slot_and_deletes_no_bucket(stack, stored):
    # Given an upload in the bucket
    bucket, key = stored
    master = f"http://127.0.0.1:{port(stack, 'master')}"
    # When someone without credentials asks the master for a slot, uploads, drops the bucket
    assign = requests.get(f"{master}/dir/assign", timeout=5)
    submit = requests.post(f"{master}/submit", files={"file": ("x.html", EVIL)}, timeout=5)
    drop = requests.get(f"{master}/col/delete", params={"collection": bucket}, timeout=5)
    # Then none of it is served, and the upload is still there
    statuses = [r.status_code for r in (assign, submit, drop)]
    assert all(status >= 400 for status in statuses), statuses
    assert "fid" not in assign.text
    assert read_back(stack, bucket, key) == PHOTO


def test_the_grpc_ports_refuse_a_client_without_the_installations_certificate(stack,
                                                                             tmp_path):
    # Given a file someone on the machine wants to slip into the store
    evil = tmp_path / "evil.html"
    evil.write_bytes(EVIL)
    # When they ask the master for a write token and upload it over gRPC
    done = weed("upload", f"-master={address(stack, 'master')}", str(evil))
    # Then the master does not talk to them, and nothing was stored
    assert done.returncode != 0 and '"fid"' not in done.stdout, done.stdout


@pytest.mark.parametrize("access_key,secret_key", DOCUMENTED_KEYS)
def test_s3_refuses_the_documented_default_keys(stack, stored, access_key, secret_key):
    # Given an upload in the bucket
    bucket, key = stored
    # When someone signs with keys that were once documented defaults
    with pytest.raises(S3Error) as refused:
        s3(stack, access_key, secret_key).get_object(bucket, key)
    # Then S3 does not know them
    assert refused.value.code in ("InvalidAccessKeyId", "SignatureDoesNotMatch",
                                  "AccessDenied")


def _listening(pid: int) -> set[tuple[str, int]]:
    """The (address, port) of every TCP socket `pid` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port_hex = local.split(":")
            if width == 8:
                address = ".".join(str(b) for b in bytes.fromhex(address)[::-1])
            found.add((address, int(port_hex, 16)))
    return found


def test_every_port_of_the_local_s3_server_is_bound_to_loopback(stack):
    # Given the S3 server this stack started
    pid = int((stack.st.run_dir / "s3.pid").read_text())
    # When we list what it listens on
    sockets = _listening(pid)
    # Then there are its ports, and every one is on 127.0.0.1
    assert len(sockets) >= 5, sockets
    assert {address for address, _ in sockets} == {"127.0.0.1"}, sockets


def test_the_simulators_knobs_refuse_a_caller_without_the_installation_token(stack):
    # Given the 平安365 simulator this stack started, up
    admin = f"http://{stack.st.env['PINGAN365_SIM_ADDRESS']}/_sim"
    up = requests.post(f"{admin}/config", json={"down": False},
                       headers=stack.sim_admin_headers, timeout=5)
    assert up.status_code == 200, up.text
    # When a caller without the token takes the partner down, or with a wrong one
    anonymous = requests.post(f"{admin}/config", json={"down": True}, timeout=5)
    wrong = requests.post(f"{admin}/config", json={"down": True}, timeout=5,
                          headers={"Authorization": "Bearer not-the-token"})
    # Then both are refused, and the partner is still up for the bridge
    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    knobs = requests.get(f"{admin}/config", headers=stack.sim_admin_headers, timeout=5)
    assert knobs.status_code == 200 and knobs.json()["down"] is False
