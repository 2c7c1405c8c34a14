"""argparse `type=` functions: a bad number, path or URL is a usage error (exit 2) naming the option, before the command runs."""

from __future__ import annotations

import argparse
from typing import Callable


def _strict(parse: Callable[[str], object]) -> Callable[[str], object]:
    def convert(text: str):
        from graysteps.errors import InvalidInput

        try:
            return parse(text)
        except InvalidInput as e:
            raise argparse.ArgumentTypeError(e.message.strip()) from None

    convert.__name__ = parse.__name__
    return convert


def int_in(low: int, high: int) -> Callable[[str], object]:
    """ASCII digits only, from `low` to `high`."""
    from graysteps.model.numbers import parse_int

    return _strict(lambda text: parse_int(text, "", low, high))


def duration_in(low: float, high: float) -> Callable[[str], object]:
    from graysteps.model.numbers import parse_duration

    return _strict(lambda text: parse_duration(text, "", low, high))


def fraction_in(low: float, high: float, *, open_high: bool = False) -> Callable[[str], object]:
    from graysteps.model.numbers import parse_fraction

    return _strict(lambda text: parse_fraction(text, "", low, high, open_high=open_high))


positive_int = int_in(1, 1_000_000)
port_number = int_in(0, 65535)
duration = duration_in(0.0, 31_536_000.0)


def input_file(text: str) -> str:
    """A file to read: an empty value is refused, never taken as "not given" (which means a default file)."""
    if not text:
        raise argparse.ArgumentTypeError("'' is not a path: give a file, or leave the option out for its default")
    return text


def url_of(*schemes: str) -> Callable[[str], str]:
    """SCHEME://HOST[:PORT][/PATH] with one of `schemes`, a valid host and a port in 1-65535 (shown masked)."""

    def url(text: str) -> str:
        from graysteps.adapters.urls import mask_url, url_problem

        problem = url_problem(text, schemes)
        if problem:
            raise argparse.ArgumentTypeError(f"{mask_url(text)!r} is not allowed: {problem}")
        return text

    return url


http_url = url_of("http")
http_or_https_url = url_of("http", "https")


def docker_endpoint(text: str) -> str:
    """A Docker API endpoint: unix:///PATH or npipe:////./pipe/NAME, else tcp, http, https or ssh://HOST[:PORT]."""
    from graysteps.adapters.urls import mask_url, url_problem

    scheme, sep, rest = text.partition("://")
    if sep and scheme in ("unix", "npipe") and rest.strip("/") and not any(c.isspace() for c in rest):
        return text
    problem = url_problem(text, ("tcp", "http", "https", "ssh"))
    if problem:
        raise argparse.ArgumentTypeError(f"{mask_url(text)!r} is not allowed: {problem}, or unix:///PATH")
    return text


def _nearest_existing(path: str) -> str:
    import os

    current = os.path.abspath(path)
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def _writable_place(text: str, *, directory: bool) -> str:
    """An output path that can be written: no NUL, not an existing directory (for a file) or file (for a
    directory), and its nearest existing ancestor a writable directory, where a temp file really can be
    created and removed. Checked before the command runs, so a report that cannot be written never comes
    after changes and output."""
    import os

    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a path")
    if os.path.isdir(text) and not directory:
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; give a file path")
    if os.path.lexists(text) and directory and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a directory")
    if os.path.lexists(text) and not directory and not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a regular file")
    anchor = _nearest_existing(text if directory or os.path.lexists(text) else os.path.dirname(os.path.abspath(text)))
    if not os.path.isdir(anchor) and not (os.path.isfile(anchor) and os.path.abspath(anchor) == os.path.abspath(text)):
        raise argparse.ArgumentTypeError(f"{text!r} cannot be created: {anchor!r} is not a directory")
    if not os.access(anchor, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text!r} cannot be written: no write permission on {anchor!r}")
    _probe(text, anchor if os.path.isdir(anchor) else os.path.dirname(os.path.abspath(anchor)))
    return text


def _probe(text: str, directory: str) -> None:
    """Create and remove an empty temp file in `directory`: the permission bits say yes to root everywhere
    (/proc, read-only mounts), so only a real create tells. An existing file's directory is probed too, as
    atomic writers put their temp file next to it."""
    import os
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".graysteps-probe-")
        try:
            os.close(fd)
        finally:
            os.unlink(probe)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise argparse.ArgumentTypeError(f"{text!r} cannot be written: {reason} in {directory!r}") from None


def output_file(text: str) -> str:
    return _writable_place(text, directory=False)


def output_dir(text: str) -> str:
    return _writable_place(text, directory=True)
