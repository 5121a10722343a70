"""Screens of the TUI: mail, calendar, compose, dialogs, help, first start, messenger."""
