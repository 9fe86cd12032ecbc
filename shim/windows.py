"""Running a backend on Windows: in a job object, looked up as kubectl looks it up.

Windows has no process groups, killpg or posix_spawn. What ends a backend and
everything it started is a job object: the backend is created suspended, put in a
job of its own, then resumed, so that nothing it starts escapes the job. The job
is made with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, so that if we die (killed from
the task manager, a console closed) the backend's tree dies with our handle to
it, as the watchdog does on POSIX. A timeout, Ctrl-C or Ctrl-Break first sends
the backend's process group (CREATE_NEW_PROCESS_GROUP) a CTRL_BREAK_EVENT, as TERM
does on POSIX, and ends the job after the same grace. A backend that succeeds
keeps what it started running, as on POSIX: the limit is lifted before the handle
is closed.

The command is looked up as Go's LookPath does it on Windows (which kubectl uses):
on PATH, trying each PATHEXT extension, so a `aws.cmd` installed by pip is found as
`aws`; a match in the current directory or through a relative PATH entry is refused
(Go's ErrDot), where CreateProcess itself would run it, or a program beside python.exe.

Pipes cannot be polled on Windows: a thread reads each of stdout and stderr.
"""

from __future__ import annotations

import contextlib
import ntpath
import os
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from shim import LAUNCHERS, log
from shim.deadline import Deadline
from shim.errors import EXIT_FAILURE, EXIT_TIMEOUT, BackendError, Terminated, not_found

_CREATE_SUSPENDED = 0x00000004
_CREATE_NEW_PROCESS_GROUP = 0x00000200
_PROCESS_TERMINATE = 0x0001
_PROCESS_SET_QUOTA = 0x0100
_PROCESS_SUSPEND_RESUME = 0x0800
_PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
_JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x00002000
_JOB_OBJECT_EXTENDED_LIMIT_INFORMATION = 9  # its JOBOBJECTINFOCLASS
_TH32CS_SNAPPROCESS = 0x00000002
_DEFAULT_PATHEXT = ".com;.exe;.bat;.cmd"  # Go's, when PATHEXT is unset or empty
# The signals that end us while a backend runs (the console's Ctrl-C and Ctrl-Break).
FORWARDED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGBREAK") if hasattr(signal, name))


class DotError(FileNotFoundError):
    """Go's exec.ErrDot: the only match is relative to the current directory (the
    current directory itself, or a relative PATH entry), which kubectl does not run."""

    def __init__(self, name: str, found: str) -> None:
        super().__init__(2, "found only relative to the current directory", name)
        self.found = found


class Disk(NamedTuple):
    """What look_path asks of the file system (a test gives it another)."""

    is_file: Callable[[str], bool] = os.path.isfile
    same_file: Callable[[str, str], bool] = os.path.samefile


DISK = Disk()


def look_path(name: str, env: Mapping[str, str], disk: Disk = DISK) -> str:
    """Where Go's exec.LookPath (os/exec/lp_windows.go, Go >= 1.22) finds `name` with
    `env`: the path as Go spells it, which client-go runs and compares with allowlist
    entries. A name with `:`, `\\` or `/` is taken as written. A bare name is looked for
    in the current directory (unless NoDefaultCurrentDirectoryInExePath is set) and in
    each PATH directory, trying the PATHEXT extensions (lowered); the file system decides
    case. FileNotFoundError when nothing matches; DotError when the match is relative to
    the current directory and no PATH directory has the same file (GODEBUG
    execerrdot=0 lets Go return such a match: so do we)."""
    exts = _path_exts(_get(env, "PATHEXT"))
    if any(char in name for char in ":\\/"):
        found = _with_extension(name, exts, disk)
        if found is None:
            raise FileNotFoundError(2, "not found", name)
        return found
    dot_allowed = dot_allowed_by(_get(env, "GODEBUG"))
    dot: str | None = None
    if not any(key.upper() == "NODEFAULTCURRENTDIRECTORYINEXEPATH" for key in env):
        dot = _with_extension(_join(".", name), exts, disk)
        if dot is not None and dot_allowed:
            return dot
    for directory in _split_list(_get(env, "PATH")):
        if not directory:  # (Go skips an empty entry, as PowerShell does)
            continue
        found = _with_extension(_join(directory, name), exts, disk)
        if found is None:
            continue
        if dot is not None and not _same(dot, found, disk):
            raise DotError(name, dot)  # (the same file on PATH is taken by its PATH name)
        if not is_abs(found) and not dot_allowed:
            dot = dot or found  # a relative PATH entry: refused, but the search goes on
            continue
        return found
    if dot is not None:
        raise DotError(name, dot)
    raise FileNotFoundError(2, "not found", name)


