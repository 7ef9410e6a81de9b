"""The controller and edge APIs through Flask's test client, and the device's checks."""

import json
import os
import threading
import time

import numpy as np
import pytest

from edgecollab.controller import policies
from edgecollab.controller.service import PLAN_WAIT_S, ControllerState, create_app
from edgecollab.errors import EdgecollabError
from edgecollab.nodes import checkpoint
from edgecollab.nodes import workload
from edgecollab.nodes.device import DeviceAgent, SampleBuffer
from edgecollab.nodes.edge import CHECKPOINT_WAIT_S, EdgeStore
from edgecollab.nodes.edge import create_app as edge_app

TOKEN = 'secret-token'
AUTH = {'Authorization': 'Bearer ' + TOKEN}


@pytest.fixture
def controller():
    state = ControllerState(['d1', 'd2'], 'optimal', 'overlap')
    state.begin_period(1, {'d1': {'upload_bytes': 10}}, {}, 20.0, 'optimal')
    return state, create_app(state, TOKEN).test_client()


@pytest.fixture
def edge(tmp_path):
    store = EdgeStore(str(tmp_path), ['d1', 'd2'])
    return store, edge_app(store, TOKEN).test_client()


def test_plan_and_status(controller):
    state, client = controller
    assert client.get('/v1/plan/d1').json['upload_bytes'] == 10
    status = client.get('/v1/status').json
    assert status['period'] == 1 and status['capacity_mbit'] == 20.0


def test_plan_after_a_period_waits_for_the_next_one(controller):
    state, client = controller
    threading.Timer(0.3, lambda: state.begin_period(2, {'d1': {'upload_bytes': 20}}, {},
                                                     20.0, 'optimal')).start()
    began = time.monotonic()
    body = client.get('/v1/plan/d1?after=1').json
    waited = time.monotonic() - began
    assert body['period'] == 2 and body['upload_bytes'] == 20
    assert 0.25 <= waited < PLAN_WAIT_S, waited
    # Asked for a period it already has, it gets the current one at once.
    assert client.get('/v1/plan/d1?after=1').json['period'] == 2
    r = client.get('/v1/plan/d1?after=next')
    assert r.status_code == 400 and 'period number' in r.json['error']


def test_plan_wait_ends_when_the_run_ends(controller):
    state, client = controller
    threading.Timer(0.2, state.finish).start()
    began = time.monotonic()
    assert client.get('/v1/plan/d1?after=1').json['state'] == 'done'
    assert time.monotonic() - began < PLAN_WAIT_S


@pytest.mark.parametrize('kwargs,code,words', [
    ({'data': '{not json', 'headers': AUTH}, 400, 'not valid JSON'),
    ({'data': '[1, 2]', 'headers': AUTH}, 400, 'JSON object'),
    ({'json': {'device': 'd1', 'period': 1}}, 401, 'missing token'),
    ({'json': {'device': 'd1', 'period': 1}, 'headers': {'Authorization': 'Bearer x'}}, 403,
     'wrong token'),
    ({'json': {'device': 'd9', 'period': 1}, 'headers': AUTH}, 404, 'unknown device'),
    ({'json': {'device': 'd1', 'period': 'one'}, 'headers': AUTH}, 400, 'period'),
    ({'json': {'device': 'd1', 'period': 5}, 'headers': AUTH}, 400, 'not a period'),
    ({'json': {'device': 'd1', 'period': 1, 'upload_bytes': 'lots'}, 'headers': AUTH}, 400,
     'must be a finite number'),
    # Numbers: NaN and Infinity are no JSON numbers, 1e400 overflows to inf, negatives.
    ({'data': '{"device": "d1", "period": 1, "upload_bytes": NaN}', 'headers': AUTH}, 400,
     'not valid JSON'),
    ({'data': '{"device": "d1", "period": 1, "upload_bytes": 1e400}', 'headers': AUTH}, 400,
     'must be a finite number'),
    ({'json': {'device': 'd1', 'period': 1, 'model_bytes': -1}, 'headers': AUTH}, 400,
     'must be a finite number'),
    ({'json': {'device': 'd1', 'period': True}, 'headers': AUTH}, 400, 'integer'),
    ({'json': {'device': 'd1', 'period': 1, 'stage': 'later'}, 'headers': AUTH}, 400,
     "'stage' must be one of model, period"),
    ({'json': {'device': 'd1', 'period': 1, 'stage': ['model']}, 'headers': AUTH}, 400,
     "'stage' must be one of"),
    ({'json': {'device': 'd1', 'period': 1, 'resumed_bytes': -5}, 'headers': AUTH}, 400,
     'must be a finite number'),
    ({'json': {'device': 'd1', 'period': 10 ** 30}, 'headers': AUTH}, 400, 'integer'),
    ({'data': '{"device": "d1", "period": 1, "x": %s%s}' % ('[' * 5000, ']' * 5000),
      'headers': AUTH}, 400, 'nested too deeply'),
    ({'data': json.dumps({'device': 'd1', 'period': 1, 'pad': 'x' * 100000}),
      'headers': AUTH}, 413, 'allowed'),
])
def test_bad_reports_get_a_4xx_json_error(controller, kwargs, code, words):
    _, client = controller
    r = client.post('/v1/reports', content_type='application/json', **kwargs)
    assert r.status_code == code and words in r.json['error'], r.json


