"""The upload's progress output (osc/v1/progressbar.py), fed as the copy
engine feeds it."""
import io

from tripleo_containers.copy import engine
from tripleo_containers.osc.v1 import common
from tripleo_containers.osc.v1 import progressbar


class Tty(io.StringIO):
    def isatty(self):
        return True


def _plan(images=2, present=0, to_move=3 << 20):
    plan = engine.Plan()
    plan.images, plan.images_present, plan.bytes_to_move = images, present, to_move
    plan.unique_blobs = 2
    return plan


def test_a_terminal_gets_one_redrawn_bar_cleared_at_the_end():
    out = Tty()
    bar = progressbar.Progress(out, common.isatty(out))
    bar.starting(2)
    bar.planned(_plan())
    bar.bytes_moved(3 << 20)
    bar.image_done(engine.ImageResult("s/a:1", "d/a:1", engine.COPIED, "sha256:1", 3 << 20))
    bar.finish()
    text = out.getvalue()
    assert "\n" not in text and "plan:" not in text
    assert "[%s] 1/2 images" % ("#" * 30) in text
    assert text.endswith("\r\033[K")


def test_isatty_is_false_for_streams_without_a_terminal():
    closed = io.StringIO()
    closed.close()
    assert not common.isatty(io.StringIO()) and not common.isatty(closed)
    assert not common.isatty(object()) and common.isatty(Tty())


def test_uploads_of_unknown_size_are_counted_not_sized():
    # a daemon source: sizes come with the reads, the plan cannot sum them
    out = io.StringIO()
    bar = progressbar.Progress(out, False)
    plan = _plan(to_move=1 << 20)
    plan.uploads, plan.unsized = 5, 4
    bar.planned(plan)
    assert "5 blobs (1.0 MiB known) to upload" in out.getvalue()
    tty = Tty()
    bar = progressbar.Progress(tty, True)
    bar.starting(2)
    bar.planned(plan)
    bar.bytes_moved(3 << 20)  # more than the known part: the bar counts images
    assert "[%s] 0/2 images" % ("." * 30) in tty.getvalue()
