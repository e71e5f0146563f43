"""Telephony call logs (a PBX's call-completed webhook). The JSON we accept, one call per request:

    {"call_id": "c-8812",                       required, unique per call
     "direction": "inbound" | "outbound",       required
     "status": "answered" | "missed" | "abandoned_ivr" | "busy" | "failed",   required
     "started_at": "2026-11-24T10:00:05+03:00", required; without an offset: CONTACTPULSE_TIME_ZONE
     "answered_at": "...", "ended_at": "...",   optional instants
     "duration_seconds": 184,                   optional (talk time)
     "caller": "+7 916 123-45-67", "callee": "+7 495 123-45-67",   required numbers
     "agent": "ext-101", "queue": "support",    optional
     "ticket_id": "crm-4411",                   optional: the ticket the PBX/CRM filed it under
     "transcript": "...",                       optional speech-to-text
     "survey_score": 4}                         optional: the caller's post-call IVR rating, 1-5

A customer's number is their conversation: without `ticket_id` the ticket is `pbx:<hash of number>`,
so a missed call and the call back meet on one ticket. Inbound answered: a contact and, at
`answered_at`, the agent's response. Inbound missed or abandoned in the IVR: a contact only - its
first response is the call back. Outbound answered: an agent reply to the callee's ticket; an outbound
call nobody answered is no response. A post-call survey score is a CSAT rating at `ended_at`. Numbers
are pseudonymized.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from processors.adapters.base import (
    AdapterContext,
    AdapterError,
    NotAContact,
    build_event,
    csat_score,
    load_json_object,
    local_instant,
)
from schemas.event import ContactEvent

_STATUSES: Final = frozenset({"answered", "missed", "abandoned_ivr", "busy", "failed"})


class PbxAdapter:
    name = "pbx"

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
        return None  # PBXs post from inside the network; put the endpoint behind it

    def parse(self, body: bytes, headers: Mapping[str, str], context: AdapterContext) -> list[ContactEvent]:
        call = load_json_object(body)
        missing = [
            f for f in ("call_id", "direction", "status", "started_at", "caller", "callee") if not call.get(f)
        ]
        if missing:
            raise AdapterError(f"call log without {', '.join(missing)}")
        direction, status = str(call["direction"]), str(call["status"])
        if direction not in ("inbound", "outbound"):
            raise AdapterError(f"unknown call direction {direction!r}")
        if status not in _STATUSES:
            raise AdapterError(f"unknown call status {status!r}")
        customer = str(call["caller"] if direction == "inbound" else call["callee"])
        token = context.pii.phone(customer)
        base = {
            "ticket_id": str(call.get("ticket_id") or f"pbx:{token}"),
            "channel": "phone",
            "source": "pbx",
            "customer_id": token,
            "agent": str(call["agent"]) if call.get("agent") else None,
            "pbx_call_id": str(call["call_id"]),
            "pbx_status": status,
            "pbx_direction": direction,
            "pbx_duration_seconds": call.get("duration_seconds"),
            "pbx_queue": call.get("queue"),
        }
        started = local_instant(call["started_at"], context, "started_at")
        answered = (
            local_instant(call["answered_at"], context, "answered_at") if call.get("answered_at") else started
        )
        transcript = context.pii.scrub(str(call["transcript"])) if call.get("transcript") else None
        call_id = call["call_id"]
        if direction == "outbound":
            if status != "answered":
                raise NotAContact(f"outbound call {status}: it reached nobody")
            return [
                build_event(
                    {
                        **base,
                        "event_id": f"pbx:{call_id}:callback",
                        "type": "agent_replied",
                        "occurred_at": answered,
                    }
                )
            ]
        received = build_event(
            {
                **base,
                "event_id": f"pbx:{call_id}:received",
                "type": "contact_received",
                "occurred_at": started,
                "text": transcript or f"[{status.replace('_', ' ')} call]",
            }
        )
        if status != "answered":
            return [received]
        reply = build_event(
            {**base, "event_id": f"pbx:{call_id}:answered", "type": "agent_replied", "occurred_at": answered}
        )
        score = call.get("survey_score")
        if score in (None, ""):
            return [received, reply]
        rating = csat_score(score)
        if rating is None:
            raise AdapterError(f"survey_score {score!r} is not 1-5")
        ended = local_instant(call["ended_at"], context, "ended_at") if call.get("ended_at") else answered
        rated = build_event(
            {
                **base,
                "event_id": f"pbx:{call_id}:survey",
                "type": "csat_submitted",
                "occurred_at": ended,
                "score": rating,
            }
        )
        return [received, reply, rated]
