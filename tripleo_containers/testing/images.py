"""Build small Kolla-like images straight into a registry, without Docker.

Kolla images share a layer chain: ``base`` (the OS) -> ``openstack-base``
-> ``<project>-base`` (e.g. nova-base) -> the service image; infrastructure
images (mariadb, rabbitmq, ...) sit directly on ``base``.  This module
reproduces that shape so copy tests and benchmarks see realistic sharing:
the same base blobs in every repository, one per-project layer shared by
that project's services, one layer of its own per image.

Layers are real tar.gz blobs whose payload is seeded pseudo-random bytes
(deterministic for the same seed, incompressible so sizes mean bytes on the
wire).  Each image has its own config blob with Kolla/TripleO-style labels
(``version``, ``release``, ...) for tag discovery.  Manifests are Docker
schema2 or OCI; ``multiarch`` images are pushed as a Docker manifest list /
OCI index of linux/amd64 + linux/arm64.

Upload path: each unique layer is uploaded once (POST + one monolithic PUT
with ``digest=``) into the first repository that uses it, then cross-mounted
into the others; children and blobs go in before the manifest that names
them, as distribution 2.8 requires.

Entry point: :func:`seed_kolla_set`.
"""
import collections
import concurrent.futures
import hashlib
import json
import struct
import tarfile
import zlib
from urllib.parse import urlencode, urljoin

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

MEDIA_TYPES = {
    "docker": (DOCKER_MANIFEST, DOCKER_LIST, DOCKER_CONFIG, DOCKER_LAYER),
    "oci": (OCI_MANIFEST, OCI_INDEX, OCI_CONFIG, OCI_LAYER),
}
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

# Kolla image names as TripleO Pike listed them (first 60 are the default set).
KOLLA_IMAGES = (
    "aodh-api aodh-evaluator aodh-listener aodh-notifier barbican-api "
    "ceilometer-central ceilometer-compute ceilometer-notification ceilometer-ipmi "
    "cinder-api cinder-backup cinder-scheduler cinder-volume collectd congress-api "
    "cron ec2-api etcd fluentd glance-api gnocchi-api gnocchi-metricd gnocchi-statsd "
    "haproxy heat-all heat-api-cfn heat-api heat-engine horizon ironic-api "
    "ironic-conductor ironic-inspector ironic-pxe iscsid keystone manila-api "
    "manila-scheduler manila-share mariadb memcached mistral-api mistral-engine "
    "mistral-executor mistral-event-engine mongodb multipathd neutron-dhcp-agent "
    "neutron-l3-agent neutron-metadata-agent neutron-openvswitch-agent "
    "neutron-sriov-agent neutron-server nova-api nova-compute-ironic nova-compute "
    "nova-conductor nova-consoleauth nova-libvirt nova-novncproxy nova-placement-api "
    "nova-scheduler octavia-api octavia-health-manager octavia-housekeeping "
    "octavia-worker ovn-controller ovn-northd panko-api qdrouterd rabbitmq redis "
    "sahara-api sahara-engine swift-account swift-container swift-object "
    "swift-proxy-server tacker zaqar").split()
DEFAULT_IMAGES = KOLLA_IMAGES[:60]

# Images Kolla builds on ``base`` rather than ``openstack-base``.
INFRA_IMAGES = frozenset(
    "collectd cron etcd fluentd haproxy iscsid mariadb memcached mongodb "
    "multipathd qdrouterd rabbitmq redis sensu-client opendaylight "
    "ovn-controller ovn-northd".split())

# Compressed layer sizes in bytes by role.  "bench": 60 default images come
# to ~300 MiB of unique blobs (roughly a tenth of a real Kolla set); "full":
# layer sizes like a real CentOS Kolla build (base ~80 MiB, openstack-base
# ~160 MiB, a project's common layer ~40 MiB, a service's own ~6 MiB).
SIZE_PRESETS = {
    "tiny": {"base": 4096, "openstack-base": 2048, "project": 1024, "service": 512},
    "small": {"base": 256 << 10, "openstack-base": 128 << 10,
              "project": 64 << 10, "service": 16 << 10},
    "bench": {"base": 64 << 20, "openstack-base": 56 << 20,
              "project": 8 << 20, "service": 1536 << 10},
    "full": {"base": 80 << 20, "openstack-base": 160 << 20,
             "project": 40 << 20, "service": 6 << 20},
}

