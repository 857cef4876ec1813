"""The file store shared by the gateway (uploads) and the worker (validation, training)."""

from services.core.settings import PlatformSettings

from .storage import DirStore, FileStore, PendingFile, check_file_id, new_file_id


def open_store(settings: PlatformSettings) -> FileStore:
    if settings.files_backend == "s3":
        from .s3 import S3Store  # boto3 is imported only where it is used

        return S3Store.from_settings(settings)
    return DirStore(settings.files_dir)


__all__ = ["DirStore", "FileStore", "PendingFile", "check_file_id", "new_file_id", "open_store"]
