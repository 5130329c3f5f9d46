"""Office, OpenDocument, RTF, text, HTML and Markdown to PDF with headless LibreOffice."""

from __future__ import annotations

import os
import signal
import subprocess
import zipfile
from pathlib import Path

from documents.pipeline.base import StepFailed

# The extension tells LibreOffice which import filter to use.
EXTENSION_BY_MIME = {
    "application/msword": ".doc",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/vnd.oasis.opendocument.presentation": ".odp",
    "application/rtf": ".rtf",
    "text/rtf": ".rtf",
    "text/plain": ".txt",
    "text/markdown": ".txt",
    "text/csv": ".csv",
    "text/html": ".html",
}
# A zip container that unpacks to more than this, or compresses better than the ratio, is
# refused before LibreOffice tries to unpack it.
MAX_UNPACKED_BYTES = 512 * 1024**2
MAX_COMPRESSION_RATIO = 200


class LibreOfficeConverter:
    name = "libreoffice"

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout

    def to_pdf(self, *, source: Path, destination: Path, mime_type: str, scratch: Path) -> None:
        named_input = scratch / f"input{EXTENSION_BY_MIME.get(mime_type, '')}"
        if zipfile.is_zipfile(source):
            refuse_zip_bomb(source)
            if container_is_damaged(source):
                repair_container(source, named_input)
                refuse_zip_bomb(named_input)
        if not named_input.exists():
            named_input.symlink_to(source)
        out_dir = scratch / "libreoffice-out"
        # Each conversion gets its own profile: parallel conversions never share a lock.
        profile = scratch / "libreoffice-profile"
        command = [
            "soffice", "--headless", "--norestore", "--nolockcheck", "--nodefault",
            f"-env:UserInstallation={profile.as_uri()}",
            "--convert-to", "pdf", "--outdir", str(out_dir), str(named_input),
        ]  # fmt: skip
        run_killing_group(command, timeout=self.timeout, what="LibreOffice", home=scratch)
        produced = out_dir / "input.pdf"
        if not produced.exists() or produced.stat().st_size == 0:
            raise StepFailed(
                "LibreOffice could not convert the file to PDF (damaged or unsupported content)."
            )
        produced.replace(destination)


def refuse_zip_bomb(path: Path) -> None:
    """Refuse a zip container whose contents would unpack to something enormous."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile:
        raise StepFailed("The file is a damaged zip container.") from None
    unpacked = sum(entry.file_size for entry in entries)
    packed = sum(entry.compress_size for entry in entries) or 1
    if unpacked > MAX_UNPACKED_BYTES or unpacked / packed > MAX_COMPRESSION_RATIO:
        raise StepFailed(
            f"The file would unpack to {unpacked} bytes from {packed}; refused as a possible zip bomb."
        )


def container_is_damaged(path: Path) -> bool:
    """True when the zip's directory points at offsets where no file entry starts.

    Such files (one byte lost in transfer, a truncated download) open in no office program
    until their directory is rebuilt.
    """
    with zipfile.ZipFile(path) as archive, path.open("rb") as raw:
        for entry in archive.infolist():
            if entry.header_offset < 0:
                return True
            raw.seek(entry.header_offset)
            if raw.read(4) != b"PK\x03\x04":
                return True
    return False


def repair_container(source: Path, destination: Path) -> None:
    """Rebuild a damaged zip container from its entries (``zip -FF``)."""
    # zip appends ".zip" to a name without an extension, so it gets one it cannot miss.
    damaged = destination.with_name("damaged.zip")
    damaged.symlink_to(source)
    try:
        # No input and no captured output: zip asks questions on a terminal and may talk a lot.
        result = subprocess.run(
            ["zip", "-FF", str(damaged), "--out", str(destination)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise StepFailed("Repairing the damaged zip container took too long.") from None
    if result.returncode != 0 or not destination.exists():
        raise StepFailed("The file is a damaged zip container that could not be repaired.")


def run_killing_group(command: list[str], *, timeout: float, what: str, home: Path) -> None:
    """Run a converter; on timeout kill it with every process it started.

    ``home`` becomes its HOME, so it writes no caches into the service account's home.
    """
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "HOME": str(home)},
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise StepFailed(f"{what} did not finish within {int(timeout)} seconds.") from None
    if process.returncode != 0:
        last = output.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise StepFailed(f"{what} failed (exit {process.returncode}: {last[0][:200]}).")