_EPOCH = "2026-01-01T00:00:00Z"
_ARCHES = ("amd64", "arm64")


class Blob(collections.namedtuple("Blob", "digest size data diff_id")):
    """A content-addressed blob; ``diff_id`` is the sha256 of the
    uncompressed tar for layers, None for configs."""


SeededImage = collections.namedtuple(
    "SeededImage",
    "name repository reference digest media_type manifest config_digest layers "
    "children labels tags")
SeededImage.__doc__ = """One pushed image.

name: Kolla name ('nova-api'); repository: 'ns/prefix+name'; reference:
'host:port/ns/prefix+name:tag'; digest: sha256 of the manifest bytes
(the list/index for multiarch); manifest: exact bytes pushed; media_type;
config_digest and layers (digests, base first) of the amd64 image;
children: {arch: SeededImage} for a list/index, else {}; labels: config
labels; tags: all tags pushed.
"""


class SeededSet(object):
    """Result of :func:`seed_kolla_set`.

    images: {name: SeededImage}; blobs: {digest: size} of every unique
    blob (layers and configs, children's included) - what a copy must
    move at least once; manifests: {digest: bytes} of every manifest
    (children included); layer_digests: the layer subset of ``blobs``.
    """

    def __init__(self, registry, namespace, prefix, tag, fmt):
        self.registry = registry
        self.namespace = namespace
        self.prefix = prefix
        self.tag = tag
        self.fmt = fmt
        self.images = collections.OrderedDict()
        self.blobs = {}
        self.layer_digests = set()
        self.manifests = {}

    @property
    def unique_bytes(self):
        """Sum of the sizes of all unique blobs (layers + configs)."""
        return sum(self.blobs.values())

    @property
    def references(self):
        return [img.reference for img in self.images.values()]

    def __repr__(self):
        return "<SeededSet %d images, %d blobs, %d bytes>" % (
            len(self.images), len(self.blobs), self.unique_bytes)


# --------------------------------------------------------------------------
# blob generation


_PERIOD = 1 << 20


