"""A small JSON-over-HTTP client for the REST APIs the dynamic providers drive (Kafka Connect,
Lenses HQ, Metabase): bounded timeouts, bounded retries on 409, and errors that never carry a
secret."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

__all__ = ["ApiError", "JsonApi", "Response", "mask"]

MASK = "[secret]"


class ApiError(RuntimeError):
    """A failed call, with the method, URL, status and the server's own message."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced, longest first (one may contain another)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    set_cookies: tuple[str, ...] = ()
    """Every Set-Cookie header (`headers` keeps only one per name)."""


@dataclass
class JsonApi:
    base_url: str
    timeout: float = 30.0
    """Seconds per request."""
    retries_on_conflict: int = 6
    """Writes answered 409 (e.g. a Connect rebalance) are retried this often."""
    backoff: float = 0.5
    """First retry delay in seconds; it doubles, up to 8 s."""
    secrets: tuple[str, ...] = ()
    """Values to mask in every error message."""
    headers: dict[str, str] = field(default_factory=dict)
    ca_pem: str = ""
    """https: the CA bundle (PEM) the server's certificate chains to; empty trusts the
    system's CAs. The server's name is always checked."""

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        ok: tuple[int, ...] = (200, 201, 204),
        missing_ok: bool = False,
    ) -> Response | None:
        """Send one call; None for a 404 when `missing_ok`. Retries 409 on writes."""
        attempts = 1 + (self.retries_on_conflict if method != "GET" else 0)
        delay = self.backoff
        for attempt in range(1, attempts + 1):
            response = self._send(method, path, body)
            if response.status == 409 and attempt < attempts:
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
                continue
            if response.status == 404 and missing_ok:
                return None
            if response.status not in ok:
                detail = _message(response.body)
                retried = f" after {attempt} attempts" if response.status == 409 else ""
                raise ApiError(
                    self._masked(
                        f"{method} {self.base_url}{path} failed with HTTP {response.status}"
                        f"{retried}: {detail}".rstrip(": ")
                    ),
                    response.status,
                )
            return response
        raise AssertionError("unreachable: the loop returns or raises")

    def _send(self, method: str, path: str, body: Any) -> Response:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - URLs come from stack settings
            self.base_url + path,
            data=data,
            method=method,
            headers={"Accept": "application/json", "Content-Type": "application/json",
                     **self.headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout,  # noqa: S310
                                        context=self._tls) as reply:
                return Response(reply.status, _decode(reply.read()), dict(reply.headers),
                                tuple(reply.headers.get_all("Set-Cookie") or ()))
        except urllib.error.HTTPError as error:
            return Response(error.code, _decode(error.read()), dict(error.headers or {}))
        except TimeoutError:
            raise ApiError(
                self._masked(f"{method} {self.base_url}{path} timed out after {self.timeout:g} s")
            ) from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, TimeoutError):
                message = f"timed out after {self.timeout:g} s"
            elif isinstance(reason, ssl.SSLCertVerificationError):
                message = (f"could not verify the server's certificate: "
                           f"{reason.verify_message or reason}")
            else:
                message = f"could not connect: {reason}"
            raise ApiError(self._masked(f"{method} {self.base_url}{path} {message}")) from None

    @cached_property
    def _tls(self) -> ssl.SSLContext:
        """Built once per client: TLS 1.2 or later, trusting `ca_pem` or the system's CAs."""
        context = ssl.create_default_context(cadata=self.ca_pem or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def _masked(self, text: str) -> str:
        return mask(text, self.secrets)


def _message(body: Any) -> str:
    """The server's own words: Connect's `message`, a Lenses agent's `error`
    (agent_BadRequest, with its field errors), HQ's `title`, or Metabase's `message` and its
    `errors` map of field -> message (nested maps flattened to `user.password`)."""
    if not isinstance(body, dict):
        return body if isinstance(body, str) else ""
    text = str(body.get("message") or body.get("error") or body.get("title") or "")
    fields = [f"{f.get('field')}: {f.get('error')}" for f in body.get("fields") or []
              if isinstance(f, dict)]
    errors = body.get("errors")
    if isinstance(errors, dict):
        fields += [f"{key}: {value}" for key, value in _flat(errors)]
    return "; ".join(filter(None, [text, *fields]))


def _flat(errors: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for key, value in errors.items():
        if isinstance(value, dict):
            found += _flat(value, f"{prefix}{key}.")
        else:
            found.append((f"{prefix}{key}", value))
    return found


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw.decode(errors="replace")
