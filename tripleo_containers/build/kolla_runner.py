"""Run kolla-build in-process with its repos.yaml parsed once.

Started as ``<kolla's python> kolla_runner.py ARGS`` (by file path, so it
also works with a kolla installed in another virtualenv): it imports only
kolla and PyYAML, never tripleo_containers.

Why: kolla 23 renders the Dockerfile of every image it knows (~250) even
when a regex selects a few, and each render re-reads repos.yaml with the
pure-Python YAML loader, twice.  That is ~75% of a ``--template-only`` or
``--list-images`` run (23 s -> 5 s for keystone here).  The loaded data is
memoised and handed out as a deep copy (kolla mutates it), parsed with
libyaml when present; the rendered Dockerfiles are byte-identical.  If
kolla's internals change shape the patch is skipped, not fatal.
"""
import copy
import functools
import os
import sys

# Run by path, this folder is sys.path[0]; its kolla.py would shadow kolla.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def _patch_repos_loader():
    try:
        import yaml
        from kolla.template import methods
        original = methods._load_repos
    except (ImportError, AttributeError):
        return
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    @functools.lru_cache(maxsize=None)
    def cached(override):
        saved = methods.yaml.safe_load
        methods.yaml.safe_load = lambda stream: yaml.load(stream, Loader=loader)
        try:
            return original(override)
        finally:
            methods.yaml.safe_load = saved

    def load_repos(repos_yaml_override=None):
        return copy.deepcopy(cached(repos_yaml_override))

    methods._load_repos = load_repos


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--tc-kolla-dir":
        # Where kolla's image folders are, so the caller can map image names.
        import kolla
        print(os.path.join(os.path.dirname(os.path.abspath(kolla.__file__)), "docker"))
        return 0
    _patch_repos_loader()
    from kolla.cmd import build
    sys.argv[0] = "kolla-build"
    return build.main()


if __name__ == "__main__":
    sys.exit(main())
