"""`openstack overcloud container image upload --source-daemon`: the real CLI
reading images from a private dockerd and pushing them into a real
docker-registry, checked with skopeo; same table and batch failure as a
registry-sourced upload."""
import json

from osc_cli import openstack
from test_dockerd import daemon, docker, write_images_file  # noqa: F401 (fixture)
from test_faults_field import _interrupt, _start_upload, open_sessions
from tripleo_containers.testing import faultproxy
from tripleo_containers.testing import images


def _upload(*args, env=None):
    proc = openstack("overcloud", "container", "image", "upload", "-f", "json", *args,
                     env=env)
    rows = json.loads(proc.stdout) if proc.stdout.strip().startswith("[") else None
    return proc, rows


def _in_daemon_only(d, src, names):
    """Seed ``names``, pull them into the daemon, stop the source registry:
    from then on the images can only come from the daemon."""
    images.seed_kolla_set(src.url, "tripleo", "centos-binary-", "t", images=names,
                          sizes="tiny")
    pulled = ["%s/tripleo/centos-binary-%s:t" % (src.address, n) for n in names]
    for name in pulled:
        docker(d, "pull", "-q", name)
    src.stop()
    return pulled


def test_cli_uploads_from_daemon_reports_failures_and_reruns_free(
        daemon, skopeo, request_counter, tmp_path):  # noqa: F811
    d, src, dst = daemon
    names = ["nova-api", "cron"]
    pulled = _in_daemon_only(d, src, names)
    absent = "%s/tripleo/centos-binary-keystone:t" % src.address
    config = write_images_file(tmp_path / "images.yaml", [pulled[0], absent, pulled[1]],
                               dst.address, [dst.address])

    proc, rows = _upload("--config-file", config, "--source-daemon", d.url)

    assert proc.returncode == 1
    assert "1 of 3 images failed to copy" in proc.stderr
    assert "image %s is not in the Docker daemon" % absent in proc.stderr
    assert "Traceback" not in proc.stderr
    assert [r["Image"] for r in rows] == [pulled[0], absent, pulled[1]]
    assert [r["Result"] for r in rows] == ["copied", "failed", "copied"]
    for name, row in zip(names, (rows[0], rows[2])):
        repo = "tripleo/centos-binary-%s:t" % name
        assert row["Destination"] == "%s/%s" % (dst.address, repo)
        assert row["Bytes moved"] > 0
        assert skopeo.inspect(dst, repo)["Digest"] == row["Digest"]

    # bare --source-daemon means $DOCKER_HOST; a finished copy writes nothing
    good = write_images_file(tmp_path / "good.yaml", pulled, dst.address, [dst.address])
    counter = request_counter(dst)
    proc, rows = _upload("--config-file", good, "--source-daemon", env=d.env())
    assert proc.returncode == 0, proc.stderr
    assert [(r["Result"], r["Bytes moved"]) for r in rows] == [("already present", 0)] * 2
    assert counter.count(method="PUT") == counter.count(method="POST") == 0


def test_cli_daemon_errors_are_one_line(tmp_path):
    config = write_images_file(tmp_path / "images.yaml", ["127.0.0.1:1/ns/x:t"],
                               "127.0.0.1:2", ["127.0.0.1:2"])
    url = "unix://%s" % (tmp_path / "nothing.sock")
    proc, _ = _upload("--config-file", config, "--source-daemon", url)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Docker daemon at %s is not reachable: " % url)
    assert len(proc.stderr.strip().splitlines()) == 1

    proc, _ = _upload("--config-file", config, "--source-daemon", url, "--dry-run")
    assert proc.returncode == 1
    assert "cannot be combined with --source-daemon" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_ctrl_c_on_daemon_upload_exits_130_cancels_sessions_and_a_rerun_finishes(
        daemon, request_counter, skopeo, tmp_path):  # noqa: F811
    d, src, dst = daemon
    names = ["nova-api", "cron"]
    pulled = _in_daemon_only(d, src, names)
    hold = {"on": True}
    # every blob upload hangs at the destination: the run is busy when signalled
    proxy = faultproxy.FaultProxy(dst.address, hang_seconds=120, decide=lambda req: (
        "hang" if hold["on"] and req.method == "PUT" and req.route == "upload"
        else None)).start()
    counter = request_counter(dst)
    try:
        config = write_images_file(tmp_path / "images.yaml", pulled, proxy.address,
                                   [proxy.address])
        proc = _start_upload(config, "--source-daemon", d.url)
        code, out, err, _ = _interrupt(proc, lambda: len(proxy.faulted("hang")) >= 1)
        assert code == 130, err
        assert "interrupted: 0 of 2 images copied; run the same command again to finish" in err
        assert "Traceback" not in err and "failed unexpectedly" not in err
        # the upload sessions it had opened were deleted at the destination
        assert counter.count(method="DELETE", route="upload") >= 1
        assert open_sessions(dst) == []
        hold["on"] = False
        proc, rows = _upload("--config-file", config, "--source-daemon", d.url)
        assert proc.returncode == 0, proc.stderr
        assert [r["Result"] for r in rows] == ["copied"] * 2
        for name, row in zip(names, rows):
            repo = "tripleo/centos-binary-%s:t" % name
            assert skopeo.inspect(dst, repo)["Digest"] == row["Digest"]
    finally:
        proxy.stop()
