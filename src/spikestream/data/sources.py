"""Where real data comes from: Debian packages, found installed or fetched into a user cache.

Sample videos: ``vtest.avi`` (768x576, 795 frames, pedestrians), ``Megamind.avi`` (720x528, 270
frames) and ``tree.avi`` (320x240, 68 frames) ship in the Debian package ``opencv-doc`` under
``/usr/share/doc/opencv-doc/examples/data/`` (plain .avi files in bookworm's 4.6.0 package; a
gzip-compressed ``.avi.gz`` is handled too). ``find_sample_video`` looks, in order:

1. in the installed package (``dpkg-query -L opencv-doc``; the files must really exist, since
   slim Docker images drop ``/usr/share/doc`` on install);
2. in the cache, ``$SPIKESTREAM_CACHE/debian/opencv-doc/`` (default ``~/.cache/spikestream``);
3. otherwise it runs ``apt-get download opencv-doc`` (no root needed; on failure, once more after
   ``apt-get update``, which refreshes stale package lists when run as root) and streams the three
   videos out of the 96 MB package (``dpkg-deb --fsys-tarfile``) into the cache, without unpacking
   its 295 MB of documentation.

Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist``, whose four idx files land
in ``/usr/share/datasets/fashion-mnist/``, or from the folder ``$SPIKESTREAM_FASHION_MNIST`` names;
``fashion_mnist.load_fashion_mnist`` reads them.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path, PurePosixPath
from typing import IO

from spikestream.errors import InputError

SAMPLE_VIDEOS = ("vtest.avi", "Megamind.avi", "tree.avi")
OPENCV_DOC_PACKAGE = "opencv-doc"
OPENCV_DOC_MEMBERS = PurePosixPath("usr/share/doc/opencv-doc/examples/data")  # the videos' folder in the .deb
OPENCV_DOC_DATA = Path("/") / OPENCV_DOC_MEMBERS  # where installing the package puts them
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CACHE_VARIABLE = "SPIKESTREAM_CACHE"  # environment variable that moves the cache folder

APT_DOWNLOAD_TIMEOUT_S = 900  # a 96 MB package over a slow mirror
APT_UPDATE_TIMEOUT_S = 300
DPKG_TIMEOUT_S = 300  # listing or streaming a package's files


class SampleDataError(InputError):
    """A sample data set is not on this machine and could not be fetched; the message says how to get it."""


def cache_dir() -> Path:
    """The spikestream cache: ``$SPIKESTREAM_CACHE``, or ``~/.cache/spikestream``."""
    configured = os.environ.get(CACHE_VARIABLE)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "spikestream"


def _sample_cache() -> Path:
    return cache_dir() / "debian" / OPENCV_DOC_PACKAGE


def find_sample_video(name: str, download: bool = True) -> Path:
    """The path of sample video ``name`` (one of SAMPLE_VIDEOS), fetching opencv-doc if needed.

    Raises SampleDataError, saying how to get the file, when it is not installed or cached and
    ``download`` is False or the download fails.
    """
    if name not in SAMPLE_VIDEOS:
        raise ValueError(f"unknown sample video {name!r}; choose one of: {', '.join(SAMPLE_VIDEOS)}")
    installed = _installed_sample(name, _package_files(OPENCV_DOC_PACKAGE))
    if installed is not None and installed.suffix == ".gz":
        return _gunzip_into_cache(installed, _sample_cache() / name)
    if installed is not None:
        return installed
    cached = _sample_cache() / name
    if cached.is_file():
        return cached
    if not download:
        raise SampleDataError(_how_to_get(name, "it is neither installed nor cached, and download is off"))
    _fetch_sample_videos(name)
    if not cached.is_file():
        raise SampleDataError(_how_to_get(name, f"the package {OPENCV_DOC_PACKAGE} holds no examples/data/{name}"))
    return cached


def data_locations() -> dict[str, str]:
    """Where each data set is found on this machine, or "missing"; checks only, never downloads.

    Keys: the sample video names, "fashion-mnist" and "cache" (the cache folder itself).
    """
    listing = _package_files(OPENCV_DOC_PACKAGE)
    locations = {}
    for name in SAMPLE_VIDEOS:
        found = _installed_sample(name, listing)
        if found is None and (_sample_cache() / name).is_file():
            found = _sample_cache() / name
        locations[name] = str(found) if found is not None else "missing"
    from spikestream.data.fashion_mnist import find_fashion_mnist  # it imports this module's constants

    fashion_mnist = find_fashion_mnist()
    locations["fashion-mnist"] = str(fashion_mnist) if fashion_mnist is not None else "missing"
    locations["cache"] = str(cache_dir())
    return locations


def _how_to_get(name: str, reason: str) -> str:
    return (f"sample video '{name}' is not available: {reason}. Install it with "
            f"'apt-get install {OPENCV_DOC_PACKAGE}' (it lands in {OPENCV_DOC_DATA}), or pass the path of a "
            f"video file instead")


# --- installed packages -------------------------------------------------------------------------


def _package_files(package: str) -> list[str]:
    """The files an installed Debian package owns ([] when it is not installed or this is not Debian)."""
    if shutil.which("dpkg-query") is None:
        return []
    try:
        result = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True,
                                timeout=DPKG_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []  # a broken dpkg only means "not installed"; the cache and the download remain
    return result.stdout.splitlines() if result.returncode == 0 else []


def _installed_sample(name: str, listing: list[str]) -> Path | None:
    candidates = [OPENCV_DOC_DATA / name, OPENCV_DOC_DATA / f"{name}.gz"]
    candidates += [Path(line) for line in listing if line.endswith((f"/{name}", f"/{name}.gz"))]
    for candidate in candidates:
        if candidate.is_file():  # listed is not enough: Docker images may drop /usr/share/doc
            return candidate
    return None


def _gunzip_into_cache(source: Path, target: Path) -> Path:
    if not target.is_file():
        with gzip.open(source, "rb") as stream:
            _write_atomically(stream, target)
    return target


def _write_atomically(stream: IO[bytes], target: Path) -> None:
    """Copy a stream to ``target`` through a temporary file beside it, so readers never see half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            shutil.copyfileobj(stream, out)
        os.chmod(partial, 0o644)  # mkstemp creates 0600; the cache is shared by the user's tools
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)


