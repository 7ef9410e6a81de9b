"""The edge agent: runs inside the edge host (Flask).

Receives data batches from the devices (counted per device and period; bytes arriving
after the period's upload deadline are counted as late and do not train the model; a
byte arrives when the edge host's kernel has it, so bytes still queued in a stream's
socket at the deadline, which a busy agent reads a little later, are in time),
and on the controller's order distils each device's checkpoint of the chosen size from
what arrived (after an optional compute delay per sample), serving it with its sha256
digest and HTTP Range for resumed downloads.  With a workload that learns
(``--workload``, nodes/workload.py) the edge's model of each device learns from the
whole samples of the data that arrived in time in the order's ``data_period`` (and the
periods before it not learnt yet), and the checkpoint carries the distilled student's
weights.

    python -m edgecollab.nodes.edge --port 8080 --dir DIR --token T --devices d1,d2

API (mutating calls need ``Authorization: Bearer <token>``):
    GET  /health
    POST /v1/periods             {"period", "upload_deadline", "checkpoints":
                                  {device: {"size_bytes", "model", "trained_on",
                                  "data_period"}}, "revision"}: revision > 0 replaces
                                  the devices' checkpoints within the period
    POST /v1/data/<dev>/<period> raw bytes (a batch of samples)
    GET  /v1/data/<dev>/<period> {"bytes", "late_bytes", "carried_bytes"}: in time and
                                 late of the period's data, and the earlier periods'
                                 late bytes that arrived in this period (after the
                                 previous deadline, by this one): what the device's
                                 upload class carried besides this period's in time
    GET  /v1/data/<period>       {device: those counts} of every device (one call)
    GET  /v1/checkpoints/<dev>/<period>[?revision=N]   the .npz (Range supported),
                                 X-Checkpoint-Sha256;
                                 one ordered but still being distilled is sent when ready
                                 (the request waits up to CHECKPOINT_WAIT_S), one not
                                 ordered is a 404 at once
"""

import argparse
import array
import fcntl
import json
import logging
import os
import termios
import threading
import time

from flask import Flask, abort, jsonify, request, send_file

from edgecollab.nodes import checkpoint, workload
from edgecollab.nodes.stall import StallWatch
from edgecollab.http import (MAX_PERIOD, bad_request, check_period, check_token, json_body,
                             json_errors, number)

log = logging.getLogger('edgecollab.edge')
# A data stream is read this much at a time.  A read waits until it is whole, and what
# it already took from the socket is neither in the kernel's queue nor counted yet: the
# deadline's count can miss up to this much (and the 8 KB the reader buffers).
CHUNK = 16 * 1024
KEEP_PERIODS = 2      # data files of older periods are removed to bound disk use
# How long a request for an ordered checkpoint waits for its distillation (less than
# the devices' read timeout), so that the download starts when the file is ready
# rather than at the device's next poll.
CHECKPOINT_WAIT_S = 2.0
MAX_REVISION = 1000          # checkpoints a device's may be replaced by within a period


