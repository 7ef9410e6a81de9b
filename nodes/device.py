"""The device agent: runs inside each device host (requests).

Each period it fetches its plan from the controller (management network), uploads the
period's data to the edge in the upload window while it has data and time (data plane),
downloads its checkpoint in the download window (resuming with HTTP Range after a broken
connection), verifies the sha256 digest and loads it (a corrupt or truncated checkpoint
is rejected, counted and never deployed: the device keeps its previous model) and
reports what it sent and received, with timestamps, to the controller: what became of
the checkpoint as soon as the download ends (the next plan starts from it), the rest
after the upload deadline.  A checkpoint that missed its deadline stays on disk in part;
when the next plan says ``resume`` the device continues it from the bytes it holds
(HTTP Range: no byte is sent twice), else it is deleted.

Sensor data: samples of ``--sample-bytes`` are produced at ``--generated`` samples a
period into a bounded local buffer (the device starts with one period of data); an
upload takes whole samples from it, their bytes the workload's (``--workload``, a JSON
spec: nodes/workload.py).  With a workload that measures, the device starts with its
factory model, deploys the real weights a checkpoint carries and reports the top-1
accuracy of the model it holds on its own test set at each period's end
(``measured_accuracy``).

    python -m edgecollab.nodes.device --name d1 --controller URL --edge URL --token T ...
"""

import argparse
import http.client
import json
import logging
import os
import socket
import threading
import time
import urllib.parse

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection

from edgecollab.errors import EdgecollabError
from edgecollab.kinds import Timing
from edgecollab.nodes import checkpoint, workload
from edgecollab.nodes.stall import StallWatch, reset_on_close
from edgecollab.wire import CONTROL_TOS, bytes_retransmitted, delivery_progress

log = logging.getLogger('edgecollab.device')
POLL_S = 0.1
REVISION_POLL_S = 0.5     # how often a download asks whether its checkpoint was replaced
CONTROL_TIMEOUT_S = 5
REPORT_WAIT_S = 1.0      # after the upload deadline, before counting what arrived
# The latest a report leaves after the upload deadline: the wait, then the count from the
# edge, which may time out (the data plane down).
REPORT_LATEST_S = REPORT_WAIT_S + CONTROL_TIMEOUT_S
BLOCK_BYTES = 1 << 20     # the upload stream takes about 1 MB of samples at a time
PIECE_BYTES = 64 * 1024   # and sends it in pieces, checking the deadline between them
FACTORY_MODEL = 'factory.npz'   # the model a device ships with (a workload that learns)


class SampleBuffer:
    """Samples produced at a fixed rate, at most two periods' worth kept."""

    def __init__(self, per_period, period_s, sample_bytes):
        self.rate = per_period / period_s
        self.capacity = 2 * per_period
        self.sample_bytes = int(sample_bytes)
        self.count = float(per_period)
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def take(self, samples):
        """Take up to samples from the buffer; return how many were taken."""
        with self.lock:
            now = time.monotonic()
            self.count = min(self.capacity, self.count + (now - self.last) * self.rate)
            self.last = now
            taken = min(int(self.count), int(samples))
            self.count -= taken
            return taken


class ControlAdapter(HTTPAdapter):
    """Connections whose packets carry CONTROL_TOS: the link share gives them the
    priority child (a checkpoint download's request and ACKs)."""

    def init_poolmanager(self, *args, **kwargs):
        kwargs['socket_options'] = HTTPConnection.default_socket_options + [
            (socket.IPPROTO_IP, socket.IP_TOS, CONTROL_TOS)]
        super().init_poolmanager(*args, **kwargs)


def control_session():
    """A requests Session whose connections are marked as control."""
    session = requests.Session()
    session.mount('http://', ControlAdapter())
    return session