def test_good_report_is_kept(controller):
    state, client = controller
    r = client.post('/v1/reports', json={'device': 'd2', 'period': 1, 'upload_bytes': 5,
                                         'model_ok': True}, headers=AUTH)
    assert r.status_code == 200 and state.reports_of(1)['d2']['upload_bytes'] == 5


def test_unknown_device_plan_is_404(controller):
    _, client = controller
    r = client.get('/v1/plan/..%2Fetc')
    assert r.status_code == 404 and 'error' in r.json


def test_policy_change_needs_token_and_a_known_name(controller):
    state, client = controller
    assert client.put('/v1/policy', json={'policy': 'equal'}).status_code == 401
    for wrong in ('magic', ['equal'], {'a': 1}, None):
        r = client.put('/v1/policy', json={'policy': wrong}, headers=AUTH)
        assert r.status_code == 400 and 'known' in r.json['error'], (wrong, r.json)
    assert client.put('/v1/policy', json={'policy': 'equal'}, headers=AUTH).status_code == 200
    # The current period keeps its policy; the next one is planned with the new one.
    assert client.get('/v1/policy').json == {'policy': 'optimal', 'next': 'equal',
                                             'known': sorted(policies.POLICIES)}
    state.begin_period(2, {}, {}, 20.0, state.take_policy())
    assert client.get('/v1/policy').json['policy'] == 'equal'


def test_edge_counts_data_in_time_and_late(edge):
    store, client = edge
    store.deadlines[1] = float('inf')
    assert client.post('/v1/data/d1/1', data=b'x' * 5000, headers=AUTH).json['bytes'] == 5000
    store.deadlines[2] = 0.0
    r = client.post('/v1/data/d1/2', data=b'x' * 300, headers=AUTH).json
    assert r == {'bytes': 0, 'late_bytes': 300}
    assert client.get('/v1/data/d1/1').json['bytes'] == 5000
    assert client.get('/v1/data/2').json == {
        'd1': {'bytes': 0, 'late_bytes': 300, 'carried_bytes': 0},
        'd2': {'bytes': 0, 'late_bytes': 0, 'carried_bytes': 0}}
    # Those late bytes arrived in period 3 (no deadline of it is known yet).
    assert client.get('/v1/data/d1/3').json['carried_bytes'] == 300
    # Late bytes of period 5 arriving after period 6's deadline too arrived in period 7.
    store.deadlines.update({5: 0.0, 6: 0.0})
    client.post('/v1/data/d2/5', data=b'x' * 70, headers=AUTH)
    assert client.get('/v1/data/d2/7').json == {'bytes': 0, 'late_bytes': 0,
                                                 'carried_bytes': 70}
    assert client.post('/v1/data/d1/1', data=b'x').status_code == 401
    assert client.post('/v1/data/../1', data=b'x', headers=AUTH).status_code == 404
    assert client.post('/v1/data/d7/1', data=b'x', headers=AUTH).status_code == 404


