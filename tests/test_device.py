"""The device agent's download against an edge in this process (no emulation): the
status a period's record gets says why its checkpoint did not arrive."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edgecollab.nodes import checkpoint, device, workload
from edgecollab.nodes.device import DeviceAgent, SampleBuffer

SIZE = 4_000_000        # bytes of a checkpoint: at CHUNK every PACE_S, 12 s to send
CHUNK = 32 * 1024
PACE_S = 0.1


class SlowEdge(BaseHTTPRequestHandler):
    """Serves any checkpoint slowly (it cannot arrive in a short window) and notes the
    paths asked for."""
    asked = []

    def do_GET(self):
        self.asked.append(self.path)
        self.send_response(200)
        self.send_header('Content-Length', str(SIZE))
        self.send_header('X-Checkpoint-Sha256', '0' * 64)
        self.end_headers()
        try:
            for _ in range(SIZE // CHUNK + 1):
                self.wfile.write(b'\0' * CHUNK)
                time.sleep(PACE_S)
        except OSError:
            pass                    # the device cut the fetch

    def log_message(self, *args):
        pass


@pytest.fixture
def edge():
    SlowEdge.asked = []
    server = ThreadingHTTPServer(('127.0.0.1', 0), SlowEdge)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield 'http://127.0.0.1:%d' % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_checkpoint_replaced_mid_fetch_that_misses_says_missed_not_interrupted(
        tmp_path, edge, monkeypatch):
    # The controller replaces the checkpoint while the device fetches it (replan.py):
    # the fetch is cut on purpose, the new one is fetched and misses its deadline.
    # The record must say it missed the deadline, not that the download was interrupted.
    monkeypatch.setattr(device, 'REVISION_POLL_S', 0.1)
    work = workload.from_spec({'name': 'synthetic'})
    agent = DeviceAgent('d1', 'http://127.0.0.1:1', edge, 'a' * 32, str(tmp_path / 'dev'),
                        SampleBuffer(10, 1.0, 1000), work)
    now = time.time()
    plan = {'period': 1, 'model_bytes': SIZE, 'model': 'x', 'revision': 0,
            'download_window': [now, now + 2.5]}
    revised = dict(plan, revision=1)
    monkeypatch.setattr(agent, '_get_plan',
                        lambda after: revised if time.time() > now + 0.6 else plan)
    result = agent.download(plan)
    assert any('revision=1' in p for p in SlowEdge.asked), SlowEdge.asked
    assert 0 < result['model_bytes'] < SIZE
    assert result['model_ok'] is False
    assert result['model_error'] == 'missed the deadline', result


def test_a_fetch_the_edge_breaks_says_interrupted(tmp_path, monkeypatch):
    # No edge listening: every fetch fails until the deadline, and the record says so.
    work = workload.from_spec({'name': 'synthetic'})
    agent = DeviceAgent('d1', 'http://127.0.0.1:1', 'http://127.0.0.1:1', 'a' * 32,
                        str(tmp_path / 'dev'), SampleBuffer(10, 1.0, 1000), work)
    monkeypatch.setattr(agent, '_get_plan', lambda after: None)
    now = time.time()
    result = agent.download({'period': 1, 'model_bytes': SIZE, 'model': 'x',
                             'download_window': [now, now + 1.0]})
    assert result['model_error'].startswith('download interrupted'), result


class Checkpoints(BaseHTTPRequestHandler):
    """Serves real checkpoints (files[revision]: path), revision 1 at pace[1] bytes a
    second (none: at once)."""
    files, pace = {}, {}

    def do_GET(self):
        revision = int(self.path.split('revision=')[1]) if 'revision=' in self.path else 0
        path = self.files[revision]
        with open(path, 'rb') as f:
            body = f.read()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('X-Checkpoint-Sha256', checkpoint.digest(path))
        self.end_headers()
        step = self.pace.get(revision)
        try:
            for i in range(0, len(body), CHUNK):
                self.wfile.write(body[i:i + CHUNK])
                if step:
                    time.sleep(CHUNK / step)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.mark.parametrize('larger_arrives', [True, False])
def test_a_larger_checkpoint_ordered_after_one_arrived_is_deployed_or_the_first_kept(
        tmp_path, monkeypatch, larger_arrives):
    # The first checkpoint arrives at once and is deployed (reported then: the
    # controller learns it arrived); the controller then orders a larger one (revision
    # 1, replan.py grows a checkpoint that arrived): deployed when it arrives whole,
    # else the device keeps the first and says why.
    monkeypatch.setattr(device, 'REVISION_POLL_S', 0.1)
    Checkpoints.files = {0: str(tmp_path / 'small.npz'), 1: str(tmp_path / 'large.npz')}
    checkpoint.write(Checkpoints.files[0], 200_000, {'model': 'small'})
    checkpoint.write(Checkpoints.files[1], 800_000, {'model': 'large'})
    Checkpoints.pace = {} if larger_arrives else {1: 100_000}     # 8 s for it
    server = ThreadingHTTPServer(('127.0.0.1', 0), Checkpoints)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        work = workload.from_spec({'name': 'synthetic'})
        agent = DeviceAgent('d1', 'http://127.0.0.1:1',
                            'http://127.0.0.1:%d' % server.server_address[1], 'a' * 32,
                            str(tmp_path / 'dev'), SampleBuffer(10, 1.0, 1000), work)
        now = time.time()
        plan = {'period': 1, 'model_bytes': 200_000, 'model': 'small', 'revision': 0,
                'download_window': [now, now + 3.0]}
        reported = []
        larger = dict(plan, revision=1, model_bytes=800_000, model='large')
        monkeypatch.setattr(agent, '_get_plan',
                            lambda after: larger if reported else plan)
        result = agent.download(plan, reported.append)
    finally:
        server.shutdown()
        server.server_close()
    assert reported[0]['model_ok'] and reported[0]['revision'] == 0
    assert result['model_ok'] is True
    if larger_arrives:
        assert result['revision'] == 1 and result['model'] == 'large', result
        assert [r['revision'] for r in reported] == [0, 1]
        assert result['model_bytes'] > 950_000 and 'upgrade_error' not in result
    else:
        assert result['revision'] == 0 and result['model'] == 'small', result
        assert result['upgrade_error'] == \
            'revision 1: missed the deadline; revision 0 kept', result
        assert time.time() >= now + 2.9


def test_a_broken_upload_sends_again_the_samples_the_edge_did_not_acknowledge(monkeypatch):
    """A request cut with samples in flight (a stalled connection) loses them with the
    connection: the next request sends as many again, never more than were lost."""
    import types
    agent = types.SimpleNamespace(buffer=types.SimpleNamespace(sample_bytes=100_000))
    stream = device.UploadStream(agent, 'http://edge/v1/data/d1/1', 40, time.time() + 60, 1)
    stream.samples_left = 30                 # 10 taken by the request that broke
    stream.taken_bytes = 10 * 100_000
    # The edge acknowledged 3.5 samples, the request's header and the SYN.
    monkeypatch.setattr(device, 'delivery_progress', lambda sock: (1 + 300 + 350_000, 64, 3.2))
    stream._give_back(object())
    assert stream.samples_left == 30 + 6     # 6.5 lost: 6 sent again, not 7
    assert stream.taken_bytes == 0
    monkeypatch.setattr(device, 'delivery_progress', lambda sock: None)
    stream._give_back(object())              # the kernel does not say: nothing to add
    assert stream.samples_left == 36


def test_a_request_that_fails_to_connect_after_a_cut_is_not_taken_for_another_cut():
    """A cut request makes the stream resume at once; a later request that cannot even
    connect is an error of its own (counted, with a pause), not the old cut."""
    import socket
    import types
    free = socket.socket()
    free.bind(('127.0.0.1', 0))
    port = free.getsockname()[1]
    free.close()                             # nothing listens there
    agent = types.SimpleNamespace(buffer=types.SimpleNamespace(sample_bytes=100_000),
                                  auth={})
    stream = device.UploadStream(agent, 'http://127.0.0.1:%d/v1/data/d1/1' % port, 4,
                                 time.time() + 60, 1)
    stream.stalled = True                    # the request before was cut
    with pytest.raises(OSError):
        stream._post(5.0)
    assert not stream.stalled
