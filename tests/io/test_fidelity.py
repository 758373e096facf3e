"""What a render keeps of the photo file: EXIF, ICC profile (and blur in its own linear light), 16 bits,
the format the output's name asks for, and a quality that makes sense for it."""
from __future__ import annotations

import io as bytes_io
import struct

import imagecodecs
import numpy as np
import pytest
from PIL import Image

import pybokeh
from pybokeh import batch, icc, io, io16
from pybokeh.io import read_metadata
from pybokeh.cli import main
from pybokeh.color import linear_to_srgb, srgb_to_linear

from _batch_files import (CAMERA_EXIF, camera_exif, gamma_curve, icc_profile, para_curve, scene, table_curve,
                          write_png16)

SRGB_PARA = para_curve(3, 2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)   # Display P3 writes this
GAMMA18 = icc_profile(gamma_curve(1.8))                                      # ProPhoto's tone curve


def read_back(path) -> tuple[Image.Image, Image.Exif, bytes | None]:
    if str(path).endswith(".heic"):
        import pillow_heif

        pillow_heif.register_heif_opener()
    img = Image.open(path)
    return img, img.getexif(), img.info.get("icc_profile")


@pytest.fixture
def tagged(tmp_path, rng):
    """A JPEG stored landscape with EXIF orientation 6, camera EXIF and a Display-P3-like profile, and its map."""
    photo, depth = scene(rng, 40, 56)
    profile = icc_profile(SRGB_PARA)
    path = tmp_path / "tagged.jpg"
    Image.fromarray(photo).save(path, exif=camera_exif(orientation=6, size=(56, 40)), icc_profile=profile,
                                quality=95)
    Image.fromarray(np.rot90(depth, -1).copy()).save(tmp_path / "depth.png")   # map of the displayed photo
    return path, tmp_path / "depth.png", profile


@pytest.mark.parametrize("suffix,fmt", [(".jpg", "JPEG"), (".png", "PNG"), (".tif", "TIFF"), (".webp", "WEBP"),
                                        (".heic", "HEIF")])
def test_exif_and_icc_profile_are_carried_to_every_format(tagged, tmp_path, suffix, fmt):
    path, depth, profile = tagged
    out = tmp_path / f"out{suffix}"
    assert main(["render", str(path), "--depth", str(depth), "-o", str(out), "-q"]) == 0
    img, exif, got_profile = read_back(out)
    assert img.format == fmt
    assert got_profile == profile
    for (ifd, tag), value in CAMERA_EXIF.items():
        assert (exif if ifd == 0 else exif.get_ifd(ifd)).get(tag) == value, hex(tag)
    assert exif.get(0x0112) == 1                                 # the pixels are written as displayed
    assert img.size == (40, 56)                                  # turned by the orientation, once
    assert exif.get_ifd(0x8769).get(0xA002) == 40 and exif.get_ifd(0x8769).get(0xA003) == 56
    assert exif.get(0x0100) in (None, img.size[0])               # no stale structure tags (TIFF has its own)


def test_a_real_display_p3_phone_photo_keeps_its_profile_and_camera_exif(shared_data, tmp_path):
    src = shared_data / "phone" / "fidmaa_jpeg_depth_data.jpg"   # iPhone Portrait JPEG: P3 profile, depth inside
    small = tmp_path / "p3.jpg"
    with Image.open(src) as img:
        profile, exif = img.info["icc_profile"], img.getexif()
        img.convert("RGB").resize((386, 515)).save(small, icc_profile=profile, exif=exif)
    out = tmp_path / "out.jpg"
    assert main(["render", str(small), "--depth-source", "estimate", "-o", str(out), "-q"]) == 0
    _, got, got_profile = read_back(out)
    assert got_profile == profile and icc.transfer_curve(profile).srgb          # P3 uses the sRGB curve
    for tag in (0x010F, 0x0110):                                               # Make, Model
        assert got.get(tag) == exif.get(tag) and got.get(tag)
    assert got.get_ifd(0x8769).get(0x9003) == exif.get_ifd(0x8769).get(0x9003)  # DateTimeOriginal