def absolute(path: str) -> str:
    """Go's filepath.Abs on Windows: `path` joined to the current directory, cleaned."""
    return ntpath.normpath(ntpath.join(os.getcwd(), path))


def _path_exts(pathext: str) -> list[str]:
    """Go's pathExt(): PATHEXT's extensions, lowered, each with its dot; the default when
    PATHEXT is unset or empty (but none at all when it holds only separators)."""
    if not pathext:
        return _DEFAULT_PATHEXT.split(";")
    return [ext if ext.startswith(".") else "." + ext for ext in pathext.lower().split(";") if ext]


def _with_extension(path: str, exts: list[str], disk: Disk) -> str | None:
    """Go's findExecutable: `path` if it has an extension (or no extension is to be tried)
    and is a file, else the first `path`+ext that is a file."""
    last = max(path.rfind(char) for char in ".\\/:")
    if (not exts or (last >= 0 and path[last] == ".")) and disk.is_file(path):
        return path
    return next((path + ext for ext in exts if disk.is_file(path + ext)), None)


def _split_list(path: str) -> list[str]:
    """Go's filepath.SplitList on Windows: `;` separates except inside double quotes,
    which are then removed."""
    if not path:
        return []
    items, start, quoted = [], 0, False
    for index, char in enumerate(path):
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            items.append(path[start:index])
            start = index + 1
    items.append(path[start:])
    return [item.replace('"', "") for item in items]


def _join(directory: str, name: str) -> str:
    """Go's filepath.Join of two non-empty elements on Windows: joined, then cleaned."""
    return ntpath.normpath(directory + "\\" + name)


def is_abs(path: str) -> bool:
    """Go's filepath.IsAbs on Windows: a UNC path, or a drive followed by a separator
    (`\\x` and `C:x` are not; ntpath.isabs says otherwise for `\\x` before Python 3.13)."""
    drive, rest = ntpath.splitdrive(path)
    return drive.startswith(("\\\\", "//")) or (bool(drive) and rest[:1] in ("\\", "/"))


def _same(first: str, second: str, disk: Disk) -> bool:
    try:
        return disk.same_file(first, second)
    except OSError:
        return False


def dot_allowed_by(godebug: str) -> bool:
    """Whether GODEBUG turns exec.ErrDot off (execerrdot=0; the last setting wins)."""
    settings = [item.strip() for item in godebug.split(",")]
    values = [item.partition("=")[2] for item in settings if item.startswith("execerrdot=")]
    return bool(values) and values[-1] == "0"


def _get(env: Mapping[str, str], key: str) -> str:
    """`env`'s `key`, matched without case as Windows does."""
    for name, value in env.items():
        if name.upper() == key:
            return value
    return ""


def _kernel32() -> Any:
    import ctypes

    return ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]


def asker() -> str:
    """The process asking for a credential, as `<pid> <executable name> <start time>`: our
    parent, or, when our parent is pip's `shim.exe` launcher (which runs python.exe as its
    child and waits), the launcher's parent: kubectl, the same for every call it makes.
    The start time tells a process from a later one given its pid (Windows reuses pids
    at once)."""
    table = _processes()
    pid = table.get(os.getpid(), (0, ""))[0]  # (os.getppid() aborts under Wine 8)
    parent, name = table.get(pid, (0, ""))
    stem, _, extension = name.lower().rpartition(".")
    if extension == "exe" and stem in LAUNCHERS and parent in table:
        pid, name = parent, table[parent][1]
    return f"{pid} {name} {_started(pid)}"


