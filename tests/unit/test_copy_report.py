"""The failure lines of an upload report: one per reason."""
from tripleo_containers.copy import engine, report


def _failed(name, error):
    return engine.ImageResult(name, "d:1/" + name, engine.FAILED, error=error)


def test_same_reason_once_with_count_and_images_other_reasons_as_they_are():
    results = [
        _failed("a", "GET https://s:1/v2/ns/a/manifests/t: TLS verification failed for s:1"),
        engine.ImageResult("ok", "d:1/ok", engine.COPIED),
        _failed("b", "HEAD https://s:1/v2/ns/b/manifests/t?x=1: TLS verification failed for s:1"),
        _failed("c", "GET https://s:1/v2/ns/c/manifests/t: TLS verification failed for s:1"),
        _failed("d", "GET https://other:1/v2/ns/d/manifests/t: TLS verification failed "
                     "for s:1"),
        _failed("e", "images file f.yaml: invalid image reference 'E'"),
    ]
    assert report.failure_lines(results) == [
        "failed: 2 images: GET https://s:1/...: TLS verification failed for s:1: a, c",
        "failed: b -> d:1/b: HEAD https://s:1/v2/ns/b/manifests/t?x=1: TLS verification "
        "failed for s:1",
        "failed: d -> d:1/d: GET https://other:1/v2/ns/d/manifests/t: TLS verification "
        "failed for s:1",
        "failed: e -> d:1/e: images file f.yaml: invalid image reference 'E'",
    ]


def test_no_failures_no_lines():
    assert report.failure_lines([engine.ImageResult("a", "d", engine.PRESENT)]) == []


def test_a_line_break_in_an_error_does_not_split_the_line():
    lines = report.failure_lines([_failed("a", "PUT http://d:1/v2/a: BAD: x\nfailed: forged\r")])
    assert lines == ["failed: a -> d:1/a: PUT http://d:1/v2/a: BAD: x\\nfailed: forged\\r"]
