"""shim.windows's lookup: where Go's exec.LookPath finds a program on Windows (the
program kubectl runs, and the path it compares with kuberc's allowlist entries).

Pure: the file system is a fake one, without case, with a current directory, so these
run on every platform; on Windows (under Wine in scripts/windows-test) they run too.
The Windows behaviour end to end is tests/windows's."""

from __future__ import annotations

import ntpath

import pytest

from shim.windows import Disk, DotError, is_abs, look_path

CWD = "C:\\work"


def disk(*files: str) -> Disk:
    """Windows' view of `files` (absolute, or relative to CWD): no case, `/` or `\\`."""

    def key(path: str) -> str:
        return ntpath.normpath(ntpath.join(CWD, path)).lower()

    present = {key(path) for path in files}
    return Disk(
        is_file=lambda path: key(path) in present,
        same_file=lambda first, second: key(first) == key(second) and key(first) in present,
    )


def find(name: str, files: tuple[str, ...], **env: str) -> str:
    return look_path(name, {"PATH": "C:\\bin;C:\\tools", **env}, disk(*files))


def test_a_bare_name_is_found_on_path_with_the_first_pathext_extension_that_exists() -> None:
    assert find("aws", ("C:\\tools\\aws.cmd",)) == "C:\\tools\\aws.cmd"
    assert find("aws", ("C:\\tools\\aws.cmd", "C:\\bin\\aws.bat")) == "C:\\bin\\aws.bat"
    both = ("C:\\bin\\aws.cmd", "C:\\bin\\aws.exe")
    assert find("aws", both) == "C:\\bin\\aws.exe"  # Go's default: .com;.exe;.bat;.cmd
    assert find("aws", both, PATHEXT=".CMD;.EXE") == "C:\\bin\\aws.cmd"


def test_the_name_is_spelled_as_written_and_the_extension_lowered_whatever_the_disk_says() -> None:
    """Go builds the path from PATH's entry, the name and PATHEXT (lowered); the file
    system matches without case. client-go compares these strings as they are."""
    assert find("AWS", ("C:\\BIN\\aws.CMD",), PATHEXT=".CMD") == "C:\\bin\\AWS.cmd"


def test_pathext_is_read_as_go_reads_it() -> None:
    files = ("C:\\bin\\aws.exe", "C:\\bin\\aws")
    assert find("aws", files, PATHEXT="EXE") == "C:\\bin\\aws.exe"  # a dot added
    assert find("aws", files, Pathext=".exe") == "C:\\bin\\aws.exe"  # a name without case
    assert find("aws", files, PATHEXT=";") == "C:\\bin\\aws"  # no extension: the name alone
    with pytest.raises(FileNotFoundError):
        find("aws", ("C:\\bin\\aws",), PATHEXT=".exe")  # (no extension is no match)


def test_a_name_with_an_extension_is_tried_as_it_is_then_with_pathext() -> None:
    assert find("aws.cmd", ("C:\\bin\\aws.cmd", "C:\\bin\\aws.cmd.exe")) == "C:\\bin\\aws.cmd"
    assert find("tool.v2", ("C:\\bin\\tool.v2.exe",)) == "C:\\bin\\tool.v2.exe"


def test_a_name_with_a_directory_is_taken_as_written() -> None:
    files = ("C:\\opt\\aws.exe", "C:\\bin\\aws.exe")
    assert find("C:\\opt\\aws", files) == "C:\\opt\\aws.exe"
    assert find("C:/opt/aws", files) == "C:/opt/aws.exe"  # not cleaned: Go returns it so
    assert find("..\\opt\\aws.exe", files) == "..\\opt\\aws.exe"  # relative, on purpose
    with pytest.raises(FileNotFoundError) as missing:
        find("C:\\nowhere\\aws", files)
    assert not isinstance(missing.value, DotError)


def test_a_match_in_the_current_directory_is_refused() -> None:
    """Go >= 1.19 (exec.ErrDot): Windows' own CreateProcess would run it first."""
    with pytest.raises(DotError) as refused:
        find("aws", (f"{CWD}\\aws.exe",))
    assert refused.value.found == "aws.exe"
    with pytest.raises(DotError):  # even when PATH has another aws: the planted one wins
        find("aws", (f"{CWD}\\aws.exe", "C:\\bin\\aws.exe"))


def test_the_current_directory_s_program_is_taken_by_its_path_name_when_path_has_it() -> None:
    assert find("aws", (f"{CWD}\\aws.exe",), PATH=f"C:\\bin;{CWD}") == f"{CWD}\\aws.exe"


def test_the_current_directory_is_skipped_when_windows_is_told_to() -> None:
    files = (f"{CWD}\\aws.exe", "C:\\bin\\aws.exe")
    for name in ("NoDefaultCurrentDirectoryInExePath", "NODEFAULTCURRENTDIRECTORYINEXEPATH"):
        assert find("aws", files, **{name: ""}) == "C:\\bin\\aws.exe"  # set, even to nothing


def test_godebug_execerrdot_0_lets_a_relative_match_through() -> None:
    assert find("aws", (f"{CWD}\\aws.exe",), GODEBUG="execerrdot=0") == "aws.exe"
    with pytest.raises(DotError):
        find("aws", (f"{CWD}\\aws.exe",), GODEBUG="execerrdot=0,execerrdot=1")
    relative = {"PATH": "bin", "GODEBUG": "x=1,execerrdot=0"}
    assert find("aws", (f"{CWD}\\bin\\aws.exe",), **relative) == "bin\\aws.exe"


def test_a_relative_path_entry_is_refused_unless_an_absolute_one_holds_the_same_file() -> None:
    files = (f"{CWD}\\bin\\aws.exe", "C:\\tools\\aws.exe")
    with pytest.raises(DotError) as refused:
        find("aws", files, PATH="bin;C:\\tools")
    assert refused.value.found == "bin\\aws.exe"
    with pytest.raises(DotError):
        find("aws", (f"{CWD}\\bin\\aws.exe",), PATH="bin")
    assert find("aws", (f"{CWD}\\bin\\aws.exe",), PATH=f"bin;{CWD}\\bin") == f"{CWD}\\bin\\aws.exe"


def test_path_is_split_as_go_splits_it() -> None:
    """Empty entries skipped; `;` inside double quotes kept, the quotes removed; the
    joined path cleaned."""
    assert find("aws", ("C:\\my;dir\\aws.exe",), PATH=';;"C:\\my;dir"') == "C:\\my;dir\\aws.exe"
    assert find("aws", ("C:\\bin\\aws.exe",), PATH="C:\\bin\\.\\") == "C:\\bin\\aws.exe"
    assert find("aws", ("C:\\bin\\aws.exe",), Path="C:/bin") == "C:\\bin\\aws.exe"
    with pytest.raises(FileNotFoundError):
        find("aws", ("C:\\bin\\aws.exe",), PATH="")


def test_absolute_is_what_go_calls_absolute_on_windows() -> None:
    absolute = ["C:\\x", "C:/x", "\\\\server\\share\\x"]
    relative = ["\\x", "C:x", "x\\y", "x"]
    assert [is_abs(path) for path in absolute + relative] == [True] * 3 + [False] * 4
