"""Safe zip extraction: real recordings come out byte-identical; hostile archives are refused whole."""

from __future__ import annotations

import io
import stat
import struct
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eggroll_snn.data.archive import STAGING_PREFIX, open_member_checked, open_zip, safe_extract
from eggroll_snn.errors import ArchiveError

# offsets of fields in the local file header ("PK\3\4") and central directory entry ("PK\1\2")
LOCAL_SIGNATURE, CENTRAL_SIGNATURE = b"PK\x03\x04", b"PK\x01\x02"
FIELD_OFFSETS = {
    "flag_bits": ({LOCAL_SIGNATURE: 6, CENTRAL_SIGNATURE: 8}, "<H"),
    "file_size": ({LOCAL_SIGNATURE: 22, CENTRAL_SIGNATURE: 24}, "<I"),
}


def write_zip(path: Path, members, compression=zipfile.ZIP_DEFLATED) -> Path:
    """Write ``members`` (pairs of name-or-ZipInfo and bytes) to a zip file at ``path``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on the duplicate names some tests need
        with zipfile.ZipFile(path, "w", compression) as archive:
            for name, data in members:
                archive.writestr(name, data)
    return path


def patch_headers(path: Path, field: str, value: int) -> None:
    """Overwrite one field in every local and central header of a zip (its data holds no 'PK')."""
    offsets, fmt = FIELD_OFFSETS[field]
    data = bytearray(path.read_bytes())
    for signature, offset in offsets.items():
        start = data.find(signature)
        assert start >= 0
        while start >= 0:
            struct.pack_into(fmt, data, start + offset, value)
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))


def tree(folder: Path) -> list[str]:
    """Every path below ``folder`` (files, folders and links), relative and sorted."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.fixture(scope="module")
def real_members(nmnist_small_root):
    """Twelve real recordings as (name in the archive, bytes), two per digit 0..5."""
    members = []
    for digit in range(6):
        for path in sorted((nmnist_small_root / "NMNIST" / "Train" / str(digit)).glob("*.bin"))[:2]:
            members.append((f"Train/{digit}/{path.name}", path.read_bytes()))
    return members


def test_real_recordings_extract_byte_identical(tmp_path, real_members):
    archive = write_zip(tmp_path / "Train.zip", real_members)
    target = tmp_path / "out"
    written = safe_extract(archive, target)
    assert written == [target / name for name, _ in real_members]
    for name, data in real_members:
        assert (target / name).read_bytes() == data
    assert tree(target) == sorted(["Train"] + [f"Train/{d}" for d in range(6)] + [name for name, _ in real_members])


def test_folder_entries_and_stored_members_extract(tmp_path, real_members):
    name, data = real_members[0]
    archive = write_zip(tmp_path / "a.zip", [("Train/", b""), ("Train/empty/", b""), (name, data)], zipfile.ZIP_STORED)
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "Train" / "empty").is_dir()
    assert (tmp_path / "out" / name).read_bytes() == data


def test_open_member_checked_reads_in_place_with_a_cap(tmp_path, real_members):
    archive = write_zip(tmp_path / "a.zip", real_members + [("Train/", b"")])
    name, data = real_members[3]
    with open_zip(archive) as zip_file:
        assert open_member_checked(zip_file, name, max_bytes=len(data)) == data
        with pytest.raises(ArchiveError, match="over the cap"):
            open_member_checked(zip_file, name, max_bytes=len(data) - 1)
        with pytest.raises(ArchiveError, match="no member named"):
            open_member_checked(zip_file, "Train/7/missing.bin", max_bytes=10**6)
        with pytest.raises(ArchiveError, match="is a folder"):
            open_member_checked(zip_file, "Train/", max_bytes=10**6)


class _LyingZip:
    """Stands in for a ZipFile whose member streams more bytes than its header declares."""

    filename = "lying.zip"

    def __init__(self, declared: int, actual: int):
        self.info = zipfile.ZipInfo("Train/0/big.bin")
        self.info.file_size = declared
        self.actual = actual

    def getinfo(self, name):
        return self.info

    def open(self, info):
        return io.BytesIO(b"\0" * self.actual)


def test_bytes_are_counted_while_streaming_not_taken_from_the_header():
    # zipfile itself stops at the declared size; the count is checked independently of it
    with pytest.raises(ArchiveError, match="more than the 1000 bytes its header declares"):
        open_member_checked(_LyingZip(declared=1000, actual=200_000), "Train/0/big.bin", max_bytes=10**6)
    with pytest.raises(ArchiveError, match="decompresses to 10 bytes but its header declares 1000"):
        open_member_checked(_LyingZip(declared=1000, actual=10), "Train/0/big.bin", max_bytes=10**6)


