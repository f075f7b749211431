"""Registers ``mongodb://`` and ``mongodb+srv://``; PyMongo is imported on first open."""

from __future__ import annotations

import satchel


@satchel.hookimpl
def satchel_register(registry: satchel.Registry) -> None:
    registry.storage("mongodb", "satchel_mongo:MongoStorage.from_url")
    registry.storage("mongodb+srv", "satchel_mongo:MongoStorage.from_url")