def test_bytes_queued_at_the_deadline_are_in_time_though_read_later(tmp_path):
    """A busy edge agent reads a stream late: what its socket held at the deadline
    arrived in time; what came after it is late."""
    import socket
    store = EdgeStore(str(tmp_path), ['d1'])
    near, far = socket.socketpair()
    reader = near.makefile('rb', buffering=0)

    class Busy:
        """The agent's first read comes after the deadline."""
        def read(self, size):
            if far.fileno() >= 0 and not hasattr(self, 'woke'):
                self.woke = time.sleep(0.5)
                far.sendall(b'b' * 1000)      # arrives after the deadline
                far.shutdown(socket.SHUT_WR)
            return reader.read(size)

    try:
        far.sendall(b'a' * 3000)
        store.order(1, time.time() + 0.2, {}, seed=0)
        assert store.receive('d1', 1, Busy(), near) == (3000, 1000)
        assert store.counts('d1', 1) == (3000, 1000, 0)
        assert store.counts('d1', 2) == (0, 0, 1000)
        with open(tmp_path / 'data' / 'd1-1.bin', 'rb') as stored:
            assert stored.read() == b'a' * 3000
    finally:
        near.close()
        far.close()


def test_retransmitted_bytes_are_read_from_the_kernel():
    import socket
    from edgecollab.wire import bytes_retransmitted
    server = socket.create_server(('127.0.0.1', 0))
    client = socket.create_connection(server.getsockname())
    try:
        client.sendall(b'x' * 10000)
        assert bytes_retransmitted(client) == 0          # loopback loses nothing
        assert len(client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)) >= 216
    finally:
        client.close()
        server.close()
    assert bytes_retransmitted(client) == 0               # closed: nothing to say


def test_edge_serves_checkpoints_with_digest_and_range(edge, tmp_path):
    store, client = edge
    assert client.post('/v1/periods', json={'period': 1}, headers=AUTH).status_code == 400
    store._distil('d1', 1, {'size_bytes': 200000, 'model': 'tiny'}, seed=1)
    whole = client.get('/v1/checkpoints/d1/1')
    assert whole.status_code == 200
    digest = whole.headers['X-Checkpoint-Sha256']
    part = client.get('/v1/checkpoints/d1/1', headers={'Range': 'bytes=1000-'})
    assert part.status_code == 206 and part.data == whole.data[1000:]
    assert abs(len(whole.data) - 200000) < checkpoint.HEADER_ALLOWANCE + 2048
    path = tmp_path / 'c.npz'
    path.write_bytes(whole.data)
    assert checkpoint.digest(str(path)) == digest
    assert checkpoint.load(str(path))[0]['model'] == 'tiny'
    assert client.get('/v1/checkpoints/d1/2').status_code == 404


def test_ordered_checkpoint_is_sent_when_distilled_not_404(tmp_path):
    # 30 samples at 10 ms each: distillation takes 0.3 s after the order.
    store = EdgeStore(str(tmp_path), ['d1', 'd2'], compute_per_sample_s=0.01)
    client = edge_app(store, TOKEN).test_client()
    order = {'period': 1, 'upload_deadline': 0,
             'checkpoints': {'d1': {'size_bytes': 100000, 'trained_on': 30}}}
    assert client.post('/v1/periods', json=order, headers=AUTH).status_code == 200
    began = time.monotonic()
    r = client.get('/v1/checkpoints/d1/1')
    assert r.status_code == 200 and r.headers['X-Checkpoint-Sha256']
    assert 0.25 <= time.monotonic() - began < CHECKPOINT_WAIT_S
    # One not ordered is a 404 without waiting.
    began = time.monotonic()
    assert client.get('/v1/checkpoints/d2/1').status_code == 404
    assert time.monotonic() - began < 0.2


def test_a_replacement_checkpoint_is_a_revision_of_the_periods(tmp_path):
    # The controller replaced d1's checkpoint of period 1 within the period: the edge
    # keeps both, each with its own digest; a bad revision is refused.
    store = EdgeStore(str(tmp_path), ['d1'])
    client = edge_app(store, TOKEN).test_client()
    order = {'period': 1, 'upload_deadline': time.time() + 30,
             'checkpoints': {'d1': {'size_bytes': 300000, 'model': 'big'}}}
    assert client.post('/v1/periods', json=order, headers=AUTH).status_code == 200
    order = dict(order, revision=1, checkpoints={'d1': {'size_bytes': 100000,
                                                       'model': 'small'}})
    assert client.post('/v1/periods', json=order, headers=AUTH).status_code == 200
    first = client.get('/v1/checkpoints/d1/1')
    second = client.get('/v1/checkpoints/d1/1?revision=1')
    assert first.status_code == second.status_code == 200
    assert len(second.data) < len(first.data)
    assert first.headers['X-Checkpoint-Sha256'] != second.headers['X-Checkpoint-Sha256']
    assert client.get('/v1/checkpoints/d1/1?revision=2').status_code == 404
    assert client.get('/v1/checkpoints/d1/1?revision=x').status_code == 400
    # A restarted edge serves both again.
    again = edge_app(EdgeStore(str(tmp_path), ['d1']), TOKEN).test_client()
    assert again.get('/v1/checkpoints/d1/1?revision=1').data == second.data