def assert_refused_cleanly(tmp_path: Path, archive: Path, match: str, **caps) -> None:
    """safe_extract raises ArchiveError matching ``match``; nothing appears anywhere in tmp_path."""
    before = tree(tmp_path)
    with pytest.raises(ArchiveError, match=match) as raised:
        safe_extract(archive, tmp_path / "target", **caps)
    assert str(archive) in str(raised.value)
    assert tree(tmp_path) in (before, sorted(before + ["target"]))  # at most an empty target


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../evil.bin", r"climbs out of the target folder with '\.\.'"),
        ("Train/../../evil.bin", r"climbs out"),
        ("Train/0/../../../evil.bin", r"climbs out"),
        ("/TMP/evil.bin", "has an absolute path"),
        ("C:/evil.bin", "drive letter"),
        ("C:evil.bin", "drive letter"),
        ("..\\evil.bin", "backslash"),
        ("Train\\..\\..\\evil.bin", "backslash"),
        ("Train/./evil.bin", r"empty or '\.' path component"),
        ("Train//evil.bin", r"empty or '\.' path component"),
        ("Train/evil\x01.bin", "control character"),
        ("Train/" + "x" * 256, "longer than 255 bytes"),
    ],
)
def test_names_outside_the_target_are_refused(tmp_path, real_members, name, match):
    name = name.replace("/TMP", str(tmp_path))  # an absolute path pointing right beside the target
    archive = write_zip(tmp_path / "evil.zip", real_members[:2] + [(name, b"owned")])
    assert_refused_cleanly(tmp_path, archive, match)
    assert not (tmp_path / "evil.bin").exists()


