"""Paths → RGB uint8 arrays at the model's input size, or a typed, plain-words error.

Discovery is lazy (a generator) so a folder of a million files costs no memory up front.
Decoding never raises anything but ``ImageError`` / ``NotAnImage`` for a bad file.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .spec import DEFAULT


@dataclass(frozen=True)
class DecodeOptions:
    """How a file becomes the model's input: size×size uint8 RGB."""

    size: int = DEFAULT.input_size
    resize: str = DEFAULT.resize  # stretch (keras.utils.load_img) or crop
    interpolation: str = DEFAULT.interpolation
    crop_ratio: float = DEFAULT.crop_ratio  # crop: shorter side size / crop_ratio (256 for 224)
    fast_jpeg: bool = False
    fetch_timeout: float = 30.0  # http(s) inputs: seconds to connect, and for the whole download


# Leading bytes of the formats we classify; anything else in a folder is skipped.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


class ImageError(Exception):
    """A file that should be an image but cannot be classified; the message is the reason."""


class NotAnImage(ImageError):
    """A file found in a folder that is no image and is not named like one: skipped quietly."""


IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .jfif .png .gif .bmp .dib .webp .tif .tiff".split()
)


@dataclass(frozen=True)
class Source:
    """One input: its path as the user will see it, whether the user named it, and the reason
    it cannot be read when discovery already knows (a folder that cannot be listed)."""

    path: str
    explicit: bool = True
    error: str | None = None


# ---------------------------------------------------------------------------- discovery


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(folder: Path, recursive: bool, include_hidden: bool, seen_dirs: set) -> Iterator[Source]:
    """Files below ``folder`` in sorted order; symlinked folders followed once (loops cut)."""
    try:
        key = (folder.stat().st_dev, folder.stat().st_ino)
    except OSError:
        return
    if key in seen_dirs:
        return
    seen_dirs.add(key)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as error:
        yield Source(str(folder), explicit=True, error=f"cannot read the folder ({_open_error(str(folder), error)})")
        return
    subfolders = []
    for entry in entries:
        if not include_hidden and _is_hidden(entry.name):
            continue
        try:
            is_dir = entry.is_dir()  # follows symlinks; False for broken links and loops
        except OSError:
            is_dir = False
        if is_dir:
            subfolders.append(entry)
        else:
            yield Source(str(folder / entry.name), explicit=False)
    if recursive:
        for entry in subfolders:
            yield from _walk(folder / entry.name, recursive, include_hidden, seen_dirs)


def _stdin_paths(stream, null: bool = False) -> Iterator[str]:
    """Paths from stdin, one a line (or NUL-separated, as ``find -print0`` writes them),
    streamed. Read as bytes where the stream has them: a file name need not be valid UTF-8
    (undecodable bytes survive as ``os.fsdecode`` surrogates, so the file still opens)."""
    raw = getattr(stream, "buffer", None)
    if raw is not None:
        read, empty, separator, decode = raw.read1 if hasattr(raw, "read1") else raw.read, b"", (b"\0" if null else b"\n"), os.fsdecode
    else:  # a text stream (tests)
        read, empty, separator, decode = stream.read, "", ("\0" if null else "\n"), str
    carriage = separator[:0] if null else ("\r" if separator == "\n" else b"\r")
    rest = empty
    while chunk := read(1 << 16):
        *parts, rest = (rest + chunk).split(separator)
        for part in parts:
            if part := part.rstrip(carriage) if carriage else part:
                yield decode(part)
    if rest := rest.rstrip(carriage) if carriage else rest:
        yield decode(rest)


def discover(
    inputs: Iterable[str],
    recursive: bool = False,
    include_hidden: bool = False,
    stdin=None,
    null: bool = False,
) -> Iterator[Source]:
    """Expand files, folders and ``-`` (paths on stdin, one a line, or NUL-separated with
    ``null``) lazily, in a fixed order. Named files that do not exist still come out (they
    become error records), as do paths no file can have (a NUL byte in them).

    Repeats are dropped where they come without the user listing a file twice — a folder
    reached again (named twice, nested, or through a link) and a file named on the command line
    that a named folder also holds — with memory that grows with the arguments and folders,
    never with the file count. Paths on stdin are taken as given, one input each, as xargs
    takes them (``sort -u`` drops repeats): 100 million of them cost no more memory than one."""
    inputs = list(inputs)  # the arguments: read twice
    seen_dirs: set = set()
    named_files = _named_files(inputs)  # realpaths of the files named as arguments

    def expand(raw: str, explicit: bool) -> Iterator[Source]:
        if "\0" in raw:
            yield Source(raw.replace("\0", "\\0"), explicit=explicit, error="the path holds a NUL byte, which no file name can (NUL-separated paths on stdin need -0)")
            return
        if is_url(raw):
            yield Source(raw, explicit=explicit)
            return
        if is_uri(raw):
            yield from _walk_uri(raw, recursive, include_hidden)
            return
        path = Path(raw)
        if path.is_dir():
            walked = _walk(path, recursive, include_hidden, seen_dirs)
            yield from (s for s in walked if os.path.realpath(s.path) not in named_files) if named_files else walked
        else:
            yield Source(raw, explicit=explicit)

    argument_files: set[str] = set()
    for raw in inputs:
        if raw == "-":
            stream = stdin if stdin is not None else sys.stdin
            yield from (s for line in _stdin_paths(stream, null) for s in expand(line, True))
            continue
        for source in expand(raw, True):
            if source.explicit and source.error is None and not is_uri(source.path):
                key = os.path.realpath(source.path)
                if key in argument_files:
                    continue
                argument_files.add(key)
            yield source