def test_the_controller_revises_a_plan_only_within_its_period():
    state = ControllerState(['d1'], 'adaptive', 'overlap')
    state.begin_period(1, {'d1': {'model_bytes': 0, 'resume': {'period': 0}}}, {}, 10.0,
                       'adaptive')
    assert state.revise_plan(1, 'd1', {'model_bytes': 5.0, 'model': 'n'}) == 1
    plan = state.plan_for('d1')
    assert plan['revision'] == 1 and plan['model_bytes'] == 5.0 and 'resume' not in plan
    assert state.revise_plan(2, 'd1', {'model_bytes': 1.0}) is None


def make_agent(tmp_path):
    return DeviceAgent('d1', 'http://127.0.0.1:1', 'http://127.0.0.1:1', TOKEN,
                       str(tmp_path / 'dev'), SampleBuffer(10, 1.0, 1000),
                       workload.from_spec({'name': 'synthetic', 'sample_bytes': 1000}))


def test_device_rejects_a_corrupt_checkpoint_and_keeps_its_model(tmp_path):
    agent = make_agent(tmp_path)
    good = str(tmp_path / 'dev' / 'good.part')
    digest = checkpoint.write(good, 100000, {'model': 'a'}, seed=2)
    assert agent._deploy(good, digest, {'period': 1})['model_ok']
    bad = str(tmp_path / 'dev' / 'bad.part')
    digest = checkpoint.write(bad, 100000, {'model': 'b'}, seed=3)
    with open(bad, 'r+b') as f:
        f.seek(5000)
        f.write(b'\xff' * 16)
    result = agent._deploy(bad, digest, {'period': 2})
    assert not result['model_ok'] and 'digest' in result['model_error']
    assert agent.rejected == 1 and agent.model_meta['model'] == 'a'
    assert not os.path.exists(bad)


def test_truncated_checkpoint_does_not_load(tmp_path):
    path = str(tmp_path / 'c.npz')
    checkpoint.write(path, 100000, {'model': 'a'})
    with open(path, 'r+b') as f:
        f.truncate(50000)
    with pytest.raises(EdgecollabError, match='does not load'):
        checkpoint.load(path)


def test_sample_buffer_produces_at_its_rate():
    buf = SampleBuffer(100, 10.0, 1000)
    assert buf.take(1000) == 100        # starts with one period of data
    assert buf.take(1000) == 0
    assert np.isclose(buf.rate, 10.0)


def test_agents_are_seen_when_they_first_ask_for_a_plan(controller):
    state, client = controller
    assert state.unseen() == ['d1', 'd2']
    client.get('/v1/plan/d2')
    assert state.unseen() == ['d1']


def test_checkpoints_are_seeded_noise_distinct_by_seed(tmp_path):
    paths = [str(tmp_path / ('%d.npz' % i)) for i in range(3)]
    first = checkpoint.write(paths[0], 300000, {'model': 'a'}, seed=5)
    again = checkpoint.write(paths[1], 300000, {'model': 'a'}, seed=5)
    other = checkpoint.write(paths[2], 300000, {'model': 'a'}, seed=6)
    assert first == again and first != other
    assert checkpoint.load(paths[2])[0]['params'] == (300000 - checkpoint.HEADER_ALLOWANCE) // 4


@pytest.mark.parametrize('query', ['%C2%B2', '9' * 5000, '-1', '1.5', str(10 ** 7)])
def test_plan_after_must_be_a_period_number(controller, query):
    _, client = controller
    r = client.get('/v1/plan/d1?after=' + query)
    assert r.status_code == 400 and 'period number' in r.json['error'], r.json


