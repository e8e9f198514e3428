"""Bad input, over every command: each case must end with one clear line
naming the input, a non-zero exit, no traceback (no --debug), and no
half-written output file.

Cases are (command args, fragment the error must contain). Files are made
in tmp_path; registries are real (plain_registry) or, for hostile ones,
HostileRegistry below (a 100 MiB manifest, a redirect to another host).
"""
import http.server
import os
import threading

import pytest
import yaml

from osc_cli import openstack

MIB = 1024 * 1024
UPPER_DIGEST = "sha256:" + "AB" * 32


class HostileRegistry(object):
    """A registry that answers /v2/ and then misbehaves on manifests:
    mode 'huge' (100 MiB manifest with Content-Length), 'huge-chunked' (no
    length, streamed), 'redirect' (307 to another host)."""

    def __init__(self, mode):
        outer = self
        self.mode = mode
        self.sent = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                if self.path in ("/v2/", "/v2"):
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(b"{}")
                    return
                if outer.mode == "redirect":
                    self.send_response(307)
                    self.send_header("Location", "http://127.0.0.2:9/elsewhere" + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type",
                                 "application/vnd.docker.distribution.manifest.v2+json")
                self.send_header("Docker-Content-Digest", "sha256:" + "0" * 64)
                if outer.mode == "huge":
                    self.send_header("Content-Length", str(100 * MIB))
                else:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if self.command == "HEAD":
                    return
                chunk = b'{"x":"' + b"A" * (MIB - 8) + b'",'
                try:
                    for _ in range(100):
                        if outer.mode == "huge":
                            self.wfile.write(chunk)
                        else:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        outer.sent += len(chunk)
                    if outer.mode != "huge":
                        self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client stopped reading: what we want

            do_GET = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *a: None
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def write(path, content):
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(path, mode) as f:
        f.write(content)
    return str(path)


