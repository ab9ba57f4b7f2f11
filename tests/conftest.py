"""Fixtures shared by the test modules."""

from __future__ import annotations
