"""The pairwise ratchet's security properties, as a stolen device state would test them."""

from __future__ import annotations

import copy

import pytest

from messenger.crypto import (
    DeviceKeys,
    PolicyError,
    PrekeyBundle,
    PrekeyStore,
    RatchetChannel,
    ReplayError,
    TamperedError,
)
from messenger.crypto._ratchet import MAX_SKIP


def pair(*, one_time: bool = True) -> tuple[RatchetChannel, RatchetChannel, PrekeyStore]:
    a, b = DeviceKeys.generate("alice", "A"), DeviceKeys.generate("bob", "B")
    bob_prekeys = PrekeyStore()
    spk = bob_prekeys.new_signed_prekey(b)
    otk = bob_prekeys.new_one_time_prekeys(1)[0] if one_time else None
    alice = RatchetChannel(a, b.identity())
    alice.start(PrekeyBundle(b.identity(), spk, otk))
    return alice, RatchetChannel(b, a.identity()), bob_prekeys


def test_messages_open_out_of_order_once_each() -> None:
    alice, bob, prekeys = pair()
    sent = [alice.encrypt(f"m{i}".encode()) for i in range(5)]
    for i in (3, 0, 4, 1, 2):
        assert bob.decrypt(sent[i], prekeys).plaintext == f"m{i}".encode()
    for envelope in sent:
        with pytest.raises(ReplayError):
            bob.decrypt(envelope, prekeys)


def test_forward_secrecy_a_stolen_state_opens_no_earlier_message() -> None:
    alice, bob, prekeys = pair()
    earlier = alice.encrypt(b"vor dem Diebstahl")
    assert bob.decrypt(earlier, prekeys).plaintext == b"vor dem Diebstahl"
    stolen = copy.deepcopy(bob)
    with pytest.raises(ReplayError):  # its key is gone from the state
        stolen.decrypt(earlier, copy.deepcopy(prekeys))


def test_post_compromise_recovery_after_both_sides_spoke() -> None:
    alice, bob, prekeys = pair()
    bob.decrypt(alice.encrypt(b"hallo"), prekeys)
    stolen = copy.deepcopy(bob)  # the attacker copies bob's whole state, then loses access
    bob_prekeys_copy = copy.deepcopy(prekeys)
    alice.decrypt(bob.encrypt(b"antwort"), PrekeyStore())
    bob.decrypt(alice.encrypt(b"neuer Schluessel"), prekeys)
    alice.decrypt(bob.encrypt(b"noch eine Runde"), PrekeyStore())
    later = alice.encrypt(b"nach der Erholung")
    assert bob.decrypt(later, prekeys).plaintext == b"nach der Erholung"
    with pytest.raises((TamperedError, ReplayError)):
        stolen.decrypt(later, bob_prekeys_copy)


def test_a_one_time_prekey_starts_one_session_only() -> None:
    alice, bob, prekeys = pair()
    first = alice.encrypt(b"eins")
    bob.decrypt(first, prekeys)
    fresh_bob = RatchetChannel(bob.own, bob.peer)  # a responder that lost its sessions
    with pytest.raises(ReplayError):
        fresh_bob.decrypt(first, prekeys)


def test_tampering_changes_nothing_and_is_refused() -> None:
    alice, bob, prekeys = pair()
    envelope = bytearray(alice.encrypt(b"Dosis 5 mg"))
    envelope[-20] ^= 1
    with pytest.raises(TamperedError):
        bob.decrypt(bytes(envelope), prekeys)
    assert bob.sessions == {} and len(prekeys.one_time) == 1  # nothing used up
    envelope[-20] ^= 1
    assert bob.decrypt(bytes(envelope), prekeys).plaintext == b"Dosis 5 mg"


def test_a_gap_beyond_the_skip_limit_is_refused() -> None:
    alice, bob, prekeys = pair(one_time=False)
    bob.decrypt(alice.encrypt(b"0"), prekeys)
    for _ in range(MAX_SKIP + 1):
        alice.encrypt(b"lost")
    with pytest.raises(PolicyError):
        bob.decrypt(alice.encrypt(b"far"), prekeys)


def test_a_message_for_another_device_is_refused() -> None:
    alice, _, prekeys = pair()
    carol = RatchetChannel(DeviceKeys.generate("carol", "C"), alice.own.identity())
    with pytest.raises(TamperedError):
        carol.decrypt(alice.encrypt(b"x"), prekeys)


def test_a_restored_session_never_sends_with_a_message_key_used_before() -> None:
    alice, bob, prekeys = pair()
    bob.decrypt(alice.encrypt(b"eins"), prekeys)
    saved = alice.to_json()
    alice.encrypt(b"nach dem Speichern")  # sent, then alice crashes before saving again
    restored = RatchetChannel(alice.own, alice.peer)
    restored.load(saved)
    assert not restored.ready  # it must claim new prekeys instead of reusing the old chain
    # it still opens what bob sends on the restored session
    assert restored.decrypt(bob.encrypt(b"antwort"), PrekeyStore()).plaintext == b"antwort"
    assert restored.ready  # the peer's new ratchet key gave it a fresh sending chain
    assert bob.decrypt(restored.encrypt(b"wieder da"), prekeys).plaintext == b"wieder da"
