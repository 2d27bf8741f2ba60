"""EventBridge fixes for moto 5.2.5 (monkey patches, applied by ``apply()``)."""

from __future__ import annotations

import json

from moto.events import models as ev_models
from moto.events import responses as ev_responses
from moto.events import utils as ev_utils
from moto.events.exceptions import InvalidEventPatternException, ValidationException

# TestEventPattern's documented mandatory event fields.
REQUIRED_EVENT_FIELDS = ("id", "account", "source", "time", "region", "resources", "detail-type")
_APPLIED = False


def test_event_pattern(self: ev_responses.EventsHandler) -> str:
    """moto's handler is ``pass`` (an empty 200, no ``Result``); answer with moto's own matcher."""
    raw_pattern = self._get_param("EventPattern")
    raw_event = self._get_param("Event")
    if not raw_pattern:
        raise ValidationException("Parameter EventPattern is not valid.")
    pattern = ev_models.EventPattern.load(raw_pattern)  # InvalidEventPatternException when bad
    if not pattern.get_pattern():
        raise InvalidEventPatternException(reason="Empty pattern")
    try:
        event = json.loads(raw_event or "")
    except ValueError:
        raise ValidationException("Parameter Event is not valid.") from None
    if not isinstance(event, dict):
        raise ValidationException("Parameter Event is not valid.")
    missing = [f for f in REQUIRED_EVENT_FIELDS if f not in event]
    if missing:
        raise ValidationException(
            f"Parameter Event is not valid. Reason: missing required field(s): {', '.join(missing)}"
        )
    return json.dumps({"Result": bool(pattern.matches_event(event))})


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    ev_responses.EventsHandler.test_event_pattern = test_event_pattern
    # Events delivered to targets (SQS, logs) lack "account": moto's default input template omits it.
    template = ev_utils.EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        ev_utils.EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"version": "0",', '"version": "0", "account": "<account>",', 1
        )
    _APPLIED = True
