"""The undercloud's own registry: the default push destination."""
import functools
import ipaddress
import socket

PORT = 8787
CTLPLANE_BRIDGE = "br-ctlplane"


def _ipv4_of(interface):
    import fcntl
    import struct
    siocgifaddr = 0x8915
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        packed = struct.pack("256s", interface.encode()[:15])
        try:
            res = fcntl.ioctl(s.fileno(), siocgifaddr, packed)
        except OSError:
            return None
    return socket.inet_ntoa(res[20:24])


def _ipv6_of(interface, if_inet6="/proc/net/if_inet6"):
    try:
        with open(if_inet6) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # scope 00 = global; link-local addresses are useless to other nodes
        if len(fields) == 6 and fields[5] == interface and fields[3] == "00":
            return str(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
    return None


def _resolvable(name):
    try:
        socket.getaddrinfo(name, None)
        return True
    except (socket.gaierror, UnicodeError):
        return False


def format_host(address, port=PORT):
    """host:port, with IPv6 literals bracketed."""
    if ":" in address and not address.startswith("["):
        address = "[%s]" % address
    return "%s:%d" % (address, port)


# Once per process: the host's address does not change during a command, and
# the <host>.ctlplane look-up can wait on a resolver (image list asked twice).
@functools.lru_cache(maxsize=1)
def default_push_destination():
    """br-ctlplane's address, else <short hostname>.ctlplane, else localhost; :8787."""
    address = _ipv4_of(CTLPLANE_BRIDGE) or _ipv6_of(CTLPLANE_BRIDGE)
    if not address:
        name = "%s.ctlplane" % socket.gethostname().split(".")[0]
        address = name if _resolvable(name) else "localhost"
    return format_host(address)
