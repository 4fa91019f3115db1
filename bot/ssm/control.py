"""``ssm:ResumeSession`` / ``ssm:TerminateSession`` for the data-channel client, via boto3.

The reference plugin sends these to whatever endpoint the AWS CLI passes (the *ECS* endpoint, see
docs/ssm-protocol.md §11.6); we take a real SSM client, so its region and ``AWS_ENDPOINT_URL_SSM`` apply.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from bot.ssm.errors import SessionControlError

_ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
_GONE = frozenset({"DoesNotExistException", "InvalidSessionId"})


class SessionControl(Protocol):
    async def resume_session(self, session_id: str) -> str | None:
        """A new token for the session, or None when the session no longer exists."""
        ...

    async def terminate_session(self, session_id: str) -> None: ...


class Boto3SessionControl:
    def __init__(self, ssm_client: Any) -> None:
        self._ssm = ssm_client

    async def resume_session(self, session_id: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            response = await asyncio.to_thread(self._ssm.resume_session, SessionId=session_id)
        except ClientError as exc:
            code = _code(exc)
            if code in _GONE:
                return None
            raise _mapped("ResumeSession", exc) from None
        except Exception as exc:  # endpoint unreachable, credentials: still one clear sentence
            raise _unreachable("ResumeSession", exc) from None
        return response.get("TokenValue") or None

    async def terminate_session(self, session_id: str) -> None:
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self._ssm.terminate_session, SessionId=session_id)
        except ClientError as exc:
            if _code(exc) in _GONE:
                return  # already over: that is what we wanted
            raise _mapped("TerminateSession", exc) from None
        except Exception as exc:
            raise _unreachable("TerminateSession", exc) from None


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _mapped(action: str, exc: Any) -> SessionControlError:
    code = _code(exc)
    message = str(exc.response.get("Error", {}).get("Message", "")).strip()
    if code in _ACCESS_DENIED:
        return SessionControlError(
            action,
            f"the bot's role is not allowed to call ssm:{action} ({code})",
            fix=f"Add ssm:{action} on arn:aws:ssm:*:*:session/ecs-execute-command-* to the bot's IAM policy.",
        )
    return SessionControlError(
        action, f"{code or 'error'}: {message}" if message else code or "unknown error", fix="Retry the command."
    )


def _unreachable(action: str, exc: Exception) -> SessionControlError:
    return SessionControlError(
        action,
        f"the SSM API could not be reached ({type(exc).__name__}: {exc})",
        fix="Check network access to ssm.<region>.amazonaws.com (or AWS_ENDPOINT_URL_SSM) and the bot's credentials.",
    )