# --- fetching -------------------------------------------------------------------------------------


def _run(command: list[str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False,
                              env={**os.environ, "LC_ALL": "C"})  # English messages, to show and to read
    except subprocess.TimeoutExpired as error:
        raise SampleDataError(f"'{' '.join(command)}' did not finish within {timeout} s") from error
    except OSError as error:
        raise SampleDataError(f"cannot run '{command[0]}': {error}") from error


def _stderr_tail(result: subprocess.CompletedProcess, lines: int = 3) -> str:
    text = [line.strip() for line in (result.stderr or result.stdout or "").splitlines() if line.strip()]
    return " | ".join(text[-lines:]) or f"exit status {result.returncode}"


def _fetch_sample_videos(name: str) -> None:
    """Download opencv-doc with apt-get and stream all sample videos out of it into the cache.

    ``name``, the video asked for, only goes into error messages.
    """
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SampleDataError(_how_to_get(name, f"'{tool}' is not on this machine (not Debian?)"))
    cache = _sample_cache()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.parent, prefix=".download-") as folder:
        try:
            package = _apt_download(OPENCV_DOC_PACKAGE, Path(folder))
        except SampleDataError as error:
            raise SampleDataError(_how_to_get(name, str(error))) from error
        wanted = {}
        for name in SAMPLE_VIDEOS:
            member = str(OPENCV_DOC_MEMBERS / name)
            wanted[member] = wanted[f"{member}.gz"] = cache / name
        _extract_members(package, wanted)


def _apt_download(package: str, folder: Path) -> Path:
    """``apt-get download package`` into ``folder``; on failure refresh the package lists once and retry."""
    command = ["apt-get", "download", package]
    result = _run(command, APT_DOWNLOAD_TIMEOUT_S, cwd=folder)
    if result.returncode != 0:
        update = _run(["apt-get", "update"], APT_UPDATE_TIMEOUT_S)
        if update.returncode != 0:
            raise SampleDataError(f"'apt-get download {package}' failed ({_stderr_tail(result)}) and "
                                  f"'apt-get update' failed too ({_stderr_tail(update)})")
        result = _run(command, APT_DOWNLOAD_TIMEOUT_S, cwd=folder)
    downloaded = sorted(folder.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not downloaded:
        raise SampleDataError(f"'apt-get download {package}' failed ({_stderr_tail(result)})")
    return downloaded[0]


def _extract_members(package: Path, wanted: dict[str, Path]) -> None:
    """Stream the package's file tree and copy the members named in ``wanted`` (gunzipping .gz ones)."""
    command = ["dpkg-deb", "--fsys-tarfile", str(package)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        watchdog = threading.Timer(DPKG_TIMEOUT_S, process.kill)  # streaming reads have no timeout of their own
        watchdog.start()
        try:
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                for member in archive:
                    target = wanted.get(member.name.removeprefix("./"))
                    if target is None or not member.isfile():
                        continue
                    source = archive.extractfile(member)
                    if member.name.endswith(".gz"):
                        source = gzip.GzipFile(fileobj=source)
                    _write_atomically(source, target)
            while process.stdout.read(1 << 20):  # drain the tar padding, so dpkg-deb sees no broken pipe
                pass
        except tarfile.TarError as error:
            raise SampleDataError(f"cannot unpack '{package.name}': {error}") from error
        finally:
            watchdog.cancel()
            errors = process.stderr.read().decode(errors="replace").strip()
            process.wait()
    if process.returncode != 0:
        killed = process.returncode < 0 and not errors
        reason = f"no result within {DPKG_TIMEOUT_S} s" if killed else errors or f"exit status {process.returncode}"
        raise SampleDataError(f"'{' '.join(command)}' failed: {reason}")
