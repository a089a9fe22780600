"""Still images in: decode uploads and data URLs safely, fit them to the output size."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

from PIL import Image, ImageOps

from mutoscope.media.arrays import MediaError

# The formats OpenAI's input_reference accepts. Restricting Pillow's
# plugins also keeps exotic decoders (EPS via Ghostscript, ...) out of reach.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
# 40 MP covers 8K (7680x4320 = 33 MP) with room to spare; a decompression
# bomb's header claims far more.
MAX_PIXELS = 40_000_000
# Before base64 decoding; 3/4 of this is the image's byte size.
MAX_DATA_URL_CHARS = 32 * 1024 * 1024

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?),(?P<data>.*)$", re.S | re.I)


def load_image(
    data: bytes, *, max_pixels: int = MAX_PIXELS, formats: tuple[str, ...] = IMAGE_FORMATS
) -> Image.Image:
    """Decode image bytes to a fully loaded RGB image, or raise MediaError.

    Checks, in order: the format is one of `formats`; width*height from the
    header is at most `max_pixels` (before any pixel is decoded); the file
    passes Pillow's verify() (catches CRC errors and truncation in PNG); the
    pixels decode completely. EXIF orientation is applied (phone photos), and
    transparency is flattened onto white.
    """
    if not data:
        raise MediaError("image is empty")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; we
            # enforce our own limit below, so silence its warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data), formats=list(formats))
            if probe.width * probe.height > max_pixels:
                raise MediaError(
                    f"image is too large: {probe.width}x{probe.height} exceeds {max_pixels} pixels"
                )
            probe.verify()
            # verify() leaves the image unusable; reopen to decode for real.
            img = Image.open(io.BytesIO(data), formats=list(formats))
            img.load()
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaError(f"image is too large to decode safely ({exc.__class__.__name__})") from exc
    except Image.UnidentifiedImageError as exc:
        allowed = ", ".join(f.lower() for f in formats)
        raise MediaError(f"not a decodable image (expected one of: {allowed})") from exc
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error, ...
        raise MediaError(f"image is corrupt or truncated ({exc.__class__.__name__})") from exc
    img = ImageOps.exif_transpose(img)
    return _to_rgb(img)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        # White, not black: transparent inputs are mostly logos and cut-outs
        # drawn for light pages; convert("RGB") would expose arbitrary colour.
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return img.convert("RGB")


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """Return an RGB image of exactly width x height: scale to cover, then centre-crop.

    The image is scaled (up or down) by the smallest factor that makes it
    cover the whole target, so no letterbox bars appear and nothing is
    stretched; the overflow on the longer side is cut equally from both
    ends. A 1000x500 image fitted to 500x500 keeps its middle 500x500 square
    (scaled 1.0); fitted to 200x400 it is scaled to 800x400 and cropped to
    x in [300, 500).
    """
    if width <= 0 or height <= 0:
        raise MediaError(f"target size must be positive, got {width}x{height}")
    # ImageOps.fit does exactly this policy (centring=0.5, 0.5) and crops
    # before resampling, so it never builds the full-size upscaled image.
    return ImageOps.fit(_to_rgb(image), (width, height), Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def decode_data_url(url: str, *, max_chars: int = MAX_DATA_URL_CHARS) -> bytes:
    """Bytes of a `data:image/...;base64,...` URL, or MediaError saying what is wrong.

    Only image media types and base64 payloads are accepted; whitespace and
    missing padding in the payload are tolerated (copy-pasted URLs have both).
    """
    if not isinstance(url, str) or not url[:5].lower() == "data:":
        raise MediaError("expected a data URL starting with 'data:'")
    if len(url) > max_chars:
        raise MediaError(f"data URL is too long ({len(url)} characters, limit {max_chars})")
    m = _DATA_URL.match(url)
    if not m:
        raise MediaError("malformed data URL: expected 'data:<type>;base64,<data>'")
    mime = (m["mime"] or "").lower()
    if not mime.startswith("image/"):
        raise MediaError(f"data URL must hold an image, got media type {mime or 'none'!r}")
    params = [p.strip().lower() for p in m["params"].split(";") if p.strip()]
    if "base64" not in params:
        raise MediaError("data URL must be base64-encoded (';base64,')")
    payload = re.sub(r"\s+", "", m["data"])
    if not payload:
        raise MediaError("data URL has no data")
    payload += "=" * (-len(payload) % 4)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MediaError("data URL payload is not valid base64") from exc