def _started(pid: int) -> int:
    """When process `pid` started (a FILETIME), or 0 when that cannot be asked."""
    import ctypes

    kernel32 = _kernel32()
    kernel32.OpenProcess.restype = ctypes.c_void_p
    handle = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return 0
    try:
        times = [ctypes.c_uint64() for _ in range(4)]  # creation, exit, kernel, user
        ok = kernel32.GetProcessTimes(ctypes.c_void_p(handle), *map(ctypes.byref, times))
        return times[0].value if ok else 0
    finally:
        kernel32.CloseHandle(ctypes.c_void_p(handle))


def _processes() -> dict[int, tuple[int, str]]:
    """Every process's pid, with its parent's pid and its executable's file name (a
    Toolhelp snapshot); empty if there is none."""
    import ctypes

    class ProcessEntry(ctypes.Structure):  # PROCESSENTRY32W
        _fields_ = [
            ("dwSize", ctypes.c_uint32),
            ("cntUsage", ctypes.c_uint32),
            ("th32ProcessID", ctypes.c_uint32),
            ("th32DefaultHeapID", ctypes.c_size_t),
            ("th32ModuleID", ctypes.c_uint32),
            ("cntThreads", ctypes.c_uint32),
            ("th32ParentProcessID", ctypes.c_uint32),
            ("pcPriClassBase", ctypes.c_int32),
            ("dwFlags", ctypes.c_uint32),
            ("szExeFile", ctypes.c_wchar * 260),
        ]

    kernel32 = _kernel32()
    kernel32.CreateToolhelp32Snapshot.restype = ctypes.c_void_p
    snapshot = kernel32.CreateToolhelp32Snapshot(_TH32CS_SNAPPROCESS, 0)
    if snapshot in (None, ctypes.c_void_p(-1).value):
        return {}
    table = {}
    try:
        entry = ProcessEntry()
        entry.dwSize = ctypes.sizeof(ProcessEntry)
        more = kernel32.Process32FirstW(ctypes.c_void_p(snapshot), ctypes.byref(entry))
        while more:
            table[entry.th32ProcessID] = (entry.th32ParentProcessID, entry.szExeFile)
            more = kernel32.Process32NextW(ctypes.c_void_p(snapshot), ctypes.byref(entry))
    finally:
        kernel32.CloseHandle(ctypes.c_void_p(snapshot))
    return table


# What CPython (3.12.4 on, 3.13) gives os.mkdir(path, 0o700) on Windows: full control
# for SYSTEM, the Administrators and the owner alone, inherited by what is created in
# it, and nothing inherited from above (protected). Older Pythons ignore the mode there.
PRIVATE_DIRECTORY_SDDL = "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;OW)"
_SDDL_REVISION_1 = 1
_ERROR_ALREADY_EXISTS = 183


def make_private_dir(path: str) -> None:
    """Create the directory `path` with PRIVATE_DIRECTORY_SDDL's ACL, whatever Python runs
    us; FileExistsError when something is there already."""
    import ctypes

    class SecurityAttributes(ctypes.Structure):
        _fields_ = [
            ("nLength", ctypes.c_uint32),
            ("lpSecurityDescriptor", ctypes.c_void_p),
            ("bInheritHandle", ctypes.c_int),
        ]

    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined]
    kernel32 = _kernel32()
    descriptor = ctypes.c_void_p()
    if not advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW(
        PRIVATE_DIRECTORY_SDDL, _SDDL_REVISION_1, ctypes.byref(descriptor), None
    ):
        raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined]
    try:
        attributes = SecurityAttributes(ctypes.sizeof(SecurityAttributes), descriptor, 0)
        if not kernel32.CreateDirectoryW(path, ctypes.byref(attributes)):
            code = ctypes.get_last_error()  # type: ignore[attr-defined]
            if code == _ERROR_ALREADY_EXISTS:
                raise FileExistsError(17, "already exists", path)
            raise ctypes.WinError(code)  # type: ignore[attr-defined]
    finally:
        kernel32.LocalFree(descriptor)