def _member_with_mode(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
    info.external_attr = mode << 16
    return info


@pytest.mark.parametrize(
    ("mode", "match"),
    [
        (stat.S_IFLNK | 0o777, "is a symbolic link"),
        (stat.S_IFCHR | 0o666, "special file"),
        (stat.S_IFBLK | 0o666, "special file"),
        (stat.S_IFIFO | 0o644, "special file"),
        (stat.S_IFSOCK | 0o644, "special file"),
        (stat.S_IFDIR | 0o755, "marked as a folder"),
    ],
)
def test_links_and_special_files_are_refused(tmp_path, real_members, mode, match):
    link = _member_with_mode("Train/0/link.bin", mode)
    archive = write_zip(tmp_path / "links.zip", real_members[:2] + [(link, str(tmp_path / "secret"))])
    assert_refused_cleanly(tmp_path, archive, match)


def test_regular_file_mode_bits_are_accepted(tmp_path, real_members):
    name, data = real_members[0]
    archive = write_zip(tmp_path / "modes.zip", [(_member_with_mode(name, stat.S_IFREG | 0o4755), data)])
    (written,) = safe_extract(archive, tmp_path / "out")
    assert written.read_bytes() == data
    assert not written.stat().st_mode & stat.S_ISUID  # archive permission bits are not applied


def test_member_declaring_more_than_the_cap_is_refused(tmp_path, real_members):
    archive = write_zip(tmp_path / "bomb.zip", real_members[:2] + [("Train/0/bomb.bin", b"\0" * 3_000_000)])
    with zipfile.ZipFile(archive) as zip_file:
        assert zip_file.getinfo("Train/0/bomb.bin").compress_size < 10_000  # 3 MB of zeros deflate to ~3 kB
    match = r"declares 3000000 bytes, over the cap of 1048576"
    assert_refused_cleanly(tmp_path, archive, match, max_member_bytes=2**20)


def test_members_declaring_more_than_the_total_cap_are_refused(tmp_path):
    members = [(f"Train/0/{index:05d}.bin", b"\0" * 400_000) for index in range(3)]
    archive = write_zip(tmp_path / "bomb.zip", members)
    assert_refused_cleanly(tmp_path, archive, "more than 1000000 bytes in total", max_total_bytes=1_000_000)
    assert len(safe_extract(archive, tmp_path / "ok", max_total_bytes=1_200_000)) == 3


def test_zip_bomb_with_a_lying_size_header_is_refused(tmp_path, real_members):
    # 50 MB of zeros deflate to ~50 kB; the headers claim 1,000 bytes, well under the 64 kB cap
    archive = write_zip(tmp_path / "liar.zip", [("Train/0/bomb.bin", b"\0" * 50_000_000)])
    patch_headers(archive, "file_size", 1000)
    with zipfile.ZipFile(archive) as zip_file:
        assert zip_file.getinfo("Train/0/bomb.bin").file_size == 1000
    assert_refused_cleanly(tmp_path, archive, "CRC", max_member_bytes=65_536)


def test_too_many_members_are_refused(tmp_path, real_members):
    archive = write_zip(tmp_path / "many.zip", real_members[:6])
    assert_refused_cleanly(tmp_path, archive, r"6 members, over the cap of 5", max_members=5)


def test_encrypted_members_are_refused(tmp_path, real_members):
    archive = write_zip(tmp_path / "secret.zip", real_members[:1])
    patch_headers(archive, "flag_bits", 0x1)
    assert_refused_cleanly(tmp_path, archive, "is encrypted")


def test_bzip2_members_are_refused(tmp_path, real_members):
    archive = write_zip(tmp_path / "bz2.zip", real_members[:1], compression=zipfile.ZIP_BZIP2)
    assert_refused_cleanly(tmp_path, archive, "compression method 12")


def test_duplicate_names_and_file_folder_clashes_are_refused(tmp_path, real_members):
    (name, data), (_, other) = real_members[:2]
    duplicate = write_zip(tmp_path / "dup.zip", [(name, data), (name, other)])
    assert_refused_cleanly(tmp_path, duplicate, "appears twice")
    clash = write_zip(tmp_path / "clash.zip", [("Train/0", data), ("Train/0/x.bin", other)])
    assert_refused_cleanly(tmp_path, clash, "'Train/0' is both a file and a folder")


def test_corrupt_member_midway_leaves_nothing_behind(tmp_path, real_members):
    archive = write_zip(tmp_path / "crc.zip", real_members[:6], compression=zipfile.ZIP_STORED)
    with zipfile.ZipFile(archive) as zip_file:
        info = zip_file.infolist()[4]
    data = bytearray(archive.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + 100] ^= 0xFF  # a byte of member 5's events
    archive.write_bytes(bytes(data))
    assert_refused_cleanly(tmp_path, archive, r"Train/2/.*Bad CRC-32")


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "empty", "missing"])
def test_corrupt_or_missing_archives_are_refused(tmp_path, real_members, damage):
    archive = write_zip(tmp_path / "bad.zip", real_members[:4])
    data = archive.read_bytes()
    if damage == "truncated":
        archive.write_bytes(data[: len(data) // 2])
    elif damage == "not a zip":
        archive.write_bytes(b"this is not a zip archive\n" * 50)
    elif damage == "empty":
        archive.write_bytes(b"")
    else:
        archive.unlink()
    match = "archive not found" if damage == "missing" else "corrupt or truncated"
    assert_refused_cleanly(tmp_path, archive, match)


def test_existing_entries_in_the_target_are_never_overwritten(tmp_path, real_members):
    archive = write_zip(tmp_path / "a.zip", real_members[:3])
    target = tmp_path / "target"
    (target / "Train").mkdir(parents=True)
    (target / "Train" / "mine.txt").write_text("keep me")
    with pytest.raises(ArchiveError, match="already exists"):
        safe_extract(archive, target)
    assert tree(target) == ["Train", "Train/mine.txt"]
    assert (target / "Train" / "mine.txt").read_text() == "keep me"


def _valid_zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Train/", b"")
        archive.writestr(zipfile.ZipInfo("Train/0/00001.bin"), bytes(range(250)) * 2)
        archive.writestr("Train/1/00002.bin", zlib.compress(b"events") * 20, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


VALID_ZIP = _valid_zip_bytes()


@st.composite
def mutated_zips(draw) -> bytes:
    """The valid zip with a few bytes overwritten, inserted or deleted, or cut short."""
    data = bytearray(VALID_ZIP)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["overwrite", "insert", "delete", "truncate"]))
        if action == "overwrite":
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 8))]
        else:
            del data[position:]
        if not data:
            break
    return bytes(data)


def _extract_or_archive_error(data: bytes) -> None:
    """The property: safe_extract succeeds inside the target or raises ArchiveError, leaving it empty."""
    with tempfile.TemporaryDirectory() as folder:
        archive, target = Path(folder) / "fuzz.zip", Path(folder) / "target"
        archive.write_bytes(data)
        try:
            written = safe_extract(archive, target, max_total_bytes=100_000, max_member_bytes=10_000, max_members=50)
        except ArchiveError:
            assert not target.exists() or not any(target.iterdir())
        else:
            assert all(path.is_file() and target in path.parents for path in written)
            assert not any(name.startswith(STAGING_PREFIX) for name in tree(target))
        assert sorted(path.name for path in Path(folder).iterdir()) in (["fuzz.zip"], ["fuzz.zip", "target"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_zips())
def test_mutated_zips_raise_only_archive_error(data):
    _extract_or_archive_error(data)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.binary(max_size=600), st.binary(max_size=200).map(lambda tail: b"PK\x05\x06" + tail)))
def test_random_bytes_raise_only_archive_error(data):
    _extract_or_archive_error(data)
