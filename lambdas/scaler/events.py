"""What woke the scaler, read from its EventBridge event. Every trigger leads to the same reconciliation
from live state; the trigger is parsed only to say in the decision log why the scaler ran.

Shapes (EventBridge envelope: ``source``, ``detail-type``, ``detail``, ``resources``, ``id``):

* CloudWatch alarm state change: source ``aws.cloudwatch``, detail-type
  ``CloudWatch Alarm State Change``, ``detail.alarmName``, ``detail.state.value``.
* EventBridge schedule: source ``aws.events``, detail-type ``Scheduled Event``,
  the rule ARN in ``resources``.
* Nudge (sent by this product, e.g. after a submit): source ``training-autoscaler``,
  detail-type ``Scale Nudge``, optional ``detail.reason``.

Anything else (e.g. a hand-made ``aws lambda invoke`` with ``{}``) is a manual
reconciliation: harmless, because the decision depends only on live state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts import NUDGE_DETAIL_TYPE, NUDGE_SOURCE
from lifecycle.scaling import Trigger, TriggerKind

_KINDS: dict[tuple[str | None, str | None], TriggerKind] = {
    ("aws.cloudwatch", "CloudWatch Alarm State Change"): TriggerKind.ALARM,
    ("aws.events", "Scheduled Event"): TriggerKind.SCHEDULE,
    (NUDGE_SOURCE, NUDGE_DETAIL_TYPE): TriggerKind.NUDGE,
}


def parse_trigger(event: Any) -> Trigger:
    if not isinstance(event, Mapping):
        return Trigger(TriggerKind.MANUAL)
    kind = _KINDS.get((_str(event.get("source")), _str(event.get("detail-type"))))
    event_id = _str(event.get("id"))
    detail = event.get("detail")
    detail = detail if isinstance(detail, Mapping) else {}
    if kind is TriggerKind.ALARM:
        state = detail.get("state")
        return Trigger(
            kind,
            event_id,
            name=_str(detail.get("alarmName")),
            state=_str(state.get("value")) if isinstance(state, Mapping) else None,
        )
    if kind is TriggerKind.SCHEDULE:
        resources = event.get("resources")
        rule = resources[0] if isinstance(resources, list) and resources else None
        return Trigger(kind, event_id, name=_str(rule))
    if kind is TriggerKind.NUDGE:
        return Trigger(kind, event_id, name=_str(detail.get("reason")))
    return Trigger(TriggerKind.MANUAL, event_id)


def _str(value: object) -> str | None:
    return value[:256] if isinstance(value, str) else None