def _payload(key, size, seed):
    """``size`` pseudo-random bytes determined by (seed, key, size).

    A 1 MiB random block repeated: gzip's 32 KiB window cannot see the
    repetition, so the layer stays incompressible, and generating is a
    memcpy instead of a PRNG run (the PRNG was half the seeding time).
    """
    block = hashlib.shake_256(
        ("%s\0%s\0%d" % (seed, key, size)).encode()).digest(min(size, _PERIOD))
    if size <= _PERIOD:
        return block
    return (block * (size // _PERIOD + 1))[:size]


def _tar_member(name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1767225600  # fixed: identical inputs give identical digests
    info.uname = info.gname = "root"
    pad = (-len(data)) % tarfile.BLOCKSIZE
    return [info.tobuf(format=tarfile.USTAR_FORMAT), data, b"\0" * pad]


def _gzip_stored(chunks, total):
    """gzip of the concatenated chunks using stored (uncompressed) deflate
    blocks: valid gzip any tool reads, several times faster than zlib level
    0 here, and the payload is random so compression would gain nothing."""
    out = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"]
    data = b"".join(chunks)
    crc = zlib.crc32(data)
    view = memoryview(data)
    step = 65535
    for off in range(0, max(total, 1), step):
        piece = view[off:off + step]
        final = 1 if off + step >= total else 0
        out.append(struct.pack("<BHH", final, len(piece), 0xFFFF ^ len(piece)))
        out.append(piece)
    out.append(struct.pack("<II", crc & 0xFFFFFFFF, total & 0xFFFFFFFF))
    return b"".join(out), hashlib.sha256(data).hexdigest()


def make_layer(key, size, seed=0):
    """A gzip'd tar layer of about ``size`` bytes (never less than ~2 KiB:
    tar headers and end blocks) holding a small text file naming ``key``
    and a random payload file."""
    text = ("layer %s\n" % key).encode()
    overhead = 3 * tarfile.BLOCKSIZE + 2 * tarfile.BLOCKSIZE + 1024 + 64
    payload = _payload(key, max(size - overhead, 0), seed)
    safe = key.replace("/", "_")
    members = (_tar_member("usr/share/kolla/%s.txt" % safe, text)
               + _tar_member("var/lib/kolla/%s.bin" % safe, payload)
               + [b"\0" * (2 * tarfile.BLOCKSIZE)])
    total = sum(len(c) for c in members)
    data, diff_hex = _gzip_stored(members, total)
    return Blob("sha256:" + hashlib.sha256(data).hexdigest(), len(data), data,
                "sha256:" + diff_hex)


def _json_blob(obj):
    data = json.dumps(obj, indent=3, sort_keys=True).encode()
    return Blob("sha256:" + hashlib.sha256(data).hexdigest(), len(data), data, None)


def layer_chain(name):
    """Layer roles of a Kolla image, base first: [(key, role), ...]."""
    chain = [("base", "base")]
    if name not in INFRA_IMAGES:
        chain.append(("openstack-base", "openstack-base"))
        project = name.split("-")[0]
        if "-" in name:
            chain.append(("%s-base" % project, "project"))
    chain.append((name, "service"))
    return chain


def image_config(name, arch, layers, labels):
    return {
        "architecture": arch,
        "os": "linux",
        "created": _EPOCH,
        "config": {
            "User": "root" if name in INFRA_IMAGES else name.split("-")[0],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "KOLLA_BASE_DISTRO=centos", "KOLLA_INSTALL_TYPE=binary"],
            "Cmd": ["kolla_start"],
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [b.diff_id for b in layers]},
        "history": [{"created": _EPOCH, "created_by": "kolla-build %s" % name}
                    for _ in layers],
    }


def image_manifest(fmt, config, layers):
    manifest_type, _, config_type, layer_type = MEDIA_TYPES[fmt]
    doc = {"schemaVersion": 2, "mediaType": manifest_type,
           "config": {"mediaType": config_type, "size": config.size,
                      "digest": config.digest},
           "layers": [{"mediaType": layer_type, "size": b.size, "digest": b.digest}
                      for b in layers]}
    return _json_blob(doc)


def image_index(fmt, children):
    """children: [(arch, manifest Blob)]."""
    manifest_type, list_type = MEDIA_TYPES[fmt][:2]
    doc = {"schemaVersion": 2, "mediaType": list_type,
           "manifests": [{"mediaType": manifest_type, "size": m.size,
                          "digest": m.digest,
                          "platform": {"architecture": arch, "os": "linux"}}
                         for arch, m in children]}
    return _json_blob(doc)


# --------------------------------------------------------------------------
# pushing


class Pusher(object):
    """Minimal v2 pusher over urllib3 (one thread-safe pool manager).

    auth: (user, password) for basic auth or None; verify: True (default
    trust), a CA bundle path, or False.  Raises RuntimeError naming the
    request on any failure.
    """

    def __init__(self, url, auth=None, verify=True):
        self.url = url.rstrip("/")
        self._http, self._headers = http_client(auth, verify, timeout=300)

    def _call(self, method, url, ok, body=None, headers=None):
        r = self._http.request(method, url, body=body, redirect=False,
                               headers=dict(self._headers, **(headers or {})))
        if r.status not in ok:
            raise RuntimeError("%s %s: %d %s" % (method, url.split("?")[0], r.status,
                                                 r.data[:300].decode("utf-8", "replace")))
        return r

    def _put_upload(self, repo, location, blob):
        loc = urljoin("%s/v2/%s/blobs/uploads/" % (self.url, repo), location)
        sep = "&" if "?" in loc else "?"
        self._call("PUT", "%s%sdigest=%s" % (loc, sep, blob.digest), (201,),
                   body=blob.data, headers={"Content-Type": "application/octet-stream"})

    def upload(self, repo, blob):
        r = self._call("POST", "%s/v2/%s/blobs/uploads/" % (self.url, repo), (202,))
        self._put_upload(repo, r.headers["Location"], blob)

    def mount(self, repo, blob, from_repo):
        """Mount; falls back to uploading when the registry opens a session
        instead (202)."""
        r = self._call("POST", "%s/v2/%s/blobs/uploads/?%s" % (
            self.url, repo, urlencode({"mount": blob.digest, "from": from_repo})), (201, 202))
        if r.status == 202:
            if blob.data is None:
                raise RuntimeError("mount of %s into %s refused and no data kept"
                                   % (blob.digest, repo))
            self._put_upload(repo, r.headers["Location"], blob)

    def put_manifest(self, repo, ref, blob, media_type):
        self._call("PUT", "%s/v2/%s/manifests/%s" % (self.url, repo, ref), (201,),
                   body=blob.data, headers={"Content-Type": media_type})


def http_client(auth, verify, timeout):
    """(urllib3 PoolManager, headers) for test tooling talking to a registry:
    no retries, no proxy, TLS as the product verifies it."""
    import urllib3
    from tripleo_containers.registry import connections
    headers = urllib3.make_headers(basic_auth="%s:%s" % auth) if auth else {}
    tls = connections.tls_kwargs(verify)
    # A PoolManager gives its keywords to plain-HTTP pools too, and urllib3
    # 1.26 (Debian's) strips only some TLS ones there: assert_hostname made
    # every http pool fail.  CERT_NONE checks no hostname anyway.
    tls.pop("assert_hostname", None)
    http = urllib3.PoolManager(maxsize=16, retries=False, timeout=timeout, **tls)
    return http, headers


def _registry_args(registry, auth, verify):
    """Accept a URL or a LocalRegistry-like object (url, username,
    password, ca_cert, insecure)."""
    if isinstance(registry, str):
        return registry, auth, (True if verify is None else verify)
    url = registry.url
    if auth is None and getattr(registry, "username", None):
        auth = (registry.username, registry.password)
    if verify is None:
        # Plain HTTP has nothing to verify; HTTPS uses the registry's CA,
        # else the system trust store.
        verify = (getattr(registry, "ca_cert", None) or True) if url.startswith("https:") \
            else False
    return url, auth, verify


def seed_kolla_set(registry, namespace="tripleo", prefix="centos-binary-",
                   tag="latest", images=DEFAULT_IMAGES, sizes="tiny",
                   fmt="docker", multiarch=(), labels=None, image_labels=None,
                   extra_tags=(), auth=None, verify=None, seed=0, workers=4):
    """Push a Kolla-like image set and describe what was pushed.

    registry: base URL ('http://127.0.0.1:PORT') or a LocalRegistry (its
    url, credentials and CA are used); images: Kolla names; sizes: a
    SIZE_PRESETS key or {role: bytes} for roles base, openstack-base,
    project, service; fmt: 'docker' (schema2) or 'oci'; multiarch: names
    pushed as a manifest list / OCI index (amd64 + arm64, the arm64 child
    with layers of its own); labels: extra config labels for all images,
    image_labels: {name: {label: value}}; extra_tags: more tags pointing
    at the same manifest; seed: changes every byte (a different "build").

    Returns a :class:`SeededSet`.
    """
    if fmt not in MEDIA_TYPES:
        raise ValueError("fmt must be one of %s" % ", ".join(sorted(MEDIA_TYPES)))
    size_of = dict(SIZE_PRESETS[sizes] if isinstance(sizes, str) else sizes)
    url, auth, verify = _registry_args(registry, auth, verify)
    pusher = Pusher(url, auth, verify)
    address = url.split("://", 1)[1].rstrip("/")
    result = SeededSet(address, namespace, prefix, tag, fmt)
    images = list(images)
    unknown_multi = set(multiarch) - set(images)
    if unknown_multi:
        raise ValueError("multiarch names not in images: %s" % sorted(unknown_multi))

    def repo_of(name):
        return "%s/%s%s" % (namespace, prefix, name) if namespace else prefix + name

    # Plan: which layer keys each (image, arch) needs; the first repo that
    # needs a layer receives the upload, the others mount it.
    wanted = []  # (name, arch)
    for name in images:
        wanted.append((name, "amd64"))
        if name in multiarch:
            wanted.append((name, "arm64"))
    chains = {}
    home = collections.OrderedDict()
    for name, arch in wanted:
        chain = [("%s@%s" % (key, arch) if arch != "amd64" else key, role)
                 for key, role in layer_chain(name)]
        chains[(name, arch)] = chain
        for key, role in chain:
            home.setdefault(key, (repo_of(name), size_of[role]))

    layers = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        # Biggest first so the long uploads overlap the many small ones.
        order = sorted(home, key=lambda k: -home[k][1])

        def gen_and_upload(key):
            repo, size = home[key]
            blob = make_layer(key, size, seed)
            pusher.upload(repo, blob)
            return key, blob._replace(data=None)

        for key, blob in pool.map(gen_and_upload, order):
            layers[key] = blob
            result.blobs[blob.digest] = blob.size
            result.layer_digests.add(blob.digest)

        def push_image(name):
            repo = repo_of(name)
            base_labels = {
                "name": prefix + name, "kolla_version": "20.0.0",
                "version": "17.0.0", "release": "1", "build-date": "20260101",
                "summary": "Kolla-like %s image (tripleo-containers test data)" % name,
            }
            base_labels.update(labels or {})
            base_labels.update((image_labels or {}).get(name, {}))
            children = collections.OrderedDict()
            for arch in _ARCHES:
                if (name, arch) not in chains:
                    continue
                chain_blobs = [layers[k] for k, _ in chains[(name, arch)]]
                for (key, _), blob in zip(chains[(name, arch)], chain_blobs):
                    if home[key][0] != repo:
                        pusher.mount(repo, blob, home[key][0])
                config = _json_blob(image_config(name, arch, chain_blobs, base_labels))
                pusher.upload(repo, config)
                manifest = image_manifest(fmt, config, chain_blobs)
                children[arch] = (manifest, config, chain_blobs)
            if name in multiarch:
                for arch, (manifest, _, _) in children.items():
                    pusher.put_manifest(repo, manifest.digest, manifest, MEDIA_TYPES[fmt][0])
                top = image_index(fmt, [(a, m) for a, (m, _, _) in children.items()])
                top_type = MEDIA_TYPES[fmt][1]
            else:
                top = children["amd64"][0]
                top_type = MEDIA_TYPES[fmt][0]
            tags = [tag] + [t for t in extra_tags if t != tag]
            for t in tags:
                pusher.put_manifest(repo, t, top, top_type)
            return name, repo, top, top_type, children, base_labels, tags

        futures = [pool.submit(push_image, n) for n in images]
        for fut in futures:
            name, repo, top, top_type, children, img_labels, tags = fut.result()
            child_images = {}
            for arch, (manifest, config, chain_blobs) in children.items():
                result.blobs[config.digest] = config.size
                result.manifests[manifest.digest] = manifest.data
                child_images[arch] = SeededImage(
                    name, repo, "%s/%s@%s" % (address, repo, manifest.digest),
                    manifest.digest, MEDIA_TYPES[fmt][0], manifest.data,
                    config.digest, [b.digest for b in chain_blobs], {},
                    img_labels, [])
            result.manifests[top.digest] = top.data
            amd = child_images["amd64"]
            result.images[name] = SeededImage(
                name, repo, "%s/%s:%s" % (address, repo, tag), top.digest,
                top_type, top.data, amd.config_digest, amd.layers,
                child_images if name in multiarch else {}, img_labels, tags)
    return result