def test_blur_happens_in_the_linear_light_of_the_profiles_curve(tmp_path):
    # A 1-px black/white checkerboard far out of focus averages to half the light: code value
    # 0.5 ** (1 / 1.8) = 0.680 under a gamma-1.8 profile, 0.735 under sRGB's curve.
    h, w = 64, 64
    checker = ((np.indices((h, w)).sum(0) % 2) * 255).astype(np.uint8)
    photo = np.repeat(checker[..., None], 3, axis=2)
    depth = np.zeros((h, w), np.uint8)
    depth[:, :8] = 255                          # a near strip to focus on; the rest far behind
    Image.fromarray(depth).save(tmp_path / "d.png")
    middle = (slice(24, 40), slice(32, 48))
    got = {}
    for name, profile in (("gamma", GAMMA18), ("srgb", icc_profile(SRGB_PARA))):
        Image.fromarray(photo).save(tmp_path / f"{name}.png", icc_profile=profile)
        assert main(["render", str(tmp_path / f"{name}.png"), "--depth", str(tmp_path / "d.png"), "--focus", "1",
                     "--max-blur", "12", "--highlight-boost", "0", "-o", str(tmp_path / f"{name}_out.png"),
                     "-q"]) == 0
        got[name] = np.asarray(Image.open(tmp_path / f"{name}_out.png"), np.float64)[middle] / 255
    assert abs(got["gamma"].mean() - 0.5 ** (1 / 1.8)) < 0.01
    assert abs(got["srgb"].mean() - float(linear_to_srgb(np.float32(0.5)))) < 0.01
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "gamma_out.png"))[:, :4],
                                  photo[:, :4, 0])  # in focus: unchanged through the curve round trip


def test_transfer_curve_conversion_matches_its_definition(rng):
    photo, depth = scene(rng, 32, 40)
    curve = icc.transfer_curve(GAMMA18)
    assert curve is not None and not curve.srgb
    settings = batch.RenderSettings(focus=0.2, max_blur=6.0)
    got = batch.render_photo(photo, depth, settings, curve)
    linear = (photo / 255.0) ** 1.8
    expected = pybokeh.render(linear_to_srgb(linear.astype(np.float32)), depth, 0.2, max_blur=6.0)
    expected = np.round(np.clip(srgb_to_linear(expected), 0, 1) ** (1 / 1.8) * 255)
    assert np.abs(got.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("curve,fn", [
    (para_curve(0, 2.2), lambda x: x ** 2.2),
    (para_curve(1, 2.0, 1.1, -0.1), lambda x: np.where(x >= 0.1 / 1.1, (1.1 * x - 0.1) ** 2.0, 0.0)),
    (para_curve(2, 2.0, 1.0, 0.0, 0.05), lambda x: np.minimum(x ** 2.0 + 0.05, 1.0)),
    (para_curve(4, 2.2, 0.9, 0.1, 0.5, 0.2, 0.0, 0.01),
     lambda x: np.clip(np.where(x >= 0.2, (0.9 * x + 0.1) ** 2.2, 0.5 * x + 0.01), 0, 1)),
    (table_curve(np.linspace(0, 1, 5) ** 2), lambda x: np.interp(x, np.linspace(0, 1, 5), np.linspace(0, 1, 5) ** 2)),
    (b"curv\0\0\0\0\0\0\0\0", lambda x: x),
])
def test_icc_tone_curves_follow_the_icc_definitions(curve, fn):
    parsed = icc.transfer_curve(icc_profile(curve))
    x = np.linspace(0, 1, 257)[None, :, None].repeat(3, axis=2)
    np.testing.assert_allclose(parsed.to_linear(x), fn(x), atol=2e-4)   # s15Fixed16 parameters


@pytest.mark.parametrize("dtype,curve,tolerance", [
    (np.uint8, gamma_curve(1.8), 0), (np.uint16, gamma_curve(1.8), 0),
    (np.uint8, table_curve(np.linspace(0, 1, 1024) ** 2.6), 0),
    # a 16-bit table is flat near black: codes there differ by less light than float32 holds
    (np.uint16, table_curve(np.linspace(0, 1, 1024) ** 2.6), 16),
])
def test_the_curve_round_trip_returns_every_code_value(dtype, curve, tolerance):
    parsed = icc.transfer_curve(icc_profile(curve))
    codes = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)[None, :, None].repeat(3, axis=2)
    back = icc.from_render(icc.to_render(codes, parsed), parsed, dtype)
    assert np.abs(back.astype(int) - codes).max() <= tolerance