def assert_clean_failure(proc, fragment, outputs=(), report_on_stdout=False):
    """``report_on_stdout``: commands whose findings are table rows (validate)
    name the input there and summarise on stderr."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines, "no error message"
    text = proc.stderr + (proc.stdout if report_on_stdout else "")
    assert fragment in text, "%r not in: %s" % (fragment, text)
    # the summary is a single line (batch commands list failures before it)
    assert len(lines[-1]) < 600
    for path in outputs:
        assert not os.path.exists(path), "half-written output %s" % path
        leftovers = [n for n in os.listdir(os.path.dirname(path))
                     if n.startswith(os.path.basename(path))]
        assert leftovers == [], leftovers


@pytest.fixture
def files(tmp_path):
    d = tmp_path
    return {
        "malformed": write(d / "malformed.yaml", "container_images: [\n  - imagename: x\n"),
        "empty": write(d / "empty.yaml", ""),
        "binary": write(d / "binary.yaml", bytes(range(256)) * 8),
        "list": write(d / "list.yaml", "- a\n- b\n"),
        "wrong-type": write(d / "wrongtype.yaml", "container_images: {imagename: x}\n"),
        "int-name": write(d / "intname.yaml", "container_images:\n- imagename: 42\n"),
        "missing": str(d / "does-not-exist.yaml"),
        "dir": str(d),
    }


def _upload(*args):
    return openstack("overcloud", "container", "image", "upload", *args)


IMAGES_FILE_CASES = ["malformed", "empty", "binary", "list", "wrong-type", "int-name",
                     "missing", "dir"]


@pytest.mark.parametrize("case", IMAGES_FILE_CASES)
def test_upload_bad_images_file(case, files):
    proc = _upload("--config-file", files[case])
    assert_clean_failure(proc, files[case])


def test_upload_unknown_key_is_refused(tmp_path, plain_registry):
    # a typo'd push_destination must not silently send images elsewhere
    path = write(tmp_path / "typo.yaml", yaml.safe_dump({"container_images": [
        {"imagename": plain_registry.address + "/ns/a:t",
         "push_destinaton": "127.0.0.1:1"}]}))
    proc = _upload("--config-file", path)
    assert_clean_failure(proc, "push_destinaton")


@pytest.mark.parametrize("name, fragment", [
    ("{reg}/Tripleo/Keystone:t1", "Tripleo/Keystone"),
    ("{reg}/ns/keystone:bad tag", "bad tag"),
    ("{reg}/ns/keystone@" + UPPER_DIGEST, UPPER_DIGEST),
    ("{reg}/ns/../../etc/passwd:t1", "../../etc/passwd"),
    ("/etc/passwd", "/etc/passwd"),
    ("{reg}/ns/keystone:t1;rm -rf", "rm -rf"),
    ("{reg}/ns/k%2f..%2fx:t", "%2f"),
])
def test_upload_bad_references(name, fragment, tmp_path, plain_registry, request_counter):
    counter = request_counter(plain_registry)
    name = name.format(reg=plain_registry.address)
    path = write(tmp_path / "refs.yaml", yaml.safe_dump({
        "container_images": [{"imagename": name,
                              "push_destination": plain_registry.address}],
        "insecure_registries": [plain_registry.address]}))
    proc = _upload("--config-file", path)
    assert_clean_failure(proc, fragment)
    assert "1 of 1 images failed" in proc.stderr
    assert counter.count(method="PUT") == 0


@pytest.mark.parametrize("case", ["malformed", "binary", "list", "missing", "empty"])
def test_upload_bad_credentials_file(case, files, tmp_path, plain_registry):
    path = write(tmp_path / "ok.yaml", yaml.safe_dump({"container_images": [
        {"imagename": plain_registry.address + "/ns/a:t",
         "push_destination": plain_registry.address}]}))
    proc = _upload("--config-file", path, "--registry-credentials", files[case])
    assert_clean_failure(proc, files[case])


@pytest.mark.parametrize("case", ["malformed", "binary", "list", "wrong-type", "missing"])
def test_prepare_bad_files_write_nothing(case, files, tmp_path):
    out_env, out_images = str(tmp_path / "out-env.yaml"), str(tmp_path / "out-images.yaml")
    outputs = ["--output-env-file", out_env, "--output-images-file", out_images]
    for option in ("-e", "-r", "--template-file"):
        if case == "wrong-type" and option == "--template-file":
            continue  # a YAML mapping is a valid (if odd) Jinja template
        proc = openstack("overcloud", "container", "image", "prepare", "--namespace",
                         "127.0.0.1:1/ns", "--tag", "t", option, files[case], *outputs)
        assert_clean_failure(proc, files[case], outputs=[out_env, out_images])


@pytest.mark.parametrize("value, fragment", [
    ("--namespace=Bad Namespace!", "Bad Namespace!"),
    ("--tag=bad tag", "bad tag"),
    ("--set=novalue", "novalue"),
    ("--push-destination=not a host", "not a host"),
])
def test_prepare_bad_values_write_nothing(value, fragment, tmp_path):
    out_env = str(tmp_path / "out-env.yaml")
    proc = openstack("overcloud", "container", "image", "prepare", value,
                     "--output-env-file", out_env)
    assert_clean_failure(proc, fragment, outputs=[out_env])


# An empty environment file is valid for Heat (deploy accepts it), so not here.
@pytest.mark.parametrize("case", ["malformed", "binary", "list", "missing"])
def test_environment_validate_bad_files(case, files):
    proc = openstack("overcloud", "container", "environment", "validate", "-e", files[case])
    assert_clean_failure(proc, os.path.basename(files[case]), report_on_stdout=True)


@pytest.mark.parametrize("args, fragment", [
    (["image", "list", "--registry", "bad host!"], "bad host!"),
    (["image", "show", "127.0.0.1:1/Ns/Name:t"], "Ns/Name"),
    (["image", "show", "127.0.0.1:1/ns/name@" + UPPER_DIGEST], UPPER_DIGEST),
    (["image", "show", "127.0.0.1:1/../etc/passwd"], "../etc/passwd"),
    (["image", "delete", "--yes", "127.0.0.1:1/ns/name@sha256:12"], "sha256:12"),
    (["image", "tag", "discover", "--image", "bad image!", "--tag-from-label", "v"],
     "bad image!"),
    (["registry", "start", "--address", "not-an-address"], "not-an-address"),
    (["registry", "start", "--address", "127.0.0.1:99999"], "99999"),
])
def test_registry_commands_bad_values(args, fragment, tmp_path):
    extra = ["--state-dir", str(tmp_path / "state")] if args[0] == "registry" else []
    proc = openstack("overcloud", "container", *(args + extra))
    assert_clean_failure(proc, fragment)


def _start_registry(state_dir, *args):
    """`registry start`; a registry it did start is stopped again at once."""
    proc = openstack("overcloud", "container", "registry", "start", "--address",
                     "127.0.0.1:0", "--state-dir", state_dir, *args)
    if proc.returncode == 0:
        openstack("overcloud", "container", "registry", "stop", "--state-dir", state_dir)
    return proc


_START_OPTIONS = {
    "htpasswd": lambda f: ["--htpasswd", f],
    "mirror-password": lambda f: ["--mirror-password-file", f, "--mirror",
                                  "http://127.0.0.1:1", "--mirror-username", "u"],
    "tls": lambda f: ["--tls-cert", f, "--tls-key", f],
}
@pytest.mark.parametrize("case, option", [
    (c, o) for c in ("binary", "missing", "empty") for o in sorted(_START_OPTIONS)])
def test_registry_start_bad_files(case, option, files, tmp_path):
    proc = _start_registry(str(tmp_path / "st"), *_START_OPTIONS[option](files[case]))
    assert_clean_failure(proc, files[case])


def test_registry_stop_when_nothing_runs(tmp_path):
    proc = openstack("overcloud", "container", "registry", "stop", "--state-dir",
                     str(tmp_path / "nothing-here"))
    assert_clean_failure(proc, "nothing-here")


@pytest.mark.parametrize("case", ["malformed", "binary", "missing"])
def test_build_bad_config_file(case, files):
    proc = openstack("overcloud", "container", "image", "build", "--list-images",
                     "--config-file", files[case])
    assert_clean_failure(proc, files[case])


@pytest.mark.parametrize("mode", ["huge", "huge-chunked", "redirect"])
def test_hostile_registry(mode, tmp_path, plain_registry):
    hostile = HostileRegistry(mode)
    try:
        name = "%s/ns/keystone:t1" % hostile.address
        path = write(tmp_path / "h.yaml", yaml.safe_dump({
            "container_images": [{"imagename": name,
                                  "push_destination": plain_registry.address}],
            "insecure_registries": [hostile.address, plain_registry.address]}))
        fragment = "limit" if mode.startswith("huge") else "307"
        runs = {
            "upload": _upload("--config-file", path),
            "show": openstack("overcloud", "container", "image", "show", name,
                              "--insecure-registry", hostile.address),
            "discover": openstack("overcloud", "container", "image", "tag", "discover",
                                  "--image", name, "--tag-from-label", "version",
                                  "--insecure-registry", hostile.address),
        }
        for command, proc in runs.items():
            assert_clean_failure(proc, fragment)
            assert hostile.address in proc.stderr, (command, proc.stderr)
        # bounded reads: nowhere near the 100 MiB the registry offered, per run
        assert hostile.sent < 3 * 20 * MIB
    finally:
        hostile.stop()
