"""The plugin: registered by name, import-light, and an optional install."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import satchel
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from satchel_crypto import Encrypt


def test_encrypt_is_registered_by_name() -> None:
    key = os.urandom(32)
    encrypt = satchel.transformer("encrypt", key=key, compress=True)
    assert isinstance(encrypt, Encrypt)
    bound = encrypt.bind("cookie:CART")
    assert Encrypt(key).bind("cookie:CART").decode(bound.encode(b"data")) == b"data"


def test_the_plugin_is_listed_with_its_transformer() -> None:
    (info,) = [p for p in satchel.installed_plugins() if p.distribution == "satchel-crypto"]
    assert info.transformers == ["encrypt"]
    assert info.error is None


def test_loading_the_plugin_does_not_import_cryptography() -> None:
    code = (
        "import sys, satchel, satchel_crypto._plugin\n"
        "satchel.installed_plugins()\n"
        "assert 'satchel_crypto._encrypt' not in sys.modules, 'Encrypt was imported'\n"
        "assert 'cryptography' not in sys.modules, 'cryptography was imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr


def _closure(distribution: str) -> set[str]:
    """Every distribution a plain ``pip install distribution`` pulls in (no extras)."""
    seen: set[str] = set()
    todo = [distribution]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def test_installing_satchel_alone_does_not_pull_in_cryptography() -> None:
    closure = _closure("satchel")
    assert {"satchel", "msgspec", "pluggy", "anyio"} <= closure
    assert "cryptography" not in closure


def test_installing_satchel_crypto_pulls_in_cryptography() -> None:
    assert {"satchel", "cryptography"} <= _closure("satchel-crypto")
