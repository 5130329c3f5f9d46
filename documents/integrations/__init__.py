"""Clients of the services DocuElevate talks to, one small typed module each.

Each client takes its configuration in its constructor and has one ``from_settings()``
factory; its errors carry a machine-readable ``kind`` so that callers decide (retry or
give up) on data, never on the wording of a message. Tests build a client with their own
configuration or change the settings it reads; there are no module globals to patch.
"""
