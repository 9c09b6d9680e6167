"""Writes of the slas app, one module per topic: definitions, calendars, clocks."""
