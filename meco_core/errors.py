"""The one error type the `meco` CLI reports: its message is printed on one line and the
command exits 2. Library errors a user can fix (a bad config, checkpoint, dataset, backend)
derive from it, so commands raise them and `meco_core.cli.app` does the reporting."""


class MecoError(Exception):
    """A problem the user can fix; the message says what to do."""


class InputSizeError(MecoError, ValueError):
    """Input declares a size that is absurd: beyond a configured limit (meco_core.defaults) or
    beyond the bytes that hold it. Raised before anything of that size is allocated."""


class DiskWriteError(MecoError, OSError):
    """A file could not be written (disk full, file-size limit, read-only disk).

    Why a class of its own (issue 20): the OS's error names no file ("[Errno 28] No space left
    on device"), and torch.save even turns it into "unexpected pos 704 vs 598"; this one names
    the file and whether the previous file there was kept, on one line, and is still an OSError
    (`errno` set) for callers that catch those."""

    @classmethod
    def of(cls, path: object, exc: BaseException, kept: bool = True) -> "DiskWriteError":
        reason = getattr(exc, "strerror", None) or str(exc)
        note = "; the previous file there is unchanged" if kept else ""
        err = cls(f"cannot write {path}: {reason}{note}")
        err.errno = getattr(exc, "errno", None)
        return err
