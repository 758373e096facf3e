"""The renderer's own exception: a backend that was asked for cannot run here."""
from __future__ import annotations

__all__ = ["BackendUnavailableError"]


class BackendUnavailableError(RuntimeError):
    """An explicitly requested backend cannot run on this machine.

    Parameters
    ----------
    backend : str
        The backend's name (``"cuda"``, ``"cpp"``, ``"numba"``).
    reason : str
        Why it cannot run, and what to do about it.
    """

    def __init__(self, backend: str, reason: str):
        super().__init__(f"backend {backend!r} is not available: {reason}")
        self.backend, self.reason = backend, reason

    def __reduce__(self):
        return type(self), (self.backend, self.reason)
