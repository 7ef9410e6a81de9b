"""What the Flask services share: JSON errors, the per-run token, bounded JSON bodies,
and one rule for each kind of value a request carries (numbers, period numbers)."""

import hmac
import json
import math

from flask import abort, jsonify, request
from werkzeug.exceptions import HTTPException

from edgecollab.errors import quoted

MAX_JSON_BYTES = 64 * 1024
MAX_PERIOD = 10 ** 6      # the largest period number a request may name


def json_errors(app):
    """Make every HTTP error of app a JSON body {"error": ..., "status": ...}."""
    @app.errorhandler(HTTPException)
    def as_json(exc):
        response = jsonify(error=exc.description or exc.name, status=exc.code)
        response.status_code = exc.code
        return response


def check_token(token):
    """401 without a bearer token, 403 with a wrong one."""
    header = request.headers.get('Authorization', '')
    if not header.startswith('Bearer '):
        abort(401, description='missing token: send Authorization: Bearer <token>')
    if not hmac.compare_digest(header[len('Bearer '):].encode(), token.encode()):
        abort(403, description='wrong token')


def bad_request(message):
    """Abort with a 400 and message."""
    abort(400, description=message)


def json_body(max_bytes=MAX_JSON_BYTES):
    """The request's JSON object; 413 if larger than max_bytes, 400 if not a JSON object."""
    length = request.content_length
    if length is not None and length > max_bytes:
        abort(413, description='body of %d bytes is over the %d allowed' % (length, max_bytes))
    raw = request.get_data(cache=False)[:max_bytes + 1] if length is not None else \
        request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        abort(413, description='body is over the %d bytes allowed' % max_bytes)
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError):
        bad_request('body is not valid JSON (NaN and Infinity are not numbers here)')
    except RecursionError:
        bad_request('body is nested too deeply')
    if not isinstance(body, dict):
        bad_request('body must be a JSON object')
    return body


def _no_constant(name):
    raise ValueError('%s is not a number' % name)



def number(body, key, minimum=0.0, maximum=math.inf, integer=False, default=None):
    """body[key] (or default when absent) as a finite number in [minimum, maximum], an
    integer where asked; a 400 naming the field and the rule otherwise."""
    value = body.get(key, default) if isinstance(body, dict) else None
    kind = 'an integer' if integer else 'a finite number'
    if value is None:
        bad_request('field %r is required: %s in [%g, %g]' % (key, kind, minimum, maximum))
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) \
            or not math.isfinite(value) or not minimum <= value <= maximum:
        bad_request('field %r must be %s in [%g, %g], got %s'
                    % (key, kind, minimum, maximum, quoted(value, 40)))
    return value


def check_period(period):
    """404 unless period (from a URL) is a period number a run can have."""
    if not 0 <= period <= MAX_PERIOD:
        abort(404, description='no period %s (periods are 0 to %d)'
              % (quoted(period, 40), MAX_PERIOD))
    return period