class EdgeStore:
    """Per device and period: bytes received (in time and late), checkpoints made."""

    def __init__(self, root, devices, compute_per_sample_s=0.0, work=None):
        self.root, self.devices = root, set(devices)
        self.compute_per_sample_s = compute_per_sample_s
        self.work = work if work is not None and work.measures else None
        # device -> [its Learner, the last period learnt from, a lock]
        self.learners = {d: [self.work.learner(d), 0, threading.Lock()]
                         for d in sorted(devices)} if self.work else {}
        if self.work:
            # Import and warm the learning libraries now, not in the first period (a
            # second of CPU that delayed period 1's checkpoints).
            self.work.initial(sorted(devices)[0])
        self.lock = threading.Lock()
        self.made = threading.Condition(self.lock)     # a checkpoint became ready
        # (dev, period) -> [in time, late, earlier periods' late bytes arriving in it]
        self.received = {}
        self.deadlines = {}      # period -> upload deadline (epoch s)
        # A checkpoint is (device, period, revision): a period's order is revision 0, a
        # checkpoint the controller replaced within the period (replan.py) the next.
        self.ready = {}          # (dev, period, revision) -> (path, digest)
        self.ordered = set()     # (dev, period, revision) ordered (ready or distilling)
        self.corrupt = set()     # (dev, period) whose checkpoint is damaged (fault tests)
        self.streams = {}        # period -> the Arrivals of its open data streams
        for sub in ('data', 'checkpoints'):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        # A restarted agent serves the checkpoints it distilled before (a device may be
        # resuming one).
        for name in sorted(os.listdir(os.path.join(root, 'checkpoints'))):
            parts = name[:-len('.npz')].split('-')
            revision = parts.pop()[1:] if len(parts) == 3 and parts[2][:1] == 'r' else '0'
            if name.endswith('.npz') and len(parts) == 2 and parts[0] in self.devices and \
                    parts[1].isdigit() and revision.isdigit():
                path = os.path.join(root, 'checkpoints', name)
                self.ready[(parts[0], int(parts[1]), int(revision))] = (
                    path, checkpoint.digest(path))

    def check_device(self, device):
        """404 unless device is one of the run's."""
        if device not in self.devices:
            abort(404, description='unknown device %r' % device)

    def receive(self, device, period, stream, sock=None):
        """Store a batch from stream; return (bytes in time, late bytes) of this batch.
        sock, the stream's connection: what its kernel queue holds at the deadline
        arrived in time."""
        path = os.path.join(self.root, 'data', '%s-%d.bin' % (device, period))
        in_time = late = 0
        arrivals = Arrivals(sock)
        with self.lock:
            self.streams.setdefault(period, set()).add(arrivals)
        try:
            with open(path, 'ab') as out:
                for block in _blocks(stream):
                    # The deadline is looked up for each block: a stream may begin before
                    # the period's order (which sets it) reaches the edge.
                    now = time.time()
                    on_time = arrivals.in_time(len(block), now,
                                               self.deadlines.get(period, float('inf')))
                    if on_time:
                        out.write(block[:on_time])
                    in_time += on_time
                    late += len(block) - on_time
                    with self.lock:
                        counts = self.received.setdefault((device, period), [0, 0, 0])
                        counts[0] += on_time
                        counts[1] += len(block) - on_time
                        if len(block) > on_time:
                            self.received.setdefault(
                                (device, self._arrival_period(period, now)),
                                [0, 0, 0])[2] += len(block) - on_time
        finally:
            with self.lock:
                self.streams.get(period, set()).discard(arrivals)
        self._forget(device, period - KEEP_PERIODS)
        log.info('data %s period %d: stream ended, %d in time, %d late', device, period,
                 in_time, late)
        return in_time, late

    def _arrival_period(self, period, now):
        """The period in which a late byte of period's data arriving at now arrived: the
        first later one whose deadline is now or after (or not yet known)."""
        later = period + 1
        while later in self.deadlines and now > self.deadlines[later]:
            later += 1
        return later

    def _deadline_passed(self, period):
        """At period's upload deadline: note what each open stream's kernel queue holds."""
        with self.lock:
            streams = list(self.streams.get(period, ()))
        for arrivals in streams:
            arrivals.note_queued()
            log.debug('period %d deadline: a stream had %d bytes queued', period,
                      arrivals.queued)

    def _forget(self, device, period):
        path = os.path.join(self.root, 'data', '%s-%d.bin' % (device, period))
        if os.path.exists(path):
            os.unlink(path)

    def counts(self, device, period):
        """(in time, late, carried) bytes from device in period (see received)."""
        with self.lock:
            return tuple(self.received.get((device, period), (0, 0, 0)))

    def order(self, period, upload_deadline, orders, seed, revision=0):
        """Distil the checkpoints of period in the background (revision > 0: ones that
        replace a device's checkpoint within the period)."""
        if revision == 0 or period not in self.deadlines:
            self.deadlines[period] = upload_deadline
            timer = threading.Timer(max(0.0, upload_deadline - time.time()),
                                    self._deadline_passed, args=(period,))
            timer.daemon = True
            timer.start()
        for device in orders:
            self.check_device(device)
        with self.lock:
            self.ordered.update((device, period, revision) for device in orders)
        for device, spec in orders.items():
            threading.Thread(target=self._distil, args=(device, period, spec, seed,
                                                        revision), daemon=True).start()

    def _distil(self, device, period, spec, seed, revision=0):
        began = time.monotonic()
        trained_on = float(spec.get('trained_on', 0))
        time.sleep(self.compute_per_sample_s * trained_on)
        path = os.path.join(self.root, 'checkpoints', '%s-%d%s.npz' % (
            device, period, '-r%d' % revision if revision else ''))
        meta = {'period': period, 'device': device, 'model': spec.get('model', ''),
                'size_bytes': spec['size_bytes'], 'trained_on_samples': trained_on}
        weights = None
        if self.work:
            weights, meta['learnt_samples'] = self._learn(
                device, int(spec.get('data_period', period - 1)), spec['size_bytes'])
        digest = checkpoint.write(path, spec['size_bytes'], meta,
                                  seed=seed + period * 1000 + revision * 100 +
                                  sorted(self.devices).index(device),
                                  weights=weights)
        if (device, period) in self.corrupt:
            # Fault injection (tests): flip bytes after the digest was taken.
            with open(path, 'r+b') as out:
                out.seek(os.path.getsize(path) // 2)
                out.write(b'\xde\xad\xbe\xef' * 4)
            log.warning('checkpoint %s period %d corrupted on purpose', device, period)
        with self.lock:
            self.ready[(device, period, revision)] = (path, digest)
            self.made.notify_all()
        log.info('checkpoint %s period %d: %d bytes, ready %.3f s after the order', device,
                 period, os.path.getsize(path), time.monotonic() - began)

    def _learn(self, device, data_period, size_bytes):
        """(the student's weights for a checkpoint of size_bytes, samples learnt so far):
        device's model learns from the data that arrived in time up to data_period."""
        learner, done, lock = self.learners[device]
        with lock:
            for k in range(done + 1, data_period + 1):
                path = os.path.join(self.root, 'data', '%s-%d.bin' % (device, k))
                if os.path.exists(path):
                    with open(path, 'rb') as src:
                        learnt = learner.add(src.read())
                    log.info('model of %s learnt from %d samples of period %d', device,
                             learnt, k)
            self.learners[device][1] = max(done, data_period)
            return learner.student(size_bytes), learner.arrived

    def checkpoint(self, device, period, wait_s=0.0, revision=0):
        """(path, digest) of a finished checkpoint, or None; one ordered but not ready
        is waited for up to wait_s."""
        key = (device, period, revision)
        with self.made:
            if key in self.ordered:
                self.made.wait_for(lambda: key in self.ready, timeout=wait_s)
            return self.ready.get(key)


class Arrivals:
    """When one data stream's bytes reached the edge host: those read before the deadline
    and those its socket's kernel queue held at the deadline (noted by note_queued) are
    in time; the rest is late."""

    def __init__(self, sock):
        self.sock = sock
        self.queued = 0          # bytes queued at the deadline not yet read

    def note_queued(self):
        if self.sock is None:
            return
        try:
            size = array.array('i', [0])
            fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, size)
            self.queued = size[0]
        except (OSError, ValueError):
            pass

    def in_time(self, size, now, deadline):
        """How many of size bytes read at now arrived by the deadline."""
        if now <= deadline:
            return size
        taken = min(size, self.queued)
        self.queued -= taken
        return taken