def _limits(flags: int) -> Any:
    """A JOBOBJECT_EXTENDED_LIMIT_INFORMATION with LimitFlags `flags`."""
    import ctypes

    class Basic(ctypes.Structure):
        _fields_ = [
            ("PerProcessUserTimeLimit", ctypes.c_int64),
            ("PerJobUserTimeLimit", ctypes.c_int64),
            ("LimitFlags", ctypes.c_uint32),
            ("MinimumWorkingSetSize", ctypes.c_size_t),
            ("MaximumWorkingSetSize", ctypes.c_size_t),
            ("ActiveProcessLimit", ctypes.c_uint32),
            ("Affinity", ctypes.c_size_t),
            ("PriorityClass", ctypes.c_uint32),
            ("SchedulingClass", ctypes.c_uint32),
        ]

    class Extended(ctypes.Structure):
        _fields_ = [
            ("BasicLimitInformation", Basic),
            ("IoInfo", ctypes.c_uint64 * 6),
            ("ProcessMemoryLimit", ctypes.c_size_t),
            ("JobMemoryLimit", ctypes.c_size_t),
            ("PeakProcessMemoryUsed", ctypes.c_size_t),
            ("PeakJobMemoryUsed", ctypes.c_size_t),
        ]

    info = Extended()
    info.BasicLimitInformation.LimitFlags = flags
    return info


class Job:
    """A job object that ends its processes when its last handle is closed."""

    def __init__(self) -> None:
        import ctypes

        self._kernel32 = kernel32 = _kernel32()
        kernel32.CreateJobObjectW.restype = ctypes.c_void_p
        self.handle = kernel32.CreateJobObjectW(None, None)
        if not self.handle:
            raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined]
        self._set(_JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE)

    def _set(self, flags: int) -> None:
        import ctypes

        info = _limits(flags)
        set_information = self._kernel32.SetInformationJobObject
        set_information.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
        kind = _JOB_OBJECT_EXTENDED_LIMIT_INFORMATION
        if not set_information(self.handle, kind, ctypes.byref(info), ctypes.sizeof(info)):
            raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined]

    def adopt(self, pid: int) -> None:
        """Put the suspended process `pid` in the job, then let it run."""
        import ctypes

        kernel32 = self._kernel32
        kernel32.OpenProcess.restype = ctypes.c_void_p
        access = _PROCESS_SET_QUOTA | _PROCESS_TERMINATE | _PROCESS_SUSPEND_RESUME
        process = kernel32.OpenProcess(access, False, pid)
        if not process:
            raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined]
        try:
            kernel32.AssignProcessToJobObject.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            if not kernel32.AssignProcessToJobObject(self.handle, process):
                raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined]
            resume = ctypes.WinDLL("ntdll").NtResumeProcess  # type: ignore[attr-defined]
            resume.argtypes = [ctypes.c_void_p]
            if resume(process) != 0:
                raise OSError("the backend could not be resumed")
        finally:
            kernel32.CloseHandle.argtypes = [ctypes.c_void_p]
            kernel32.CloseHandle(process)

    def terminate(self) -> None:
        """End every process in the job."""
        import ctypes

        self._kernel32.TerminateJobObject.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        self._kernel32.TerminateJobObject(self.handle, EXIT_FAILURE)

    def close(self, keep: bool) -> None:
        """Close the job; what is still in it lives on if `keep`, else it ends."""
        import ctypes

        if not self.handle:
            return
        if keep:
            with contextlib.suppress(OSError):
                self._set(0)
        self._kernel32.CloseHandle.argtypes = [ctypes.c_void_p]
        self._kernel32.CloseHandle(self.handle)
        self.handle = None


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


