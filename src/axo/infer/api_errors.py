"""The one error shape `axo serve` answers with (OpenAI's): `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request the server answers with an OpenAI-style error (`error_response`)."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def body(self) -> dict[str, Any]:
        """The one error shape every failure gets: `{"error": {"message", "type", "param", "code"}}`."""
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def error_response(error: ApiError):
    """`error` as a JSON response with its status."""
    from fastapi.responses import JSONResponse

    return JSONResponse(error.body(), status_code=error.status)


def as_api_error(exc: Exception) -> ApiError:
    """`exc` itself, or a 500 naming it for a fault of the server."""
    return exc if isinstance(exc, ApiError) else ApiError(500, f"The server failed: {type(exc).__name__}: {exc}",
                                                          "server_error")


def busy(message: str) -> ApiError:
    return ApiError(503, message, "server_error", code="server_busy")