def _blocks(stream):
    """Blocks of a request body until its end or until the client breaks the stream
    (what arrived is kept; the device resumes with a new request)."""
    while True:
        try:
            block = stream.read(CHUNK)
        except (OSError, ValueError) as exc:
            log.info('a data stream broke: %s', exc)
            return
        if not block:
            return
        yield block


def _counts_body(counts):
    in_time, late, carried = counts
    return {'bytes': in_time, 'late_bytes': late, 'carried_bytes': carried}


def create_app(store, token, seed=0):
    """The edge agent's Flask app over store."""
    app = Flask('edgecollab.edge')
    app.config['MAX_CONTENT_LENGTH'] = None
    json_errors(app)

    @app.get('/health')
    def health():
        return jsonify(ok=True)

    @app.post('/v1/periods')
    def periods():
        check_token(token)
        body = json_body(max_bytes=1 << 20)
        period = number(body, 'period', 1, MAX_PERIOD, integer=True)
        deadline = number(body, 'upload_deadline')
        if not isinstance(body.get('checkpoints'), dict):
            bad_request('a period order needs "checkpoints": {device: {"size_bytes": ...}}')
        orders = {}
        for device, spec in body['checkpoints'].items():
            store.check_device(device)
            if not isinstance(spec, dict) or not isinstance(spec.get('model', ''), str):
                bad_request('checkpoint order of %s: {"size_bytes", "model", "trained_on"}'
                            % device)
            orders[device] = {'size_bytes': number(spec, 'size_bytes', 1,
                                                   checkpoint.MAX_BYTES),
                              'model': spec.get('model', '')[:100],
                              'trained_on': number(spec, 'trained_on', default=0),
                              'data_period': number(spec, 'data_period', 0, MAX_PERIOD,
                                                    integer=True, default=period - 1)}
        store.order(period, deadline, orders, seed,
                    number(body, 'revision', 0, MAX_REVISION, integer=True, default=0))
        return jsonify(ok=True, period=period)

    @app.post('/v1/data/<device>/<int:period>')
    def data(device, period):
        check_token(token)
        check_period(period)
        store.check_device(device)
        in_time, late = store.receive(device, period, request.stream,
                                      request.environ.get('werkzeug.socket'))
        return jsonify(bytes=in_time, late_bytes=late)

    @app.get('/v1/data/<device>/<int:period>')
    def data_counts(device, period):
        check_period(period)
        store.check_device(device)
        return jsonify(_counts_body(store.counts(device, period)))

    @app.get('/v1/data/<int:period>')
    def all_data_counts(period):
        check_period(period)
        return jsonify({device: _counts_body(store.counts(device, period))
                        for device in sorted(store.devices)})

    @app.get('/v1/checkpoints/<device>/<int:period>')
    def get_checkpoint(device, period):
        check_period(period)
        store.check_device(device)
        revision = request.args.get('revision', '0')
        if not (revision.isascii() and revision.isdigit() and len(revision) <= 4 and
                int(revision) <= MAX_REVISION):
            abort(400, description='revision must be 0 to %d' % MAX_REVISION)
        found = store.checkpoint(device, period, CHECKPOINT_WAIT_S, int(revision))
        if found is None:
            abort(404, description='no checkpoint for %s period %d yet' % (device, period))
        path, digest = found
        response = send_file(path, mimetype='application/octet-stream', conditional=True,
                             etag=digest)
        response.headers['X-Checkpoint-Sha256'] = digest
        sock = request.environ.get('werkzeug.socket')
        if sock is not None:
            # A download waiting out a long retransmission timer is cut: the device
            # resumes it from what it holds (stall.py).
            watch = StallWatch(sock, 'checkpoint of %s period %d' % (device, period))
            response.call_on_close(watch.close)
        return response

    return app