class BackendJob:
    """A backend running in a job object of its own: shim.process.BackendProcess on
    Windows, used the same way (`with`, then finish)."""

    def __init__(self, argv: list[str], env: dict[str, str], shown: list[str]) -> None:
        import subprocess
        import threading

        self.argv, self.shown = argv, shown
        self.stderr_tail = b""
        self._handlers: dict[int, Any] = {}
        self._chunks: list[bytes] = []
        self._size = 0
        self._too_large = False
        self._reaped = False
        try:
            program = look_path(argv[0], env)
        except FileNotFoundError:
            raise not_found(shown[0]) from None
        self._job = Job()
        try:
            self._process = subprocess.Popen(
                [program, *argv[1:]],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                creationflags=_CREATE_SUSPENDED | _CREATE_NEW_PROCESS_GROUP,
            )
        except OSError as error:
            self._job.close(keep=False)
            from shim.process import start_error

            raise start_error(shown, program, error) from None
        self.pid = self._process.pid
        try:
            self._job.adopt(self.pid)
        except BaseException:
            self._process.kill()
            self._job.close(keep=False)
            raise
        for signum in FORWARDED:
            with contextlib.suppress(ValueError):  # (not the main thread)
                self._handlers[signum] = signal.signal(signum, _raise_terminated)
        self._readers = [
            threading.Thread(target=self._read, args=(self._process.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self._process.stderr, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, pipe: Any, is_stdout: bool) -> None:
        from shim.process import _READ_SIZE, _TAIL, MAX_OUTPUT

        fd = pipe.fileno()
        with contextlib.suppress(OSError):
            while data := os.read(fd, _READ_SIZE):
                if not is_stdout:
                    self.stderr_tail = (self.stderr_tail + data)[-_TAIL:]
                    log.relay(data)
                    continue
                self._chunks.append(data)
                self._size += len(data)
                if self._size > MAX_OUTPUT:
                    self._too_large = True
                    return

    def __enter__(self) -> BackendJob:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        try:
            if error is not None and not self._reaped:
                self._end()
            self._job.close(keep=error is None)
            for pipe in (self._process.stdout, self._process.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
        finally:
            for signum, handler in self._handlers.items():
                signal.signal(signum, handler)
            self._handlers.clear()

    def _end(self) -> None:
        """CTRL_BREAK_EVENT to the backend's process group; the job ended after the grace."""
        from shim.process import GRACE

        # (It may fail: no console, or under Wine a SystemError. The job ends all the same.)
        with contextlib.suppress(Exception):
            os.kill(self.pid, signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        grace = Deadline(GRACE)
        while self._process.poll() is None and not grace.passed():
            time.sleep(0.01)
        self._job.terminate()
        with contextlib.suppress(Exception):
            self._process.wait(5)

    def finish(self, deadline: Deadline) -> bytes:
        """Wait until `deadline` at most; the backend's stdout, or a BackendError with the
        command and exit code."""
        from shim.process import MAX_OUTPUT, describe

        stdout_reader, stderr_reader = self._readers
        pause = 0.001
        while stdout_reader.is_alive() or self._process.poll() is None:
            if not deadline.left():
                raise BackendError(
                    f"{describe(self.shown)} timed out ({deadline.setting} {deadline.seconds:g} s) "
                    "and was killed",
                    EXIT_TIMEOUT,
                )
            stdout_reader.join(min(pause, deadline.left()))  # (short: signals run between)
            pause = min(pause * 2, 0.05)
            if self._too_large:
                raise BackendError(
                    f"{describe(self.shown)} printed more than {MAX_OUTPUT >> 20} MiB, which is "
                    "no credential, and was killed"
                )
        self._reaped = True
        stderr_reader.join(0.05)  # a child of the backend may hold stderr: not waited for
        code = self._process.returncode
        if code != 0:
            exit_code = code if 0 < code < 256 else EXIT_FAILURE
            raise BackendError(f"{describe(self.shown)} failed with exit code {code}", exit_code)
        return b"".join(self._chunks)


def start(argv: list[str], env: dict[str, str], shown: list[str] | None = None) -> BackendJob:
    """shim.process.start, on Windows."""
    return BackendJob(argv, env, argv if shown is None else shown)
