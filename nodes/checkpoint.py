"""Distilled-model checkpoints: real ``.npz`` files of a chosen size, with their digest.

A checkpoint holds float32 weight arrays whose parameter count makes the file the size
the controller chose (within the npz container's few hundred bytes of headers) and a
``meta`` array of JSON: period, device, model variant, size, the data volume it was
trained on.  With a workload that learns (nodes/workload.py) it carries the student's
real weights (arrays ``w_<name>``) and seeded noise pads it to the size; otherwise the
weights are all seeded noise (slices of one pool a process): what matters to the
emulation is then the bytes on the wire and that the device can verify and load what it
received.
"""

import json
import os
import threading
import zipfile

import numpy as np

from edgecollab import files
from edgecollab.errors import EdgecollabError

LAYERS = 8
HEADER_ALLOWANCE = 4096    # bytes of npz/zip headers the weights leave room for
MAX_BYTES = 4e9           # the largest checkpoint an order may ask for


def write(path, size_bytes, meta, seed=0, weights=None):
    """Write a checkpoint of about size_bytes to path (weights: {name: array}, a real
    model's, padded to the size); return its sha256 hex digest."""
    real = {'w_%s' % k: np.asarray(v) for k, v in (weights or {}).items()}
    used = sum(a.nbytes for a in real.values()) + 128 * len(real)
    params = max(LAYERS, int((size_bytes - used - HEADER_ALLOWANCE) // 4))
    noise = _noise(params, seed)
    per_layer = params // LAYERS
    arrays = {'layer%d' % i: noise[i * per_layer:(i + 1) * per_layer if i < LAYERS - 1
                                   else params] for i in range(LAYERS)}
    arrays.update(real)
    params += sum(a.size for a in real.values())
    arrays['meta'] = np.frombuffer(json.dumps(dict(meta, params=params)).encode(),
                                   dtype=np.uint8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as out:
        np.savez(out, **arrays)
    os.replace(tmp, path)
    return digest(path)


_POOL_SLACK = 1 << 20          # distinct start offsets a seed can pick
_pool = np.empty(0, dtype=np.float32)
_pool_lock = threading.Lock()


def _noise(count, seed):
    """count float32 weights of seeded noise: a slice, starting where seed says, of one
    pool drawn once per process and grown when a larger model is asked for.  Drawing
    fresh noise for every checkpoint cost the edge ~150 ms of CPU a 22 MB checkpoint,
    all at a period's start when every device's checkpoint is ordered."""
    global _pool
    with _pool_lock:
        if _pool.size < count + _POOL_SLACK:
            _pool = np.random.default_rng(0).standard_normal(
                max(count + _POOL_SLACK, 2 * _pool.size), dtype=np.float32)
        pool = _pool
    start = int(np.random.default_rng(seed).integers(_POOL_SLACK))
    return pool[start:start + count]


def digest(path):
    """sha256 hex digest of the file at path."""
    return files.sha256(path)


def load(path):
    """(metadata, {name: array} of the real weights) of the checkpoint at path after
    loading every array (a check that it is a complete, readable model)."""
    try:
        with np.load(path) as archive:
            meta = json.loads(archive['meta'].tobytes().decode())
            params = sum(archive[k].size for k in archive.files if k != 'meta')
            weights = {k[2:]: archive[k] for k in archive.files if k.startswith('w_')}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise EdgecollabError('checkpoint %s does not load: %s' % (path, exc)) from None
    if params != meta.get('params'):
        raise EdgecollabError('checkpoint %s holds %d parameters, its metadata says %s'
                              % (path, params, meta.get('params')))
    return meta, weights