@pytest.mark.parametrize('body,words', [
    ({'period': 1, 'upload_deadline': 0, 'checkpoints': {'d1': {'size_bytes': 'nan'}}},
     'size_bytes'),
    ({'period': 1, 'upload_deadline': 0, 'checkpoints': {'d1': {'size_bytes': -5}}},
     'size_bytes'),
    ({'period': 1, 'upload_deadline': 0, 'checkpoints': {'d1': {'size_bytes': 1e15}}},
     'size_bytes'),
    ({'period': True, 'upload_deadline': 0, 'checkpoints': {}}, 'period'),
    ({'period': 1, 'upload_deadline': 'soon', 'checkpoints': {}}, 'upload_deadline'),
    ({'period': 1, 'upload_deadline': 0, 'checkpoints': ['d1']}, 'checkpoints'),
    ({'period': 1, 'upload_deadline': 0, 'checkpoints': {'d1': 7}}, 'checkpoint order'),
    ({'period': 1, 'upload_deadline': 0,
      'checkpoints': {'d1': {'size_bytes': 1000, 'trained_on': -3}}}, 'trained_on'),
])
def test_bad_period_orders_get_a_400_and_order_nothing(edge, body, words):
    store, client = edge
    r = client.post('/v1/periods', json=body, headers=AUTH)
    assert r.status_code == 400 and words in r.json['error'], r.json
    assert not store.ordered


def test_edge_refuses_deep_json_and_impossible_periods(edge):
    store, client = edge
    deep = '{"period": 1, "x": %s%s}' % ('[' * 5000, ']' * 5000)
    r = client.post('/v1/periods', data=deep, headers=AUTH)
    assert r.status_code == 400 and 'nested too deeply' in r.json['error']
    huge = '9' * 300
    for method, url in (('post', '/v1/data/d1/' + huge), ('get', '/v1/data/d1/' + huge),
                        ('get', '/v1/data/' + huge), ('get', '/v1/checkpoints/d1/' + huge)):
        r = getattr(client, method)(url, headers=AUTH, data=b'x' * 10)
        assert r.status_code == 404 and 'no period' in r.json['error'], (url, r.json)



def test_a_resumed_download_fetches_the_revision_whose_part_it_holds(tmp_path):
    # A replacement (revision 1) that missed its deadline in period 1 is resumed in
    # period 2: the rest must come from revision 1, not from the period's first order.
    agent = make_agent(tmp_path)
    agent.part_revision[1] = 1
    resumed = {'period': 2, 'revision': 0, 'resume': {'period': 1, 'offset': 10}}
    assert agent._checkpoint_url(1, resumed).endswith('/v1/checkpoints/d1/1?revision=1')
    assert agent._checkpoint_url(2, {'period': 2, 'revision': 3}).endswith('/2?revision=3')
    assert agent._checkpoint_url(2, {'period': 2}).endswith('/v1/checkpoints/d1/2')


def test_a_revision_that_no_fetch_was_under_way_to_cut_is_still_fetched(tmp_path,
                                                                         monkeypatch):
    # The controller replaces the checkpoint while no fetch is under way for the watch
    # to cut (the first request found the checkpoint not ready, the next one had not
    # begun): the old checkpoint arrives whole, and the device must still fetch and
    # report the revision its plan now names.
    from edgecollab.nodes import device as device_mod
    agent = make_agent(tmp_path)
    now = time.time()
    plan = {'period': 3, 'revision': 0, 'model_bytes': 100, 'model': 'yolov8s',
            'download_window': [now, now + 30]}
    monkeypatch.setattr(device_mod, 'REVISION_POLL_S', 0.05)
    monkeypatch.setattr(agent, '_get_plan', lambda after: dict(
        plan, revision=1, model_bytes=200, model='yolov8m'))
    fetched = []

    def fetch(url, path, offset, deadline, watch=None):
        fetched.append(url)
        if len(fetched) == 1:            # the fetch no revision cut: it ends after one
            assert watch.revised.wait(20)
        with open(path, 'wb') as out:
            out.write(b'x' * 10)
        return 'digest', 10, 10
    monkeypatch.setattr(agent, '_fetch', fetch)
    monkeypatch.setattr(agent, '_deploy', lambda path, digest, plan: {'model_ok': True})
    result = agent.download(plan)
    assert fetched[0].endswith('/v1/checkpoints/d1/3') and fetched[-1].endswith('?revision=1')
    assert result['revision'] == 1 and result['model_ok']
