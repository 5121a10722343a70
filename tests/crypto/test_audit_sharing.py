"""Properties of the audit key sharing (Shamir over GF(L)) and of threshold opening of seals."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from messenger.crypto import (
    AuditPartial,
    AuditShare,
    MalformedError,
    PolicyError,
    TamperedError,
    audit_public_key,
    combine_partials,
    combine_shares,
    new_audit_secret,
    open_sealed,
    open_sealed_with_secret,
    pack_partials,
    partial_decrypt,
    seal_to_audit_key,
    split_secret,
    unpack_partials,
)
from messenger.crypto._audit import L, lagrange_at_zero

secrets_ = st.integers(min_value=1, max_value=L - 1)
sizes = st.integers(min_value=1, max_value=7).flatmap(
    lambda n: st.tuples(st.integers(min_value=1, max_value=n), st.just(n))
)


@settings(max_examples=60, deadline=None)
@given(secret=secrets_, size=sizes, data=st.data())
def test_any_threshold_of_the_shares_recovers_the_secret(
    secret: int, size: tuple[int, int], data: st.DataObject
) -> None:
    threshold, count = size
    shares = split_secret(secret, threshold, count)
    assert sorted(s.x for s in shares) == list(range(1, count + 1))
    chosen = data.draw(st.permutations(shares)).copy()[
        : data.draw(st.integers(min_value=threshold, max_value=count))
    ]
    assert combine_shares(chosen) == secret


@settings(max_examples=60, deadline=None)
@given(secret=secrets_, other=secrets_, size=sizes)
def test_fewer_shares_than_the_threshold_fit_every_secret(
    secret: int, other: int, size: tuple[int, int]
) -> None:
    """k-1 shares say nothing: for any other secret a k-th share exists that completes them
    to that secret (so every secret is equally possible given the k-1)."""
    threshold, count = size
    assume(threshold >= 2)
    known = split_secret(secret, threshold, count)[: threshold - 1]
    # the polynomial through (0, other) and the known shares, evaluated at a fresh x
    points = [(0, other), *((s.x, s.y) for s in known)]
    xs = [x for x, _ in points]
    fresh_x = count + 1

    def at(x: int) -> int:
        total = 0
        for xi, yi in points:
            num, den = 1, 1
            for xj in xs:
                if xj != xi:
                    num = num * (x - xj) % L
                    den = den * (xi - xj) % L
            total += yi * num * pow(den, -1, L)
        return total % L

    completed = [*known, AuditShare(fresh_x, at(fresh_x))]
    assert combine_shares(completed) == other


def test_sharing_refuses_impossible_parameters() -> None:
    for threshold, count in ((0, 3), (4, 3), (2, 256)):
        with pytest.raises(PolicyError):
            split_secret(5, threshold, count)
    with pytest.raises(PolicyError):
        lagrange_at_zero(1, [1, 1, 2])


@settings(max_examples=20, deadline=None)
@given(
    payload=st.binary(max_size=300), pair=st.sampled_from(list(itertools.combinations(range(3), 2)))
)
def test_two_auditors_open_a_seal_and_one_does_not(payload: bytes, pair: tuple[int, int]) -> None:
    secret = new_audit_secret()
    sealed = seal_to_audit_key(audit_public_key(secret), payload)
    shares = split_secret(secret, 2, 3)
    partials = [partial_decrypt(shares[i], sealed) for i in pair]
    assert open_sealed(sealed, combine_partials(partials)) == payload
    assert open_sealed_with_secret(secret, sealed) == payload
    for alone in partials:
        with pytest.raises(TamperedError):
            open_sealed(sealed, combine_partials([alone]))
    # two shares of another key open nothing
    stranger = split_secret(new_audit_secret(), 2, 3)
    with pytest.raises(TamperedError):
        open_sealed(sealed, combine_partials([partial_decrypt(s, sealed) for s in stranger[:2]]))


def test_a_partial_for_one_seal_opens_no_other() -> None:
    secret = new_audit_secret()
    public = audit_public_key(secret)
    first, second = seal_to_audit_key(public, b"one"), seal_to_audit_key(public, b"two")
    shares = split_secret(secret, 2, 2)
    for_first = combine_partials([partial_decrypt(s, first) for s in shares])
    assert open_sealed(first, for_first) == b"one"
    with pytest.raises(TamperedError):
        open_sealed(second, for_first)


@given(
    items=st.lists(
        st.tuples(
            st.text(alphabet="0123456789abcdef", min_size=1, max_size=32),
            st.integers(min_value=1, max_value=255),
        ),
        max_size=5,
    )
)
def test_partials_and_shares_survive_their_encoding(items: list[tuple[str, int]]) -> None:
    point = audit_public_key(7)
    packed = {seal_id: AuditPartial(x, point) for seal_id, x in items}
    assert unpack_partials(pack_partials(list(packed.items()))) == packed
    share = AuditShare(3, L - 1)
    assert AuditShare.from_bytes(share.to_bytes()) == share
    with pytest.raises(MalformedError):
        AuditShare.from_bytes(share.to_bytes()[:-1])
    assert "y=" not in repr(share)  # the share value stays out of logs
