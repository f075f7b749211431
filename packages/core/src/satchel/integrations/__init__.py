"""One module per framework, each importing its framework only there (``import satchel``
imports none of them):

- `satchel.integrations.fastapi`: typed dependencies (``SessionsDep``, ``Session[T]``,
  ``OptionalSession[T]``, ``session(...)``) and ``install(app, sessions)``;
- `satchel.integrations.litestar`: ``SatchelPlugin(sessions)`` for ``plugins=[...]`` and
  ``session(...)`` providers;
- `satchel.integrations.quart`: ``install(app, sessions)`` and ``current_sessions()``;
- `satchel.integrations.starlette`: ``install(app, sessions)``.
"""