class UploadStream:
    """One period's upload: whole samples from the agent's buffer streamed to url in
    pieces until samples_left is zero or the deadline (a piece at a time, so that little
    is still on the way after it; what is left then is dropped: ``stall.reset_on_close``); a
    broken stream is resumed with what is left.  Runs
    in its own thread (``run``), over a new connection when one waits out a long
    retransmission timer (``stall.StallWatch``), the samples a broken request took that
    the edge did not acknowledge sent again; counts the bytes TCP retransmitted (the link
    carried them too)."""

    def __init__(self, agent, url, samples, deadline, period):
        self.agent, self.url, self.deadline = agent, url, deadline
        self.period = period
        self.samples_left = samples
        self.error = ''
        self.retries = 0
        self.done_retransmitted = 0      # by the stream's finished requests
        self.sock = None                 # the socket of the request under way
        self.stalled = False             # the last request's connection was cut stalled
        self.taken_bytes = 0             # sample bytes the request under way took

    def _blocks(self):
        sample = self.agent.buffer.sample_bytes
        try:
            while self.samples_left > 0 and time.time() < self.deadline:
                taken = self.agent.buffer.take(min(self.samples_left,
                                                   max(1, BLOCK_BYTES // sample)))
                if not taken:
                    time.sleep(POLL_S)
                    continue
                self.samples_left -= taken
                self.taken_bytes += taken * sample
                block = self.agent.sample_bytes(self.period, taken)
                for at in range(0, len(block), PIECE_BYTES):
                    if self._time_out_at_deadline() <= 0:
                        return
                    yield block[at:at + PIECE_BYTES]
        finally:
            # ... nor the request's last chunk, nor the wait for the edge's answer.
            self._time_out_at_deadline()

    def _time_out_at_deadline(self):
        """Make the request's socket time out at the deadline (no send outlasts it: a
        blocked one times out and _post resets the connection); return the seconds
        left (<= 0: it has passed)."""
        left_s = self.deadline - time.time()
        if self.sock is not None:
            self.sock.settimeout(max(left_s, 1e-3))
        return left_s

    def _post(self, timeout_s):
        """One streaming POST (chunked); return the edge's status code."""
        url = urllib.parse.urlsplit(self.url)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout_s)
        watch, answered = None, False
        self.taken_bytes, self.stalled = 0, False
        try:
            connection.connect()
            self.sock = connection.sock
            # The kernel takes a piece only when less than a piece is still unsent: what
            # is left at the deadline is a piece and what is in flight, not a send buffer
            # of megabytes that would drain into the next period's share.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, PIECE_BYTES)
            watch = StallWatch(self.sock, 'upload of period %d' % self.period)
            connection.request('POST', url.path, body=self._blocks(),
                               headers=self.agent.auth, encode_chunked=True)
            response = connection.getresponse()
            # Counted before the response is read: reading it closes the socket.
            self._count_retransmitted()
            response.read()
            answered = True
            return response.status
        finally:
            if watch is not None:
                watch.close()
                self.stalled = watch.cut
            if not answered and connection.sock is not None:
                self._give_back(connection.sock)
            self._count_retransmitted()
            if time.time() >= self.deadline and connection.sock is not None:
                reset_on_close(connection.sock)
            connection.close()

    def _give_back(self, sock):
        """A request that broke: the samples it took that the edge did not acknowledge
        (lost with the connection, or never sent) are sent again on the next one (the
        edge's acknowledged bytes include the request's header: never more than were
        lost)."""
        progress = delivery_progress(sock)
        if progress is None:
            return
        lost = self.taken_bytes - max(0, progress[0] - 1)       # the SYN counts one
        self.samples_left += max(0, lost) // self.agent.buffer.sample_bytes
        self.taken_bytes = 0

    def _count_retransmitted(self):
        sock, self.sock = self.sock, None
        if sock is not None:
            self.done_retransmitted += bytes_retransmitted(sock)

    @property
    def retransmitted(self):
        """Payload bytes TCP retransmitted so far (a stream still draining counts)."""
        sock = self.sock
        return self.done_retransmitted + (bytes_retransmitted(sock) if sock else 0)

    def run(self):
        """Stream (and resume) until the samples are sent or the deadline passes."""
        while self.samples_left > 0 and time.time() < self.deadline:
            # Connecting on a slow share may take seconds: its timeout runs past the
            # deadline (the sends end at it: _time_out_at_deadline).
            budget = max(1.0, self.deadline - time.time()) + 10.0
            try:
                status = self._post(budget)
                if status != 200:
                    self.error = 'edge answered %d' % status
                    return
            except (OSError, http.client.HTTPException) as exc:
                if self.stalled:
                    continue            # cut while waiting out a long timer: resume now
                if time.time() < self.deadline - 0.2:
                    self.error = 'upload interrupted: %s' % type(exc).__name__
                    self.retries += 1
                    time.sleep(POLL_S)


class DeviceAgent:
    """One device: its plan loop, uploads, downloads and reports."""

    def __init__(self, name, controller, edge, token, workdir, buffer, work):
        self.name, self.controller, self.edge = name, controller.rstrip('/'), edge.rstrip('/')
        self.auth = {'Authorization': 'Bearer %s' % token}
        self.workdir = workdir
        self.buffer = buffer
        self.work = work                   # the Workload: what samples and models are
        self.sent_samples = 0              # the stream's next sample
        self.stream_lock = threading.Lock()
        self.weights = self._factory_model() if work.measures else None
        self.model_meta = None
        self.rejected = 0
        # period -> the revision of that period's checkpoint whose part is on disk (a
        # resumed download must fetch the rest of the same one)
        self.part_revision = {}
        os.makedirs(workdir, exist_ok=True)

    def run(self):
        """Follow the controller's periods until it says the run is done."""
        done = 0
        while True:
            plan = self._get_plan(done)
            if plan is None or plan.get('period', 0) <= done:
                if plan is not None and plan.get('state') == 'done':
                    return
                if plan is None:
                    time.sleep(POLL_S)
                continue
            done = plan['period']
            # A period's wrap-up (late bytes draining, the report) must not delay the
            # next one: each period runs in its own thread.
            threading.Thread(target=self.run_period, args=(plan,), daemon=True,
                             name='period-%d' % done).start()

    def _factory_model(self):
        """The weights of the model the device ships with (FACTORY_MODEL in its folder,
        written before the agent starts), or the workload's when there is none."""
        path = os.path.join(self.workdir, FACTORY_MODEL)
        if not os.path.exists(path):
            return self.work.initial(self.name)
        return checkpoint.load(path)[1]

    def sample_bytes(self, period, count):
        """The bytes of the stream's next count samples, produced in period."""
        with self.stream_lock:
            first, self.sent_samples = self.sent_samples, self.sent_samples + count
        return self.work.samples(self.name, period, first, count)

    def _get_plan(self, after):
        """The plan of the first period after period after (the controller answers when
        it begins, or after a bounded wait with the current state); None on failure."""
        try:
            r = requests.get('%s/v1/plan/%s' % (self.controller, self.name),
                             params={'after': after}, timeout=CONTROL_TIMEOUT_S)
            return r.json() if r.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None

    def run_period(self, plan):
        """Upload and download as the plan says; report."""
        report = {'device': self.name, 'period': plan['period']}

        def deployed(result):
            # A checkpoint deployed within the period: the controller learns it now (a
            # larger one may follow).
            self._post(dict(report, stage='model', **result))

        def download():
            report.update(self.download(plan, deployed))
            if self.weights is not None:
                # The model held at the period's end (its download's deadline): the next
                # period's download may deploy another before this report leaves.
                report['measured_accuracy'] = self.work.score(self.weights, self.name,
                                                              plan['period'])
            self._post(dict(report, stage='model'))
        up = threading.Thread(target=lambda: report.update(self.upload(plan)))
        down = threading.Thread(target=download)
        up.start()
        if plan['timing'] == Timing.SEQUENTIAL:
            up.join()
        down.start()
        up.join()
        down.join()
        report['rejected_total'] = self.rejected
        log.info('period %d: sent %d bytes%s, model %s%s', plan['period'],
                 report.get('upload_bytes', 0), ' (%s)' % report['upload_error']
                 if report.get('upload_error') else '',
                 'deployed' if report.get('model_ok') else 'not deployed',
                 ' (%s)' % report['model_error'] if report.get('model_error') else '')
        self._post(report)

    def _post(self, report):
        """Send a report to the controller (three tries)."""
        for _ in range(3):
            try:
                r = requests.post('%s/v1/reports' % self.controller, json=report,
                                  headers=self.auth, timeout=CONTROL_TIMEOUT_S)
                if r.status_code != 200:
                    log.warning('report refused: %d %s', r.status_code, r.text[:200])
                break
            except requests.RequestException as exc:
                log.warning('report failed: %s', exc)
                time.sleep(POLL_S)

    # upload
    def upload(self, plan):
        """Stream the period's data until it is sent or the deadline (the plan's volume
        is what the policy expects its share to carry; the device sends what it has while
        the share lets it); a broken stream is resumed with what is left (the edge counts
        what arrived in time)."""
        start, deadline = plan['upload_window']
        _wait_until(start)
        began = time.time()
        sample = self.buffer.sample_bytes
        limit = plan.get('upload_limit_bytes', plan['upload_bytes'])
        stream = UploadStream(self, '%s/v1/data/%s/%d' % (self.edge, self.name, plan['period']),
                              int(limit // sample), deadline, plan['period'])
        # Count after the deadline, whether the stream ended early (bytes still in flight
        # then arrive in time) or still drains late bytes (the edge counts only what
        # arrived in time): the edge's count is then final.
        threading.Thread(target=stream.run, daemon=True).start()
        _wait_until(deadline + REPORT_WAIT_S)
        error, retries = stream.error, stream.retries
        sent = self._edge_count(plan['period']) if limit >= sample else 0
        if error and sent >= limit * 0.99:
            error = ''
        return {'upload_bytes': sent, 'upload_started': began, 'upload_finished': time.time(),
                'upload_error': error, 'upload_retries': retries,
                'upload_retransmitted_bytes': stream.retransmitted}

    def _edge_count(self, period):
        try:
            # Marked as control: the stream may still drain data into the class.
            with control_session() as session:
                r = session.get('%s/v1/data/%s/%d' % (self.edge, self.name, period),
                                timeout=CONTROL_TIMEOUT_S)
            return int(r.json().get('bytes', 0))
        except (requests.RequestException, ValueError):
            return 0

    # download
    def download(self, plan, deployed=None):
        """Fetch, verify and deploy this period's checkpoint before its deadline (or
        resume the one that missed the last deadline, when the plan says so).  Once one
        is deployed, deployed(result) reports it at once and the device waits out the
        download window for a larger one the controller may order (replan.py grows a
        checkpoint that arrived): it keeps the one it has should that miss."""
        result = {'model_bytes': 0, 'model_ok': False, 'model_error': '',
                  'download_started': time.time(), 'download_finished': None}
        resume = plan.get('resume') or {}
        source = int(resume.get('period', plan['period']))
        path = os.path.join(self.workdir, 'period-%d.npz.part' % source)
        for name in os.listdir(self.workdir):
            if name.endswith('.npz.part') and os.path.join(self.workdir, name) != path:
                _remove(os.path.join(self.workdir, name))
        if not plan.get('model_bytes'):
            _remove(path)
            revised = self._await_checkpoint(plan)
            if revised is None:
                result['model_error'] = 'no model planned'
                return result
            # The controller ordered one within the period (replan.py).
            plan, resume, source = revised, {}, revised['period']
            log.info('period %d: checkpoint ordered within the period (revision %d, %s '
                     'bytes)', source, plan['revision'], plan['model_bytes'])
            path = os.path.join(self.workdir, 'period-%d.npz.part' % source)
        start, deadline = plan['download_window']
        _wait_until(start)
        while True:
            plan, source, path, digest, got, held, total, error = self._fetch_checkpoint(
                plan, source, path, resume, deadline)
            result.update(model_bytes=result['model_bytes'] + got - held,
                          download_finished=time.time())
            log.info('period %d: checkpoint of period %d: %d bytes held before, %d now, '
                     'of %s', plan['period'], source, held, got, total)
            if result['model_ok']:
                # A larger one ordered after this one was deployed: kept only if whole.
                larger = self._deploy(path, digest, plan) if total is not None and \
                    got >= total else {'model_ok': False, 'model_error': 'missed the deadline'}
                if not larger['model_ok']:
                    _remove(path)
                    result['upgrade_error'] = 'revision %d: %s; revision %d kept' % (
                        plan.get('revision', 0), larger['model_error'], result['revision'])
                    return result
                result.update(larger, revision=plan.get('revision', 0))
                deployed(dict(result))
            else:
                result.update(resumed_bytes=held, revision=plan.get('revision', 0))
                if total is None or got < total:
                    # The part stays: the next plan may resume it (the same revision).
                    if source == plan['period']:
                        self.part_revision[source] = plan.get('revision', 0)
                    result['model_error'] = error or 'missed the deadline'
                    return result
                result.update(self._deploy(path, digest, plan))
                if not result['model_ok'] or deployed is None:
                    return result
                deployed(dict(result))
            revised = self._await_checkpoint(plan)
            if revised is None:
                return result
            plan, resume, source = revised, {}, revised['period']
            path = os.path.join(self.workdir, 'period-%d.npz.part' % source)
            log.info('period %d: a larger checkpoint ordered after this one arrived '
                     '(revision %d, %s bytes)', source, plan['revision'],
                     plan['model_bytes'])

    def _fetch_checkpoint(self, plan, source, path, resume, deadline):
        """Fetch plan's checkpoint (of period source, into path; resume: the part on
        disk is the start of it) until it is whole or the deadline, following the
        revisions of the plan; return (plan, source, path, digest, bytes on disk, bytes
        held before, total size or None, error)."""
        url = self._checkpoint_url(source, plan)
        held = os.path.getsize(path) if resume and os.path.exists(path) else 0
        if not held:
            _remove(path)
        digest, got, total, error = None, held, None, ''
        watch = PlanWatch(self, plan)
        try:
            # Until the deadline, while the checkpoint is not whole or a revision came
            # (one that came while no fetch was under way to cut, or after the old one
            # arrived whole: the controller plans with the revision).
            while time.time() < deadline and (total is None or got < total or
                                              watch.revised.is_set()):
                revised = watch.take()
                if revised is not None:
                    # The controller replaced the checkpoint: fetch the new one whole.
                    plan, source = revised, revised['period']
                    _remove(path)
                    path = os.path.join(self.workdir, 'period-%d.npz.part' % source)
                    _remove(path)
                    url = self._checkpoint_url(source, plan)
                    digest, got, held, total = None, 0, 0, None
                    log.info('period %d: checkpoint replaced (revision %d, %s bytes)',
                             source, plan['revision'], plan.get('model_bytes'))
                    if not plan.get('model_bytes'):
                        break
                try:
                    digest, got, total = self._fetch(url, path, got, deadline, watch)
                except requests.RequestException as exc:
                    # Resume from what is on disk (the interrupted fetch wrote it).
                    got = os.path.getsize(path) if os.path.exists(path) else 0
                    if watch.new is None:
                        error = 'download interrupted: %s' % type(exc).__name__
                        time.sleep(POLL_S)
                    # (else a revision cut the fetch: not a fault of the download)
        finally:
            watch.close()
        return plan, source, path, digest, got, held, total, error

    def _await_checkpoint(self, plan):
        """Until plan's download window closes, the revision of it that orders a
        checkpoint (plan had none, or its checkpoint arrived and a larger one follows),
        or None."""
        deadline = plan['download_window'][1]
        watch = PlanWatch(self, plan)
        try:
            while watch.revised.wait(max(0.0, deadline - REVISION_POLL_S - time.time())):
                revised = watch.take()
                if revised is not None and revised.get('model_bytes'):
                    return revised
        finally:
            watch.close()
        return None

    def _checkpoint_url(self, source, plan):
        """The edge's URL of the checkpoint plan has the device fetch (of period
        source; a replaced one's revision)."""
        url = '%s/v1/checkpoints/%s/%d' % (self.edge, self.name, source)
        revision = plan.get('revision', 0) if source == plan['period'] else \
            self.part_revision.get(source, 0)
        return url + ('?revision=%d' % revision if revision else '')

    def _fetch(self, url, path, offset, deadline, watch=None):
        """Fetch from offset (Range) until done, the deadline or a revision of the plan
        (watch); return (digest, bytes on disk, total size or None when the checkpoint
        is not ready yet)."""
        headers = {'Range': 'bytes=%d-' % offset} if offset else {}
        remaining = max(0.05, deadline - time.time())
        with control_session() as session, session.get(
                url, headers=headers, stream=True,
                timeout=(min(3.0, remaining), remaining + 1.0)) as r:
            if r.status_code == 404:
                time.sleep(POLL_S)
                return None, offset, None
            if r.status_code not in (200, 206):
                raise requests.RequestException('edge answered %d' % r.status_code)
            digest = r.headers.get('X-Checkpoint-Sha256')
            if r.status_code == 206:
                total = int(r.headers['Content-Range'].split('/')[-1])
            else:
                total, offset = int(r.headers['Content-Length']), 0
            got = offset
            # read1 returns what has arrived (a full-block read waits for the block,
            # which on a small share outlasts the deadline); at the deadline a timer
            # shuts the connection, which ends a read still waiting (a slow share sends
            # a segment every few hundred ms: a short read timeout would reconnect and
            # waste what was on the way).
            stop = threading.Timer(max(0.0, deadline - time.time()), r.raw.shutdown)
            stop.start()
            if watch is not None:
                watch.raw = r.raw                 # a revision cuts this fetch
                if watch.revised.is_set():        # or came before it could: none read
                    stop.cancel()
                    watch.raw = None
                    return digest, got, total
            try:
                with open(path, 'ab' if offset else 'wb') as out:
                    while got < total and time.time() < deadline:
                        try:
                            block = r.raw.read1(64 * 1024)
                        except (urllib3.exceptions.HTTPError, OSError) as exc:
                            if time.time() >= deadline:
                                break
                            raise requests.RequestException(str(exc)) from exc
                        if not block:
                            break
                        out.write(block)
                        got += len(block)
            finally:
                stop.cancel()
                if watch is not None:
                    watch.raw = None
            return digest, got, total

    def _deploy(self, path, digest, plan):
        if checkpoint.digest(path) != digest:
            self.rejected += 1
            _remove(path)
            log.warning('period %d: checkpoint digest mismatch: rejected, old model kept',
                        plan['period'])
            return {'model_ok': False, 'model_error': 'digest mismatch: rejected',
                    'rejected': True}
        try:
            meta, weights = checkpoint.load(path)
            if self.work.measures and not weights:
                raise EdgecollabError('checkpoint %s carries no model weights' % path)
        except EdgecollabError as exc:
            self.rejected += 1
            _remove(path)
            return {'model_ok': False, 'model_error': str(exc), 'rejected': True}
        os.replace(path, os.path.join(self.workdir, 'model.npz'))
        self.model_meta = meta
        if self.work.measures:
            self.weights = weights
        return {'model_ok': True, 'model_error': '', 'model': meta.get('model', ''),
                'rejected': False}


class PlanWatch:
    """While a checkpoint downloads: asks the controller every REVISION_POLL_S whether
    the period's plan was revised (its checkpoint replaced within the period: the
    controller's replan.py) and, when it was, keeps the new plan and cuts the fetch under
    way (``take`` hands it over)."""

    def __init__(self, agent, plan):
        self.agent, self.plan = agent, plan
        self.new = None
        self.revised = threading.Event()     # set when a revision arrives
        self.raw = None                      # the response being read, to cut
        self.stopped = threading.Event()
        threading.Thread(target=self._run, name='plan-watch', daemon=True).start()

    def _run(self):
        while not self.stopped.wait(REVISION_POLL_S):
            current = self.agent._get_plan(None)
            if current and current.get('period') == self.plan['period'] and \
                    current.get('revision', 0) > self.plan.get('revision', 0):
                self.plan = self.new = current
                self.revised.set()
                raw = self.raw
                if raw is not None:
                    try:
                        raw.shutdown()
                    except (OSError, AttributeError):
                        pass

    def take(self):
        """The revised plan, once, or None."""
        new, self.new = self.new, None
        self.revised.clear()
        return new

    def close(self):
        self.stopped.set()


def _wait_until(epoch_s):
    delay = epoch_s - time.time()
    if delay > 0:
        time.sleep(delay)


def _remove(path):
    if os.path.exists(path):
        os.unlink(path)


def main(argv=None):
    """Run one device agent until the controller ends the run."""
    parser = argparse.ArgumentParser(prog='edgecollab-device')
    parser.add_argument('--name', required=True)
    parser.add_argument('--controller', required=True, help='controller URL (management)')
    parser.add_argument('--edge', required=True, help='edge agent URL (data plane)')
    parser.add_argument('--token', required=True)
    parser.add_argument('--dir', required=True)
    parser.add_argument('--generated', type=float, required=True, help='samples a period')
    parser.add_argument('--period', type=float, required=True, help='seconds')
    parser.add_argument('--sample-bytes', type=float, required=True)
    parser.add_argument('--workload', default='{"name": "synthetic"}',
                        help='the workload spec (JSON, nodes/workload.py)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s ' + args.name + ' %(message)s')
    spec = dict(json.loads(args.workload), sample_bytes=args.sample_bytes)
    agent = DeviceAgent(args.name, args.controller, args.edge, args.token, args.dir,
                        SampleBuffer(args.generated, args.period, args.sample_bytes),
                        workload.from_spec(spec))
    agent.run()


if __name__ == '__main__':
    main()
