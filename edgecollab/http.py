"""What the Flask services share: JSON errors, the per-run token, bounded JSON bodies."""

import hmac
import json

from flask import abort, jsonify, request
from werkzeug.exceptions import HTTPException

MAX_JSON_BYTES = 64 * 1024


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
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        bad_request('body is not valid JSON')
    if not isinstance(body, dict):
        bad_request('body must be a JSON object')
    return body
