"""build/daemon.DaemonSource against a save stream made here: what it reads,
spools and hands out (the real daemon: tests/functional/test_dockerd.py)."""
import hashlib
import io
import os
import tarfile
import threading

import pytest

from tripleo_containers.build import daemon


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


CONFIG = b'{"rootfs": {}}'
LAYERS = [b"layer-one" * 3000, b"layer-two" * 2000, b"layer-three" * 1000]


def save_tar(oci):
    """A docker-save tar: legacy (<id>/layer.tar) or OCI (blobs/sha256/<hex>)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for i, layer in enumerate(LAYERS):
            add("blobs/sha256/%s" % digest(layer)[7:] if oci else "l%d/layer.tar" % i, layer)
        add("blobs/sha256/%s" % digest(CONFIG)[7:] if oci else digest(CONFIG)[7:] + ".json",
            CONFIG)
        add("manifest.json", b"[]")
    return out.getvalue()


class FakeDocker(object):
    def __init__(self, data, chunk):
        self.saves = 0
        docker = self

        class Api(object):
            def get_image(self, name, chunk_size):
                docker.saves += 1
                return (data[i:i + chunk] for i in range(0, len(data), chunk))
        self.api = Api()


def read(body):
    return b"".join(body)


@pytest.fixture
def spooled(monkeypatch):
    seen = []
    real = daemon._spool

    def spool(fileobj, folder):
        found, path = real(fileobj, folder)
        seen.append(found)
        return found, path
    monkeypatch.setattr(daemon, "_spool", spool)
    return seen


@pytest.mark.parametrize("oci", [False, True])
@pytest.mark.parametrize("chunk", [7, 1 << 20])
def test_one_save_serves_every_expected_blob_and_leaves_no_file(oci, chunk, spooled):
    docker = FakeDocker(save_tar(oci), chunk)
    source = daemon.DaemonSource(docker)
    handle = daemon.DaemonRef("img")
    cancel = threading.Event()
    try:
        # the destination has LAYERS[0]: it is not expected
        source.expect(handle, [digest(LAYERS[2]), digest(CONFIG), digest(LAYERS[1])])
        sizes = {}
        for wanted in (CONFIG, LAYERS[1], LAYERS[2]):
            body, size = source.open_blob(handle, digest(wanted), sizes.setdefault, cancel)
            assert size == len(wanted) == len(body) and read(body) == wanted
        assert docker.saves == 1
        if oci:  # named by digest: what is not needed is not even spooled
            assert digest(LAYERS[0]) not in spooled
        assert os.listdir(source.folder) == []
        # asked again (a retried upload): the stream is read again
        body, _ = source.open_blob(handle, digest(LAYERS[1]), None, cancel)
        assert read(body) == LAYERS[1] and docker.saves == 2
    finally:
        source.close()
    assert not os.path.exists(source.folder)


def test_a_blob_the_save_lacks_is_one_line_after_one_read():
    docker = FakeDocker(save_tar(False), 1 << 20)
    source = daemon.DaemonSource(docker)
    try:
        with pytest.raises(daemon.DaemonError) as err:
            source.open_blob(daemon.DaemonRef("img"), digest(b"other"), None,
                             threading.Event())
        assert "the saved image img lacks %s" % digest(b"other") in str(err.value)
        assert docker.saves == 1
    finally:
        source.close()


def test_cancel_stops_the_body():
    from tripleo_containers.registry import errors
    source = daemon.DaemonSource(FakeDocker(save_tar(False), 1 << 20))
    cancel = threading.Event()
    try:
        body, _ = source.open_blob(daemon.DaemonRef("img"), digest(LAYERS[0]), None, cancel)
        cancel.set()
        with pytest.raises(errors.Cancelled):
            read(body)
    finally:
        source.close()
