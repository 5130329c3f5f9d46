"""Organising documents: the managed lists, editing, bulk edits, notes, trash and history."""