def _named_files(inputs: Iterable[str]) -> set[str]:
    """The files (not folders, URIs or ``-``) named as arguments, by real path."""
    return {os.path.realpath(raw) for raw in inputs if raw != "-" and "\0" not in raw and not is_uri(raw) and not os.path.isdir(raw)}


# ---------------------------------------------------------------------------- object stores


def is_url(path: str) -> bool:
    """An http(s) address: fetched over the web (see ``_fetch``)."""
    return path[:8].lower().startswith(("http://", "https://"))


def is_uri(path: str) -> bool:
    """s3://, gs://, file://, … — anything pyarrow.fs reads (installed with the ray extra)."""
    return "://" in path


def _pyarrow_fs():
    try:
        from pyarrow import fs
    except ImportError:
        raise ImageError('reading URIs needs pyarrow: pip install "resnet-cli[ray]"') from None
    return fs


def _walk_uri(uri: str, recursive: bool, include_hidden: bool) -> Iterator[Source]:
    """The files under a URI folder (sorted), or the URI itself when it names a file. Listed a
    folder (a prefix) at a time, as the local walk is, so the driver holds one folder's names,
    never the whole bucket's."""
    try:
        fs = _pyarrow_fs()
        filesystem, root = fs.FileSystem.from_uri(uri)
        if filesystem.get_file_info(root).type != fs.FileType.Directory:
            yield Source(uri, explicit=True)
            return
    except (ImageError, OSError, ValueError):
        yield Source(uri, explicit=True)  # becomes an error record naming the URI
        return
    scheme = uri.split("://", 1)[0]

    def walk(folder: str) -> Iterator[Source]:
        try:
            infos = sorted(filesystem.get_file_info(fs.FileSelector(folder)), key=lambda i: i.path)
        except (OSError, ValueError) as error:
            yield Source(f"{scheme}://{folder}", explicit=True, error=f"cannot list the folder ({error})")
            return
        folders = []
        for info in infos:
            if not include_hidden and _is_hidden(info.base_name):
                continue
            if info.type == fs.FileType.File:
                yield Source(f"{scheme}://{info.path}", explicit=False)
            elif info.type == fs.FileType.Directory and recursive:
                folders.append(info.path)
        for sub in folders:
            yield from walk(sub)

    yield from walk(root)


MAX_DOWNLOAD_BYTES = 100 * 2**20  # more than any photo; a bigger answer is not one


def _fetch(url: str, timeout: float) -> io.BytesIO:
    """The body of an http(s) URL, redirects followed, at most MAX_DOWNLOAD_BYTES, within
    ``timeout`` seconds to connect and ``timeout`` for the whole download; every failure
    one plain-words ImageError. requests: a well-kept client with separate connect/read
    timeouts, redirects and streaming (the standard library's urllib has one timeout per
    socket operation only, so a server trickling bytes could hold a decode thread for ever)."""
    import time

    import requests

    deadline = time.monotonic() + timeout
    try:
        with requests.get(url, timeout=(timeout, timeout), stream=True, headers={"User-Agent": "resnet-classify"}) as response:
            if response.status_code >= 400:
                raise ImageError(f"HTTP {response.status_code} {response.reason or ''}".strip())
            body = io.BytesIO()
            for chunk in response.iter_content(1 << 16):
                body.write(chunk)
                if body.tell() > MAX_DOWNLOAD_BYTES:
                    raise ImageError(f"larger than {MAX_DOWNLOAD_BYTES >> 20} MiB: not downloaded")
                if time.monotonic() > deadline:
                    raise ImageError(f"download took longer than {timeout:g} s (--timeout)")
    except requests.exceptions.Timeout:
        raise ImageError(f"no answer within {timeout:g} s (--timeout)") from None
    except requests.exceptions.TooManyRedirects:
        raise ImageError("too many redirects") from None
    except requests.exceptions.ConnectionError as error:
        reason = "cannot resolve the host name" if "Name or service not known" in str(error) or "getaddrinfo" in str(error) else "cannot connect"
        raise ImageError(f"{reason} ({type(error).__name__})") from None
    except requests.exceptions.RequestException as error:
        raise ImageError(f"cannot download ({type(error).__name__}: {error})") from None
    body.seek(0)
    return body


