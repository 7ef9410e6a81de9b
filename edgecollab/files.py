"""File digests, read in blocks so a large file is never held whole."""

import hashlib


def sha256(path):
    """sha256 hex digest of the file at path."""
    digest = hashlib.sha256()
    with open(path, 'rb') as src:
        for block in iter(lambda: src.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()
