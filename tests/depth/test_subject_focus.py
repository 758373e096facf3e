"""Automatic focus on the main subject (pybokeh.subject_focus) and the CLI default."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import pybokeh
from pybokeh import io
from pybokeh.cli import main
from pybokeh.focus import MAX_FOCUS_RANGE, MIN_FOCUS_RANGE, subject_focus


def _scene(h=120, w=160):
    """Far wall (0.1), a person-like blob in the middle (0.5, a head on a body), near clutter in a corner (0.95)."""
    d = np.full((h, w), 0.1, np.float32)
    d[40:120, 60:100] = 0.5            # body, reaching the bottom edge
    d[15:42, 68:92] = 0.47             # head, a little behind the chest
    d[0:30, 0:25] = 0.95               # a branch in the top-left corner, nearer than anything
    d[110:120, 0:8] = 1.0              # a lone near speck at the bottom
    return d


def test_the_central_sizeable_subject_beats_nearer_clutter_at_the_edges():
    d = _scene()
    f = subject_focus(d)
    x0, y0, x1, y1 = f.box
    assert 55 <= x0 and x1 <= 105 and y1 == 120          # the person, not the corner branch
    # Tall subject: the focus goes to its upper part, the head.
    assert 60 <= f.xy[0] < 100 and 15 <= f.xy[1] < 45
    assert MIN_FOCUS_RANGE <= f.focus_range <= MAX_FOCUS_RANGE
    # The whole head is inside the sharp band, the wall and the branch are not.
    norm = (d - d.min()) / (d.max() - d.min())

    def sharp(v):
        return abs(v - f.value) <= f.focus_range / 2

    assert sharp(norm[20, 80]) and sharp(norm[60, 80])
    assert not sharp(norm[5, 150]) and not sharp(norm[10, 10])


def test_the_subject_is_found_in_any_units_and_for_metric_depth():
    d = _scene()
    base = subject_focus(d)
    assert subject_focus(np.round(d * 65535).astype(np.uint16)) == base      # bit depth does not matter
    depth_m = (1.0 / (0.2 + d)).astype(np.float32)                           # the same scene as distances
    assert subject_focus(depth_m, depth_kind="depth").box == base.box
    scaled = subject_focus(d, image_shape=(240, 320))                        # map at half the photo's size
    assert abs(scaled.xy[0] - 2 * base.xy[0]) <= 2 and abs(scaled.xy[1] - 2 * base.xy[1]) <= 2


def test_a_subject_at_the_near_end_keeps_its_band_inside_the_map():
    d = np.full((60, 80), 0.0, np.float32)
    d[10:60, 25:55] = np.linspace(1.0, 0.8, 50)[:, None]   # the subject is the nearest thing in the map
    f = subject_focus(d)
    assert f.value + f.focus_range / 2 <= 1.0 + 1e-3 and f.value - f.focus_range / 2 >= 0.7


def test_flat_and_invalid_maps():
    assert subject_focus(np.zeros((30, 40), np.float32)).focus_range == MIN_FOCUS_RANGE
    d = _scene()
    d[0:5, :] = np.nan
    assert subject_focus(d).box[0] >= 55
    with pytest.raises(ValueError, match="depth_kind"):
        subject_focus(d, depth_kind="metres")
    with pytest.raises(ValueError, match="no valid values"):
        subject_focus(np.full((8, 8), np.nan, np.float32))


# Hand-marked boxes (x0, y0, x1, y1) around the person's face in two photos with provided maps.
PEOPLE = {
    "bokehme/inputs_21": ("bokehme/inputs_21.jpg", "bokehme/inputs_21.png", (640, 450, 760, 590)),
    "mpib/inputs_new_11": ("mpib/inputs_new_11_all-in-focus.jpg", "mpib/inputs_new_11_disparity.jpg",
                           (1250, 250, 1450, 600)),   # the near hiker: cap, glasses and beard
}


@pytest.mark.parametrize("name", sorted(PEOPLE))
def test_default_render_focuses_on_the_person(shared_data, tmp_path, capsys, name):
    """`pybokeh render photo.jpg --depth map -o out.jpg`: the face comes out as sharp as the photo."""
    photo_name, depth_name, (x0, y0, x1, y1) = PEOPLE[name]
    photo_path = shared_data / "photos" / photo_name
    out = tmp_path / "out.png"
    assert main(["render", str(photo_path), "--depth", str(shared_data / "photos" / depth_name), "-o", str(out)]) == 0
    assert "focus: main subject at pixel" in capsys.readouterr().err
    photo = np.asarray(Image.open(photo_path).convert("RGB"))
    unchanged = (np.asarray(Image.open(out)) == photo).all(axis=2)
    # The whole face is exactly the photo's (in focus); most of the frame is blurred.
    assert unchanged[y0:y1, x0:x1].mean() > 0.98 and unchanged.mean() < 0.5, (unchanged[y0:y1, x0:x1].mean(),
                                                                                unchanged.mean())
    f = pybokeh.subject_focus(io.read_depth(shared_data / "photos" / depth_name), photo.shape[:2])
    assert x0 - 200 <= f.xy[0] < x1 + 200 and y0 - 200 <= f.xy[1] < y1 + 200