def _read_uri(uri: str) -> io.BytesIO:
    fs = _pyarrow_fs()
    try:
        filesystem, inner = fs.FileSystem.from_uri(uri)
        kind = filesystem.get_file_info(inner).type
        if kind == fs.FileType.NotFound:
            raise ImageError("no such file")
        if kind == fs.FileType.Directory:
            raise ImageError("is a folder (use --recursive, or name the folder)")
        with filesystem.open_input_file(inner) as handle:
            return io.BytesIO(handle.read())
    except (OSError, ValueError) as error:
        raise ImageError(f"cannot read the file ({error})") from None


# ---------------------------------------------------------------------------- decoding


def _open(path: str, explicit: bool, timeout: float = 30.0):
    """A binary handle on the file; a FIFO or device is refused before open() could block."""
    if is_url(path):
        return _fetch(path, timeout)
    if is_uri(path):
        return _read_uri(path)
    try:
        status = os.stat(path)
        if not stat.S_ISREG(status.st_mode):
            if stat.S_ISDIR(status.st_mode):
                raise OSError(errno.EISDIR, "is a folder")
            raise (ImageError if explicit else NotAnImage)("not a regular file")
        return open(path, "rb")
    except OSError as error:
        raise _open_error(path, error) from None


def _open_error(path: str, error: OSError) -> ImageError:
    if error.errno == errno.ENOENT:
        if os.path.islink(path):
            return ImageError("broken symbolic link")
        return ImageError("no such file")
    if error.errno == errno.ELOOP:
        return ImageError("symbolic link loop")
    if error.errno in (errno.EACCES, errno.EPERM):
        return ImageError("permission denied")
    if error.errno == errno.EISDIR:
        return ImageError("is a folder (use --recursive, or name the folder)")
    return ImageError(f"cannot read the file ({error.strerror or error})")


def sniff(head: bytes) -> str | None:
    """The image format from a file's first bytes, or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for magic, fmt in _SIGNATURES if head.startswith(magic)), None)


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


def _resample(name: str):
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


def decode(path: str, options: DecodeOptions = DecodeOptions(), explicit: bool = True) -> np.ndarray:
    """Read one image file (a path, an http(s) URL, or a URI that pyarrow.fs reads) →
    (size, size, 3) uint8 RGB.

    stretch: squash the whole image to size×size (what keras.utils.load_img does).
    crop: shorter side to size / crop_ratio (256 for 224), centre crop size×size.
    fast_jpeg: let libjpeg decode big JPEGs at 1/2, 1/4 or 1/8 scale (never below the output
    size) — much faster on camera photos, pixels differ slightly from a full decode.
    Raises NotAnImage for non-image content, ImageError for every other problem.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    size, resize, interpolation = options.size, options.resize, options.interpolation

    with _open(path, explicit, options.fetch_timeout) as handle:
        head = handle.read(16)
        if not head or sniff(head) is None:
            reason = "empty file (0 bytes)" if not head else "not an image (unrecognised file format)"
            named_like_image = Path(path).suffix.lower() in IMAGE_EXTENSIONS
            raise (ImageError if explicit or named_like_image else NotAnImage)(reason)
        handle.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # EXIF/ICC chatter, DecompressionBombWarning
                image = Image.open(handle)
                image.seek(0)  # first frame of animated GIF/WebP/TIFF
                if options.fast_jpeg and image.format == "JPEG":
                    target = (size / options.crop_ratio,) * 2 if resize == "crop" else (size, size)
                    image.draft("RGB", tuple(int(t) for t in target))
                image = ImageOps.exif_transpose(image)
                image = to_rgb(image)
                if resize == "crop":
                    box = _crop_box(image.width, image.height, options.crop_ratio)
                    image = image.resize((size, size), _resample(interpolation), box=box)
                elif image.size != (size, size):
                    image = image.resize((size, size), _resample(interpolation))
                array = np.asarray(image, dtype=np.uint8)
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
    if array.shape != (size, size, 3):
        raise ImageError(f"decoded to an unexpected shape {array.shape}")
    return array
