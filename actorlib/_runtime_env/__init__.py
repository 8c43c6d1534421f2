"""runtime_env: which fields exist, how directories become packages, and where nodes unpack them.

A package is a zip named by a content hash (``gcs://_ray_pkg_<hash>.zip``, as
Ray names them). Clients zip and upload; the head keeps packages in its
session (:class:`PackageStore`); every node unpacks each package once into
its cache (:func:`ensure_unpacked`) and workers run in it.
"""

from ._fields import (
    PY_MODULES_ENV,
    RUNTIME_ENV_KEYS_ENV,
    WORKING_DIR_ENV,
    RuntimeEnvError,
    check_name,
    check_runtime_env,
    env_of,
    inherited_env,
    package_name,
    package_uri,
    runtime_env_keys,
    uris_of,
)
from ._packaging import DEFAULT_MAX_SIZE, PackageTooLarge, zip_directory
from ._store import PackageStore
from ._unpack import UnsafePackage, check_zip, ensure_unpacked, unpacked_path

__all__ = [
    "DEFAULT_MAX_SIZE",
    "PY_MODULES_ENV",
    "RUNTIME_ENV_KEYS_ENV",
    "PackageStore",
    "PackageTooLarge",
    "RuntimeEnvError",
    "UnsafePackage",
    "WORKING_DIR_ENV",
    "check_name",
    "check_runtime_env",
    "check_zip",
    "ensure_unpacked",
    "env_of",
    "inherited_env",
    "package_name",
    "package_uri",
    "runtime_env_keys",
    "unpacked_path",
    "uris_of",
    "zip_directory",
]
