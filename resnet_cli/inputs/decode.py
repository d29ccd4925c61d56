"""An input's bytes → an RGB uint8 array at the model's input size, or a typed, plain-words
error. Decoding never raises anything but ``ImageError`` / ``NotAnImage`` for a bad file."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..model.spec import DEFAULT, Interpolation, Resize
from .fetch import DeadLink, ImageError, NotAnImage, open_input

__all__ = ["IMAGE_EXTENSIONS", "DecodeOptions", "ImageError", "NotAnImage", "decode", "decode_held", "sniff", "to_rgb"]


@dataclass(frozen=True)
class DecodeOptions:
    """How a file becomes the model's input: size×size uint8 RGB."""

    size: int = DEFAULT.input_size
    resize: Resize = DEFAULT.resize  # stretch (keras.utils.load_img) or crop
    interpolation: Interpolation = DEFAULT.interpolation
    crop_ratio: float = DEFAULT.crop_ratio  # crop: shorter side size / crop_ratio (256 for 224)
    fast_jpeg: bool = False
    fetch_timeout: float = 30.0  # http(s) inputs: seconds to connect, and for the whole download


# Leading bytes of the common image formats: what decides, without Pillow, that bytes on stdin
# are an image and not a list of paths. Any other format Pillow opens is found by Pillow.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x02\x00", "CUR"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG2000"),
    (b"\xff\x4f\xff\x51", "JPEG2000"),
    (b"qoif", "QOI"),
    (b"8BPS", "PSD"),
)
_FTYP_BRANDS = {b"avif": "AVIF", b"avis": "AVIF", b"heic": "HEIF", b"heix": "HEIF", b"mif1": "HEIF", b"msf1": "HEIF"}

IMAGE_EXTENSIONS = frozenset(
    [
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".apng",
        ".gif",
        ".bmp",
        ".dib",
        ".webp",
        ".tif",
        ".tiff",
        ".avif",
        ".avifs",
        ".heic",
        ".heif",
        ".ico",
        ".cur",
        ".jp2",
        ".j2k",
        ".jpx",
        ".qoi",
        ".psd",
        ".tga",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
    ]
)


def sniff(head: bytes) -> str | None:
    """The image format from a file's first bytes (16 are enough), or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in _FTYP_BRANDS:
        return _FTYP_BRANDS[head[8:12]]
    if head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00":  # BMP: its reserved bytes are zero
        return "BMP"
    return next((fmt for magic, fmt in _SIGNATURES if head.startswith(magic)), None)


def _pillow_opens(handle) -> bool:
    """Whether Pillow knows the format (one it can decode, not a stub that only names it)."""
    from PIL import Image, ImageFile, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(handle)
        return not isinstance(image, ImageFile.StubImageFile)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return False
    finally:
        handle.seek(0)


def to_rgb(image):
    """Any Pillow mode → RGB. Alpha is composited onto white; 16-bit and float greys are
    scaled to 8 bits rather than clipped; palette transparency becomes alpha first."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        grey = np.clip(np.round(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _resample(name: Interpolation):
    from PIL import Image

    return {
        "nearest": Image.Resampling.NEAREST,
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "lanczos": Image.Resampling.LANCZOS,
        "box": Image.Resampling.BOX,
        "hamming": Image.Resampling.HAMMING,
    }[name]


def _crop_box(width: int, height: int, crop_ratio: float) -> tuple[float, float, float, float]:
    """The centre square that becomes the output once the shorter side is ``size / crop_ratio``."""
    side = min(width, height) * crop_ratio
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def _check_signature(handle, path: str, explicit: bool) -> None:
    """Refuse what is no image (no known signature, and no format Pillow can decode) before it
    is decoded: a folder's other files are skipped, a named one is an error."""
    head = handle.read(16)
    handle.seek(0)
    if not head or (sniff(head) is None and not _pillow_opens(handle)):
        reason = "empty file (0 bytes)" if not head else "not an image (unrecognised file format)"
        named_like_image = Path(path).suffix.lower() in IMAGE_EXTENSIONS
        raise (ImageError if explicit or named_like_image else NotAnImage)(reason)


def _pixels(handle, options: DecodeOptions) -> np.ndarray:
    """Pillow's decode of an image file: first frame, EXIF orientation, RGB, resized."""
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EXIF/ICC chatter, DecompressionBombWarning
        image = Image.open(handle)
        image.seek(0)  # first frame of animated GIF/WebP/TIFF
        if options.fast_jpeg and image.format == "JPEG":
            target = (options.size / options.crop_ratio,) * 2 if options.resize == "crop" else (options.size,) * 2
            image.draft("RGB", tuple(int(t) for t in target))
        ImageOps.exif_transpose(image, in_place=True)  # its copy cost ~0.6 of 2.1 ms a 500×375 JPEG
        return _fit(image, options)


