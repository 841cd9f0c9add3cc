"""An OpenAI-compatible chat server on 127.0.0.1 for testing the llm agent over real HTTP.

The agent talks to it through litellm exactly as it would talk to a provider, so the tests cover
the request it really sends (prompt, headers, timeouts) and the way it handles what comes back.
Each request pops the next scripted ``Reply``: a JSON answer, broken text, an HTTP error, or a
reply slower than the client's timeout. Every request is recorded for assertions.

Use the ``llm_server`` fixture (import it into a test module, or list this module in
``pytest_plugins``); ``server.api_base`` is what goes into ``LLMAgentConfig.api_base``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

import pytest


@dataclass(kw_only=True)
class Reply:
    """One scripted response. ``content`` is the assistant message text; ``status`` != 200 sends an error."""

    content: str = ""
    status: int = 200
    delay_s: float = 0.0
    prompt_tokens: int = 120
    completion_tokens: int = 40

    @classmethod
    def answer(cls, overrides: dict[str, Any], rationale: str = "scripted", expected_effect: str = "lower val_bpb") -> "Reply":
        """A well-formed agent answer."""
        return cls(content=json.dumps({"overrides": overrides, "rationale": rationale, "expected_effect": expected_effect}))


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: str
    at: float = field(default_factory=time.monotonic)

    @property
    def prompt_text(self) -> str:
        """All message contents joined: what the model was shown."""
        return "\n".join(str(m.get("content", "")) for m in self.body.get("messages", []))


class ScriptedLLMServer:
    """A threaded HTTP server answering ``POST /v1/chat/completions`` from a queue of ``Reply``."""

    def __init__(self, default: Optional[Reply] = None):
        self.replies: deque[Reply] = deque()
        self.requests: list[RecordedRequest] = []
        self.default = default or Reply(status=503, content="no scripted reply left")
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="llm-server", daemon=True)
        self._thread.start()
        self.running = True

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def stop(self) -> None:
        """Stop answering: later calls get 'connection refused', as from a dead provider."""
        if not self.running:
            return
        self.running = False
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _next(self) -> Reply:
        with self._lock:
            return self.replies.popleft() if self.replies else self.default

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, so a stopped server really stops answering
            # (a kept-alive connection would outlive ``stop()``).
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                if server._stopping.is_set():
                    self.close_connection = True
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace")
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = {}
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                with server._lock:
                    server.requests.append(RecordedRequest(self.path, dict(self.headers), body, raw))
                reply = server._next()
                if reply.delay_s and server._stopping.wait(reply.delay_s):
                    return
                if reply.status != 200:
                    self._send(reply.status, {"error": {"message": reply.content or "scripted error", "type": "server_error"}})
                    return
                self._send(200, {
                    "id": f"chatcmpl-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "test-model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": reply.content}}],
                    "usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                              "total_tokens": reply.prompt_tokens + reply.completion_tokens},
                })

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to tell it

        return Handler


@pytest.fixture
def llm_server():
    server = ScriptedLLMServer()
    try:
        yield server
    finally:
        server.stop()
