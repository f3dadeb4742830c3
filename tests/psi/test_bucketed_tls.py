"""The bucket tasks' TLS configuration keeps the role pinning of pet.transport.tls."""

from __future__ import annotations

import pytest

from pet.errors import InputError
from pet.psi.bucketed import data_tls
from pet.transport import make_test_pki
from pet.transport.tls import TLSConfig


def test_data_tls_requires_the_other_party_pinned(tmp_path):
    make_test_pki(tmp_path)
    mine = TLSConfig.from_dir(tmp_path, "party0")  # pinned to party1
    assert data_tls(mine, 0) is mine
    assert data_tls(None, 1) is None
    with pytest.raises(InputError, match="pin the peer to 'party1'"):
        data_tls(mine.for_dealer(), 0)  # the dealer link's configuration
    with pytest.raises(InputError, match="pin the peer to 'party0'"):
        data_tls(mine, 1)  # party 1 using a configuration that accepts party1 as its peer
