"""Files the tool reads: opened only when they are regular files, and digests read in
blocks so a large file is never held whole.

The rule for every file edgecollab reads that a user names or a results folder holds
(scenario, trace, metadata.json, summary.json, a results CSV): it is opened without
blocking and read only if it is a regular file after symlinks and within its size bound;
anything else (a named pipe, a device, a directory, a socket) is one ConfigError line.
A named pipe opened the ordinary way blocks until a writer comes: forever.
"""

import hashlib
import json
import math
import os
import stat

from edgecollab.errors import ConfigError

KINDS = ((stat.S_ISDIR, 'a directory'), (stat.S_ISFIFO, 'a named pipe'),
         (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'),
         (stat.S_ISSOCK, 'a socket'))


def open_regular(path, mode='rb', max_bytes=None, encoding=None):
    """The file at path opened for reading in mode ('r' or 'rb'), if it is a regular file
    (after symlinks) of at most max_bytes bytes (None: any size), else a ConfigError
    naming path and what it is; an OSError (no such file, no permission) as it comes."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in KINDS if test(info.st_mode)), 'not a file')
            raise ConfigError('%s: %s, not a regular file' % (path, kind))
        if max_bytes is not None and info.st_size > max_bytes:
            raise ConfigError('%s: %d bytes, more than the %d such a file may hold'
                              % (path, info.st_size, max_bytes))
        os.set_blocking(fd, True)
        return os.fdopen(fd, mode, encoding=encoding if 'b' not in mode else None)
    except BaseException:
        os.close(fd)
        raise


def sha256(path):
    """sha256 hex digest of the file at path."""
    digest = hashlib.sha256()
    with open_regular(path) as src:
        for block in iter(lambda: src.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def write_replacing(path, text):
    """Write text (UTF-8) to a new file that then replaces path, whatever path was (a
    named pipe opened for writing would block until a reader comes)."""
    partial = '%s.partial' % path
    with open(partial, 'w', encoding='utf-8') as out:
        out.write(text)
    os.replace(partial, path)


def json_safe(value):
    """value with every float that is not finite (NaN, infinity) made None: JSON has no
    such numbers, and a file holding them is not JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path, value, default=None):
    """Write value as JSON to a new file that replaces path (json_safe first; default:
    what json.dumps calls for values it cannot write)."""
    write_replacing(path, json.dumps(json_safe(value), indent=2, default=default,
                                     allow_nan=False))
