"""Which filesystem a folder is on, and the lock backend chosen for it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import fermilink_state as fs
from fermilink_state import _filesystems, _locking

SHARED: list[str] = ["nfs", "nfs4", "lustre", "gpfs", "cifs", "smb3", "fuse", "fuseblk"]
SHARED += ["fuse.sshfs", "beegfs", "ceph", "glusterfs", "9p", "afs", "virtiofs"]


@pytest.mark.parametrize("type_name", SHARED)
def test_network_and_cluster_filesystems_are_shared(type_name: str) -> None:
    assert _filesystems.is_shared_type(type_name)


@pytest.mark.parametrize("type_name", ["ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs", None])
def test_local_filesystems_are_not_shared(type_name: str | None) -> None:
    assert not _filesystems.is_shared_type(type_name)


def _fake_mountinfo(tmp_path: Path, folder: Path, fstype: str) -> Path:
    device = os.stat(folder).st_dev
    text = (
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        f"40 22 {os.major(device)}:{os.minor(device)} / {folder} rw,relatime - {fstype} "
        "server:/export rw,vers=4.2\n"
    )
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(text, encoding="utf-8")
    return mountinfo


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty per-device cache, and no override in the environment."""
    monkeypatch.setattr(_filesystems, "_by_device", {})
    monkeypatch.delenv("FERMILINK_STATE_LOCK", raising=False)


@pytest.mark.skipif(not os.path.exists("/proc/self/mountinfo"), reason="needs Linux /proc")
@pytest.mark.usefixtures("fresh_cache")
def test_the_mount_of_the_folders_device_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "campaign"
    folder.mkdir()
    monkeypatch.setattr(_filesystems, "_MOUNTINFO", str(_fake_mountinfo(tmp_path, folder, "nfs4")))
    assert _filesystems.filesystem_of(str(folder)) == _filesystems.Filesystem("nfs4", True)
    backend = fs.choose_lock_backend(folder)
    assert (backend.name, backend.filesystem) == ("strict", "nfs4")
    assert "nfs4" in backend.reason
    assert "other hosts" in backend.reason


@pytest.mark.skipif(not os.path.exists("/proc/self/mountinfo"), reason="needs Linux /proc")
@pytest.mark.usefixtures("fresh_cache")
def test_the_answer_is_cached_per_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_filesystems, "_MOUNTINFO", str(_fake_mountinfo(tmp_path, tmp_path, "nfs")))
    assert _filesystems.filesystem_of(str(tmp_path)).shared
    monkeypatch.setattr(_filesystems, "_MOUNTINFO", str(tmp_path / "gone"))
    (tmp_path / "other").mkdir()
    assert _filesystems.filesystem_of(str(tmp_path / "other")).type_name == "nfs"


@pytest.mark.usefixtures("fresh_cache")
def test_statfs_is_the_fallback_without_mountinfo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not os.path.exists("/proc/self/mountinfo"):
        pytest.skip("needs Linux")
    from_mountinfo = _filesystems._mountinfo_type(os.stat(tmp_path).st_dev, str(tmp_path))
    monkeypatch.setattr(_filesystems, "_MOUNTINFO", str(tmp_path / "missing"))
    found = _filesystems.filesystem_of(str(tmp_path))
    # statfs names what mountinfo names (the usual ones), or gives the magic number.
    assert found.type_name is not None
    assert found.type_name == from_mountinfo or found.type_name.startswith("0x")
    assert found.shared == _filesystems.is_shared_type(from_mountinfo)


@pytest.mark.parametrize("name", ["flock", "strict", "soft"])
def test_the_environment_overrides_the_choice(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", name.upper())
    backend = fs.choose_lock_backend(tmp_path)
    assert backend.name == name
    assert "FERMILINK_STATE_LOCK" in backend.reason


def test_an_unknown_override_names_the_choices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", "posix")
    with pytest.raises(ValueError, match="flock, strict or soft"):
        fs.choose_lock_backend(tmp_path)


def test_each_backend_names_its_lock_files_apart(tmp_path: Path) -> None:
    target = tmp_path / "memory.md"
    names = {fs.lock_path_for(target, name).name for name in ("flock", "strict", "soft")}
    assert names == {"memory.md.lock", "memory.md.strict-lock", "memory.md.soft-lock"}


@pytest.mark.usefixtures("fresh_cache")
def test_a_folder_on_a_shared_filesystem_gets_a_strict_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        _filesystems, "filesystem_of", lambda folder: _filesystems.Filesystem("lustre", True)
    )
    lock = _locking.file_lock(tmp_path / "results.tsv")
    assert type(lock).__name__ == "StrictSoftFileLock"
    assert lock.lock_file.endswith("results.tsv.strict-lock")


@pytest.mark.usefixtures("fresh_cache")
def test_a_lock_chosen_before_its_folder_exists_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "later" / "results.tsv"
    assert type(_locking.file_lock(target)).__name__ == "UnixFileLock"
    (tmp_path / "later").mkdir()
    monkeypatch.setattr(
        _filesystems, "filesystem_of", lambda folder: _filesystems.Filesystem("nfs", True)
    )
    assert type(_locking.file_lock(target)).__name__ == "StrictSoftFileLock"


NOT_DETECTABLE = (
    "filesystem type not detectable here; set FERMILINK_STATE_LOCK=strict if other hosts share it"
)


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        (
            _filesystems.Filesystem("ext4", False),
            fs.LockBackend("flock", "ext4 filesystem, local to this host", "ext4"),
        ),
        (_filesystems.Filesystem(None, False), fs.LockBackend("flock", NOT_DETECTABLE)),
        (
            _filesystems.Filesystem(None, True),
            fs.LockBackend(
                "strict",
                "unknown filesystem, which other hosts may share: flock would not exclude them",
                "unknown",
            ),
        ),
    ],
)
@pytest.mark.usefixtures("fresh_cache")
def test_each_choice_is_exact_about_its_backend_reason_and_filesystem(
    found: _filesystems.Filesystem,
    expected: fs.LockBackend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def filesystem_of(folder: str) -> _filesystems.Filesystem:
        asked.append(folder)
        return found

    monkeypatch.setattr(_filesystems, "filesystem_of", filesystem_of)
    monkeypatch.chdir(tmp_path)
    assert fs.choose_lock_backend() == expected
    assert asked == ["."]  # the default folder is the current one


@pytest.mark.usefixtures("fresh_cache")
def test_an_unreadable_folder_gets_flock_and_says_why(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    assert fs.choose_lock_backend(missing) == fs.LockBackend(
        "flock", f"filesystem of {missing} not readable (No such file or directory)"
    )


@pytest.mark.parametrize("name", ["flock", "strict", "soft"])
def test_the_override_is_the_whole_reason(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", f" {name.upper()} ")
    expected = fs.LockBackend(name, f"set by FERMILINK_STATE_LOCK={name}")  # type: ignore[arg-type]
    assert fs.choose_lock_backend(tmp_path) == expected


def test_an_unknown_override_error_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", "posix")
    with pytest.raises(ValueError, match="is not a lock backend") as caught:
        fs.choose_lock_backend(tmp_path)
    assert str(caught.value) == (
        "FERMILINK_STATE_LOCK='posix' is not a lock backend; "
        "use flock, strict or soft, or unset it to choose by filesystem"
    )
