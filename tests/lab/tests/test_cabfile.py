"""The streaming CAB writer, checked with cabextract (libmspack)."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from wuacache_lab.cabfile import BLOCK_SIZE, MAX_FILES, CabLimitError, CabWriter, Compression, checksum

MODIFIED = datetime(2024, 1, 9, 18, 0, 0)


def cabextract(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["cabextract", *map(str, args)], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("compression", list(Compression), ids=lambda c: c.name)
def test_round_trip_through_cabextract(tmp_path: Path, compression: Compression) -> None:
    # Incompressible then compressible data, spanning several 32 KiB blocks
    # and not ending on a block boundary.
    large = os.urandom(3 * BLOCK_SIZE + 123) + b"A" * (2 * BLOCK_SIZE)
    on_disk = tmp_path / "source.bin"
    on_disk.write_bytes(os.urandom(BLOCK_SIZE - 1))
    members = {
        "empty.txt": b"",
        "c\\40000008": b"<UpdateIdentity/>",
        "large.bin": large,
        "l\\en\\40000008": b"<LocalizedProperties/>",
        "source.bin": on_disk.read_bytes(),
        "streamed.bin": b"chunk-one|chunk-two",
    }
    cab = tmp_path / "test.cab"
    with CabWriter(cab, compression) as writer:
        writer.add("empty.txt", b"", modified=MODIFIED)
        writer.add("c\\40000008", members["c\\40000008"], modified=MODIFIED)
        writer.add("large.bin", (large[i : i + 5000] for i in range(0, len(large), 5000)), modified=MODIFIED)
        with writer.open("l\\en\\40000008", modified=MODIFIED) as member:
            member.write(b"<LocalizedProperties")
            member.write(b"/>")
        writer.add_path("source.bin", on_disk, modified=MODIFIED)
        writer.add("streamed.bin", [b"chunk-one", b"|", b"chunk-two"], modified=MODIFIED)

    # cabextract verifies every CFDATA checksum and the decompressed sizes.
    tested = cabextract("-t", cab)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "All done, no errors." in tested.stdout

    out = tmp_path / "out"
    assert cabextract("-q", "-d", out, cab).returncode == 0
    extracted = {
        str(path.relative_to(out)).replace("/", "\\"): path.read_bytes() for path in out.rglob("*") if path.is_file()
    }
    assert extracted == members
    # Backslash names become directories, as in Microsoft's catalogs.
    assert (out / "l" / "en" / "40000008").is_file()


def test_member_timestamps_are_stored(tmp_path: Path) -> None:
    cab = tmp_path / "dated.cab"
    with CabWriter(cab) as writer:
        writer.add("a", b"x", modified=datetime(2025, 12, 9, 20, 15, 42))
    listing = cabextract("-l", cab)
    # DOS time has a two-second resolution.
    assert "09.12.2025 20:15:42" in listing.stdout


def test_refuses_more_files_than_a_cabinet_holds(tmp_path: Path) -> None:
    cab = tmp_path / "full.cab"
    with CabWriter(cab, Compression.NONE) as writer:
        for index in range(MAX_FILES):
            writer.add(f"f\\{index}", b"", modified=MODIFIED)
        with pytest.raises(CabLimitError, match="65,535 files"):
            writer.add("one-too-many", b"", modified=MODIFIED)
    # What was accepted still makes a valid, full cabinet.
    listing = cabextract("-l", cab)
    assert listing.returncode == 0
    assert sum(1 for line in listing.stdout.splitlines() if " | f/" in line) == MAX_FILES


def test_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    cab = tmp_path / "broken.cab"
    with pytest.raises(RuntimeError), CabWriter(cab) as writer:
        writer.add("a", b"data", modified=MODIFIED)
        raise RuntimeError("source went away")
    assert list(tmp_path.iterdir()) == []


def test_existing_cabinet_is_replaced_only_when_complete(tmp_path: Path) -> None:
    cab = tmp_path / "package.cab"
    cab.write_bytes(b"previous")
    writer = CabWriter(cab)
    writer.add("a", b"data", modified=MODIFIED)
    assert cab.read_bytes() == b"previous"
    writer.close()
    assert cab.read_bytes().startswith(b"MSCF")


@pytest.mark.parametrize("name", ["", "a\0b", "x" * 256])
def test_rejects_invalid_member_names(tmp_path: Path, name: str) -> None:
    writer = CabWriter(tmp_path / "names.cab")
    with pytest.raises(ValueError):
        writer.add(name, b"", modified=MODIFIED)
    writer.abort()


def test_an_empty_cabinet_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one file"):
        CabWriter(tmp_path / "empty.cab").close()
    assert not (tmp_path / "empty.cab").exists()


def reference_checksum(data: bytes, seed: int) -> int:
    """[MS-CAB] 2.2.6 as written: word by word, then the trailing bytes."""
    value = seed
    whole = len(data) // 4 * 4
    for offset in range(0, whole, 4):
        value ^= int.from_bytes(data[offset : offset + 4], "little")
    tail = data[whole:]
    packed = 0
    for byte in tail:
        packed = (packed << 8) | byte
    return value ^ packed


@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 5, 7, 8, 12, 20, 36, 1001, BLOCK_SIZE])
def test_checksum_matches_the_specification(length: int) -> None:
    data = os.urandom(length)
    assert checksum(data, 0x12345678) == reference_checksum(data, 0x12345678)
