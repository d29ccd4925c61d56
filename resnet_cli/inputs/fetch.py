"""An input's bytes: a local file (never blocking on a FIFO or a device), an http(s) URL
(timeouts, size cap, redirects) or a URI that pyarrow.fs reads — every failure one
plain-words ImageError."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
import threading

from ..storage import is_uri, is_url, kind, read_bytes

MAX_DOWNLOAD_BYTES = 100 * 2**20  # more than any photo; a bigger answer is not one


class ImageError(Exception):
    """An input that should be an image but cannot be classified; the message is the reason."""


class NotAnImage(ImageError):
    """A file found in a folder that is no image and is not named like one: skipped quietly."""


STDIN = "-"  # the path of the image whose bytes came on stdin (curl … | resnet-classify -)
_stdin_image: list[bytes] = []


def hold_stdin_image(data: bytes) -> None:
    """Keep the image read from stdin for its one decode (discovery reads it, a decode thread opens it)."""
    _stdin_image[:] = [data]


def open_input(path: str, explicit: bool, timeout: float = 30.0):
    """A binary handle on the input's bytes; a FIFO or device is refused before open() could block."""
    if path == STDIN and _stdin_image:
        return io.BytesIO(_stdin_image[0])
    if is_url(path):
        return fetch_url(path, timeout)
    if is_uri(path):
        return read_uri(path)
    try:
        status = os.stat(path)
        if not stat.S_ISREG(status.st_mode):
            if stat.S_ISDIR(status.st_mode):
                raise OSError(errno.EISDIR, "is a folder")
            raise (ImageError if explicit else NotAnImage)("not a regular file")
        return open(path, "rb")
    except OSError as error:
        raise open_error(path, error) from None


class DeadLink(ImageError):
    """A symbolic link that leads nowhere (broken, or a loop)."""


def open_error(path: str, error: OSError) -> ImageError:
    if error.errno == errno.ENOENT:
        if os.path.islink(path):
            return DeadLink("broken symbolic link")
        return ImageError("no such file")
    if error.errno == errno.ELOOP:
        return DeadLink("symbolic link loop")
    if error.errno in (errno.EACCES, errno.EPERM):
        return ImageError("permission denied")
    if error.errno == errno.EISDIR:
        return ImageError("is a folder (use --recursive, or name the folder)")
    return ImageError(f"cannot read the file ({error.strerror or error})")


def fetch_url(url: str, timeout: float) -> io.BytesIO:
    """The body of an http(s) URL, redirects followed, at most MAX_DOWNLOAD_BYTES, within
    ``timeout`` seconds to connect and ``timeout`` for the whole download. requests: a
    well-kept client with separate connect/read timeouts, redirects and streaming (the
    standard library's urllib has one timeout per socket operation only, so a server trickling
    bytes could hold a decode thread for ever)."""
    import time

    import requests

    deadline = time.monotonic() + timeout
    try:
        with requests.get(
            url, timeout=(timeout, timeout), stream=True, headers={"User-Agent": "resnet-classify"}
        ) as response:
            if response.status_code >= 400:
                raise ImageError(f"HTTP {response.status_code} {response.reason or ''}".strip())
            return _body(response, deadline, timeout)
    except requests.exceptions.Timeout:
        raise ImageError(f"no answer within {timeout:g} s (--timeout)") from None
    except requests.exceptions.TooManyRedirects:
        raise ImageError("too many redirects") from None
    except (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema) as error:
        # a server's redirect to file://, ftp://…: requests says "No connection adapters were found for '…'"
        target = re.search(r"'([^']*)'", str(error))
        where = f"redirected to {target.group(1)}" if target else "redirected to a URL that is not http(s)"
        raise ImageError(f"{where}: only http(s) is followed") from None
    except requests.exceptions.ConnectionError as error:
        text = str(error)
        unknown = "Name or service not known" in text or "getaddrinfo" in text
        reason = "cannot resolve the host name" if unknown else "cannot connect"
        raise ImageError(f"{reason} ({type(error).__name__})") from None
    except requests.exceptions.RequestException as error:
        raise ImageError(f"cannot download ({type(error).__name__}: {error})") from None


def _body(response, deadline: float, timeout: float) -> io.BytesIO:
    """The response's body, within the size cap and the download's deadline — the whole of it:
    a server that sends a byte a second never lets a read time out, so at the deadline a timer
    shuts the connection's socket and the read blocked on it ends."""
    import time

    cut = threading.Timer(max(0.0, deadline - time.monotonic()), _shut, [response])
    cut.daemon = True
    cut.start()
    body = io.BytesIO()
    with _READING_LOCK:
        _READING.add(response)
    try:
        for chunk in response.iter_content(1 << 16):
            body.write(chunk)
            if body.tell() > MAX_DOWNLOAD_BYTES:
                raise ImageError(f"larger than {MAX_DOWNLOAD_BYTES >> 20} MiB: not downloaded")
            if time.monotonic() > deadline:
                break
    except Exception as error:  # noqa: BLE001 - the shut socket's error, whichever layer raises it
        if time.monotonic() < deadline:
            raise
        if isinstance(error, ImageError):
            raise
    finally:
        cut.cancel()
        with _READING_LOCK:
            _READING.discard(response)
        if getattr(response, "aborted", False):
            raise ImageError("interrupted while downloading")
    if time.monotonic() > deadline:
        raise ImageError(f"download took longer than {timeout:g} s (--timeout)")
    body.seek(0)
    return body


_READING: set = set()  # the responses whose bodies are being read now
_READING_LOCK = threading.Lock()


def abort_downloads() -> None:
    """End every download in progress now (a run told to stop: Ctrl-C, SIGTERM); each becomes
    an error record, so the threads reading them are free at once."""
    with _READING_LOCK:
        for response in list(_READING):
            response.aborted = True
            _shut(response)


def _shut(response) -> None:
    """End the reads on ``response``'s connection now (shutdown wakes a recv another thread is
    blocked in; close alone would not)."""
    import socket

    raw = response.raw
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:  # urllib3 1.x: the socket under http.client's response
        sock = getattr(getattr(getattr(getattr(raw, "_fp", None), "fp", None), "raw", None), "_sock", None)
    with contextlib.suppress(OSError, AttributeError):
        sock.shutdown(socket.SHUT_RDWR)


def read_uri(uri: str) -> io.BytesIO:
    try:
        found = kind(uri)
        if found == "missing":
            raise ImageError("no such file")
        if found == "folder":
            raise ImageError("is a folder (use --recursive, or name the folder)")
        return io.BytesIO(read_bytes(uri))
    except (OSError, ValueError) as error:
        raise ImageError(f"cannot read the file ({getattr(error, 'reason', error)})") from None