def test_pixels_the_renderer_leaves_alone_keep_their_codes_under_any_curve(rng):
    photo, depth = scene(rng, 32, 40)
    deep = (photo.astype(np.uint16) * 257 + rng.integers(0, 257, photo.shape)).astype(np.uint16)
    curve = icc.transfer_curve(icc_profile(table_curve(np.linspace(0, 1, 1024) ** 2.6)))
    settings = batch.RenderSettings(focus=0.0, max_blur=0.2)        # nothing is blurred
    np.testing.assert_array_equal(batch.render_photo(deep, depth, settings, curve), deep)


def test_srgb_profiles_need_no_conversion():
    from PIL import ImageCms

    lcms_srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert icc.transfer_curve(lcms_srgb).srgb and icc.transfer_curve(icc_profile(SRGB_PARA)).srgb
    assert icc.transfer_curve(None) is None
    grey = icc.transfer_curve(icc_profile(gamma_curve(2.2), space=b"GRAY"))
    assert grey is not None and not grey.srgb
    photo = np.zeros((2, 2, 3), np.uint8)
    assert icc.to_render(photo, icc.transfer_curve(lcms_srgb)) is photo


@pytest.mark.parametrize("damage", [
    lambda p: p[:100],                                       # no header
    lambda p: p[:140],                                       # tag table past the end
    lambda p: p[:-4],                                        # curve past the end
    lambda p: p[:-14] + b"XXXX" + p[-10:],                   # unknown curve type
    lambda p: p[:-4] + struct.pack(">H", 0) + p[-2:],        # gamma 0
])
def test_malformed_profiles_are_reported_not_read_past_their_end(damage):
    with pytest.raises(icc.ProfileError):
        icc.transfer_curve(damage(GAMMA18))


def test_a_malformed_profile_is_a_warning_and_the_photo_still_renders(tmp_path, rng, capsys):
    photo, depth = scene(rng, 24, 32)
    Image.fromarray(photo).save(tmp_path / "p.png", icc_profile=GAMMA18[:-4])
    Image.fromarray(depth).save(tmp_path / "d.png")
    assert main(["render", str(tmp_path / "p.png"), "--depth", str(tmp_path / "d.png"), "-o",
                 str(tmp_path / "o.png")]) == 0
    assert "sRGB curve" in capsys.readouterr().err


@pytest.fixture
def photo16(tmp_path, rng):
    """A 16-bit colour photo whose low bytes matter, stored with orientation 6, EXIF and a gamma-1.8 profile."""
    photo, depth = scene(rng, 30, 44)
    deep = (photo.astype(np.uint16) * 257 + rng.integers(0, 200, photo.shape)).clip(0, 65535).astype(np.uint16)
    Image.fromarray(np.rot90(depth, -1).copy()).save(tmp_path / "d.png")
    return deep, tmp_path / "d.png"


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_colour_stays_sixteen_bit_with_its_metadata(photo16, tmp_path, suffix):
    deep, depth = photo16
    src = tmp_path / f"src{suffix}"
    exif = camera_exif(orientation=6)
    if suffix == ".png":
        write_png16(src, deep, GAMMA18, exif)                      # written by libpng, as other tools do
    else:
        src.write_bytes(io16.encode_tiff(deep, GAMMA18, exif))
    shown = np.rot90(deep, -1)
    np.testing.assert_array_equal(io.read_photo(src), shown)       # full precision, oriented
    out = tmp_path / f"out{suffix}"
    assert main(["render", str(src), "--depth", str(depth), "--focus", "0.3", "--max-blur", "5", "-o", str(out),
                 "-q"]) == 0
    data = out.read_bytes()
    got = imagecodecs.png_decode(data) if suffix == ".png" else imagecodecs.tiff_decode(data)  # libpng / libtiff
    assert got.dtype == np.uint16 and got.shape == shown.shape
    assert np.any(got % 257 != 0)                                  # not 8-bit values scaled up
    curve = icc.transfer_curve(GAMMA18)
    expected = batch.render_photo(np.ascontiguousarray(shown), io.read_depth(depth),
                                          batch.RenderSettings(focus=0.3, max_blur=5.0), curve)
    np.testing.assert_array_equal(got, expected)
    img, got_exif, got_profile = read_back(out)
    assert got_profile == GAMMA18 and got_exif.get(0x010F) == "TestCam" and got_exif.get(0x0112) == 1
    assert got_exif.get_ifd(0x8769).get(0xA434) == "50mm F1.4"


