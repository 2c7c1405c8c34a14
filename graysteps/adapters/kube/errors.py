"""The one way an apiserver failure becomes a sentence.

`apiserver_error(what, error)` turns a kubernetes ApiException, a KubeRestError
(the lean transport) or a urllib3 error into a GraystepsError:
`<what>: <status> <reason>: <apiserver message>; <what to do>`. The command that
called it names itself in front (`graysteps <command>: …`).
`failure_reason(error)` gives the same facts as a short phrase for one line of a
per-service report (release, rollback, status).
"""

from __future__ import annotations

import json
from typing import Any

from graysteps.errors import GraystepsError

HINTS = {
    400: "an admission webhook (Istio's validation) refused the object; fix the VirtualService or the catalog",
    401: "check the kubeconfig's credentials",
    403: "the account lacks the RBAC permission for this; grant it",
    404: "the namespace or the Istio CRDs are missing; create the namespace / install Istio",
    422: "the apiserver rejected the object; fix the VirtualService or the catalog",
}
RETRY = "check the apiserver and retry (the step is safe to repeat)"
_UNREACHABLE_SIGNS = ("Connection refused", "Max retries exceeded", "NewConnectionError", "RemoteDisconnected",
                      "timed out")


def apiserver_message(error: Any) -> str:
    """The apiserver's own message from an error's body (its Status object), else ''."""
    body = getattr(error, "body", None)
    if not body:
        return ""
    try:
        return str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError, TypeError):
        return str(body)[:300]


def no_answer(error: BaseException | None) -> bool:
    """True when the error (or one it was raised from) is the apiserver not answering at all."""
    seen = 0
    while error is not None and seen < 10:
        if getattr(error, "status", None) is None and any(sign in str(error) for sign in _UNREACHABLE_SIGNS):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def apiserver_error(what: str, error: Any, *, step: str | None = None, hints: dict[int, str] | None = None) -> GraystepsError:
    """`what: <status> <reason>: <message>; <hint>` (hints by status, `hints` first)."""
    status = getattr(error, "status", None)
    if status is None:  # no HTTP answer at all (urllib3 error, connection refused)
        reason = getattr(error, "reason", None) or error
        return GraystepsError(f"{what}: apiserver unreachable ({type(reason).__name__}); check --kubeconfig and that "
                              "the apiserver is up, then retry (the step is safe to repeat)", step=step)
    hint = {**HINTS, **(hints or {})}.get(status, RETRY)
    detail = apiserver_message(error)
    reason = getattr(error, "reason", "") or ""
    text = f"{what}: {status} {reason}".rstrip() + (f": {detail}" if detail else "") + f"; {hint}"
    return GraystepsError(text, step=step)


def failure_reason(error: BaseException) -> str:
    """A one-line reason for an error from the apiserver or from graysteps."""
    if no_answer(error):
        if isinstance(error, GraystepsError) and "unreachable" in error.message:
            return error.message
        why = "connection refused" if "Connection refused" in str(error) else type(error).__name__
        return f"apiserver unreachable ({why})"
    if isinstance(error, GraystepsError):
        return error.message
    status = getattr(error, "status", None)
    if status:
        return f"apiserver answered {status} {getattr(error, 'reason', '')}: {apiserver_message(error)}".strip().rstrip(":")
    return (str(error).splitlines()[0] if str(error) else type(error).__name__)[:300]
