"""Encrypt against the conformance kit's TransformerContract, with and without compression."""

from __future__ import annotations

import os

import pytest
import satchel
from satchel_conformance import TransformerContract
from satchel_crypto import Encrypt

KEY, OTHER, OLD = os.urandom(32), os.urandom(32), os.urandom(32)


class TestEncrypt(TransformerContract):
    compress = False

    @pytest.fixture
    def transformer(self) -> satchel.Transformer:
        return Encrypt(KEY, compress=self.compress)

    @pytest.fixture
    def other_transformer(self) -> satchel.Transformer:
        return Encrypt(OTHER, compress=self.compress)

    @pytest.fixture
    def rotation(self) -> tuple[satchel.Transformer, satchel.Transformer]:
        return (
            Encrypt(OLD, compress=self.compress),
            Encrypt(KEY, fallback_keys=[OLD], compress=self.compress),
        )


class TestEncryptCompressed(TestEncrypt):
    compress = True