def test_sixteen_bit_colour_without_the_extra_is_read_at_8_bits_with_a_warning(photo16, tmp_path, monkeypatch):
    deep, _ = photo16
    write_png16(tmp_path / "p.png", deep)
    monkeypatch.setattr(io16, "imagecodecs", lambda: None)
    with pytest.warns(UserWarning, match=r"16 bits per colour channel.*pybokeh\[16bit\]"):
        got = io.read_photo(tmp_path / "p.png")
    assert got.dtype == np.uint8
    assert np.abs(got.astype(int) - deep // 257).max() <= 1


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (9, 1), (33, 70)])
def test_sixteen_bit_encoders_are_read_by_libpng_libtiff_and_pillow(rng, shape, tmp_path):
    image = rng.integers(0, 65536, (*shape, 3)).astype(np.uint16)
    png, tif = io16.encode_png(image), io16.encode_tiff(image)
    np.testing.assert_array_equal(imagecodecs.png_decode(png), image)
    np.testing.assert_array_equal(imagecodecs.tiff_decode(tif), image)
    for data in (png, tif):
        (tmp_path / "x").write_bytes(data)
        assert Image.open(bytes_io.BytesIO(data)).size == shape[::-1]
    original = image.copy()
    io16.encode_tiff(image)
    np.testing.assert_array_equal(image, original)                 # the caller's array is not touched


@pytest.mark.parametrize("suffix,quality,ok", [(".jpg", "40", True), (".webp", "40", True), (".png", "40", False),
                                               (".tif", "90", False)])
def test_quality_is_validated_per_format(tagged, tmp_path, capsys, suffix, quality, ok):
    path, depth, _ = tagged
    out = tmp_path / f"q{suffix}"
    code = main(["render", str(path), "--depth", str(depth), "-o", str(out), "--quality", quality, "-q"])
    err = capsys.readouterr().err
    if ok:
        assert code == 0
        main(["render", str(path), "--depth", str(depth), "-o", str(tmp_path / f"best{suffix}"), "--quality", "100",
              "-q"])
        assert out.stat().st_size < (tmp_path / f"best{suffix}").stat().st_size
    else:
        assert code == 1 and "lossless" in err and not out.exists()


def test_write_image_refuses_quality_for_lossless_formats(tmp_path):
    with pytest.raises(ValueError, match="lossless"):
        io.write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8), quality=90)
    io.write_image(tmp_path / "x.jpg", np.zeros((4, 4, 3), np.uint8), quality=90)


def test_corrupt_exif_does_not_stop_the_render(tmp_path, rng):
    photo, depth = scene(rng, 8, 8)
    Image.fromarray(photo).save(tmp_path / "p.jpg", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff")
    Image.fromarray(depth).save(tmp_path / "d.png")
    with pytest.warns(UserWarning):
        assert read_metadata(tmp_path / "p.jpg").exif is None
    assert main(["render", str(tmp_path / "p.jpg"), "--depth", str(tmp_path / "d.png"), "-o",
                 str(tmp_path / "o.jpg"), "-q"]) == 0
