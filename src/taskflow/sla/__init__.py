"""The SLA engine: business calendars, SLA policies and the state of their targets (pure)."""

from taskflow.sla.calendar import ALWAYS, WEEKDAYS, BusinessCalendar, Span, holidays_from

__all__ = ["ALWAYS", "WEEKDAYS", "BusinessCalendar", "Span", "holidays_from"]