def main(argv=None):
    """Run the edge agent until killed."""
    parser = argparse.ArgumentParser(prog='edgecollab-edge')
    parser.add_argument('--listen', default='0.0.0.0')
    parser.add_argument('--port', type=int, default=8080)
    parser.add_argument('--dir', required=True)
    parser.add_argument('--token', required=True)
    parser.add_argument('--devices', required=True, help='comma-separated device names')
    parser.add_argument('--compute-per-sample', type=float, default=0.0, help='seconds')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--corrupt', action='append', default=[], metavar='DEVICE:PERIOD',
                        help='fault injection: damage this checkpoint after its digest')
    parser.add_argument('--workload', default='{"name": "synthetic"}',
                        help='the workload spec (JSON, nodes/workload.py)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s edge %(message)s')
    logging.getLogger('werkzeug').setLevel(logging.WARNING)
    store = EdgeStore(args.dir, args.devices.split(','), args.compute_per_sample,
                      workload.from_spec(json.loads(args.workload)))
    for item in args.corrupt:
        device, _, period = item.partition(':')
        store.corrupt.add((device, int(period)))
    from werkzeug.serving import make_server
    server = make_server(args.listen, args.port, create_app(store, args.token, args.seed),
                         threaded=True)
    log.info('edge agent on %s:%d', args.listen, args.port)
    server.serve_forever()


if __name__ == '__main__':
    main()