def _fit(image, options: DecodeOptions) -> np.ndarray:
    """An upright Pillow image → RGB at the model's input size, by ``options.resize``."""
    size = options.size
    image = to_rgb(image)
    if options.resize == "crop":
        box = _crop_box(image.width, image.height, options.crop_ratio)
        image = image.resize((size, size), _resample(options.interpolation), box=box)
    elif image.size != (size, size):
        image = image.resize((size, size), _resample(options.interpolation))
    return np.asarray(image, dtype=np.uint8)


THUMBNAIL_SIZE = 128


def thumbnail(pixels: np.ndarray) -> bytes:
    """The model's input pixels (what it saw) as a THUMBNAIL_SIZE² JPEG, for the HTML report."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.BILINEAR).save(
        buffer, "JPEG", quality=80
    )
    return buffer.getvalue()


def decode(path: str, options: DecodeOptions = DecodeOptions(), explicit: bool = True) -> np.ndarray:
    """Read one image file (a path, an http(s) URL, or a URI that pyarrow.fs reads) →
    (size, size, 3) uint8 RGB.

    stretch: squash the whole image to size×size (what keras.utils.load_img does).
    crop: shorter side to size / crop_ratio (256 for 224), centre crop size×size.
    fast_jpeg: let libjpeg decode big JPEGs at 1/2, 1/4 or 1/8 scale (never below the output
    size) — much faster on camera photos, pixels differ slightly from a full decode.
    Raises NotAnImage for non-image content, ImageError for every other problem.
    """
    try:
        opened = open_input(path, explicit, options.fetch_timeout)
    except DeadLink as error:  # a folder's link to nothing: skipped as its other non-images are,
        if explicit or Path(path).suffix.lower() in IMAGE_EXTENSIONS:  # unless it is named like a photo
            raise ImageError(str(error)) from None
        raise NotAnImage(str(error)) from None
    with opened as handle:
        return _decoded(handle, path, options, explicit)


def _decoded(handle, path: str, options: DecodeOptions, explicit: bool) -> np.ndarray:
    """An open file's image at the model's input size; every failure an ImageError."""
    from PIL import Image, UnidentifiedImageError

    _check_signature(handle, path, explicit)
    try:
        array = _pixels(handle, options)
    except Image.DecompressionBombError as error:
        raise ImageError(f"image too large ({error})") from None
    except UnidentifiedImageError:
        raise ImageError("not a readable image (corrupt header)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        text = str(error)
        if "truncated" in text.lower() or isinstance(error, EOFError):
            raise ImageError("truncated image data") from None
        raise ImageError(f"corrupt image data ({text or type(error).__name__})") from None
    except MemoryError:
        raise ImageError("image too large to decode in memory") from None
    size = options.size
    if array.shape != (size, size, 3):
        raise ImageError(f"decoded to an unexpected shape {array.shape}")
    return array


def decode_held(data, options: DecodeOptions = DecodeOptions(), path: str = "-", explicit: bool = True) -> np.ndarray:
    """An image already in memory, decoded as a file of it would be: encoded bytes (a file's
    whole content), a Pillow image (its EXIF orientation applied, the caller's object left as
    it is) or a uint8 array, (H, W, 3) RGB or (H, W) grey. Raises ImageError (NotAnImage for
    bytes that are no image, not ``explicit`` and not named like one: a shard's metadata)."""
    import io

    if isinstance(data, (bytes, bytearray, memoryview)):
        return _decoded(io.BytesIO(bytes(data)), path, options, explicit)
    from PIL import Image, ImageOps

    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or not (data.ndim == 2 or (data.ndim == 3 and data.shape[2] in (3, 4))):
            raise ImageError(
                f"an array must be uint8 (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grey; got {data.dtype} {data.shape}"
            )
        if min(data.shape[:2]) < 1:
            raise ImageError(f"an empty array {data.shape}")
        return _fit(Image.fromarray(np.ascontiguousarray(data)), options)
    if isinstance(data, Image.Image):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return _fit(ImageOps.exif_transpose(data), options)
        except (OSError, ValueError) as error:
            raise ImageError(f"cannot convert the image ({error})") from None
    raise ImageError(f"not an image: a {type(data).__name__}")


def load_photo(path: str):
    """The photo as a person sees it (EXIF orientation applied, RGB, full size): what
    ``explain`` draws its heat-map over."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image.seek(0)
        return to_rgb(ImageOps.exif_transpose(image))
