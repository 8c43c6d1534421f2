"""Message Structs: round trips through their union's decoder, strangers and garbage are refused."""

from __future__ import annotations

import typing
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorlib._wire import _messages as m

UNIONS: dict[str, Any] = {
    "CoreMessage": m.CoreMessage,
    "NodeMessage": m.NodeMessage,
    "HeadMessage": m.HeadMessage,
    "StoreMessage": m.StoreMessage,
    "Handshake": m.Handshake,
}
DECODERS = {name: msgspec.msgpack.Decoder(union) for name, union in UNIONS.items()}
HOME = {cls: name for name, union in UNIONS.items() for cls in typing.get_args(union)}
MESSAGES = sorted(HOME, key=lambda cls: cls.__name__)


def all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *all_subclasses(sub)]
    return found


def tag_of(cls: type) -> str | None:
    return mi.type_info(cls).tag  # type: ignore[attr-defined, no-any-return]


def strategy_for(t: mi.Type) -> st.SearchStrategy[Any]:
    """Values of msgspec type ``t``; fails loudly on a type this test does not know yet."""
    if isinstance(t, mi.IntType):  # within the field's bounds, if it has any
        low = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else -(2**63))
        high = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else 2**64 - 1)
        return st.integers(low, high)
    if isinstance(t, mi.FloatType):
        return st.floats(allow_nan=False)
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.StrType):
        return st.text(max_size=12)
    if isinstance(t, mi.BytesType):
        return st.binary(max_size=24)
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.ListType):
        return st.lists(strategy_for(t.item_type), max_size=3)
    if isinstance(t, mi.TupleType):
        return st.tuples(*[strategy_for(item) for item in t.item_types])
    if isinstance(t, mi.DictType):
        return st.dictionaries(strategy_for(t.key_type), strategy_for(t.value_type), max_size=3)
    if isinstance(t, mi.UnionType):
        return st.one_of([strategy_for(u) for u in t.types])
    if isinstance(t, mi.StructType):
        return st.builds(t.cls, **{f.name: strategy_for(f.type) for f in t.fields})
    if isinstance(t, mi.AnyType):  # JSON-like values (a job's runtime_env)
        return st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=12))
    raise NotImplementedError(f"no strategy for {t!r}: teach strategy_for about it")


def instances(cls: type) -> st.SearchStrategy[Any]:
    return strategy_for(mi.type_info(cls))


def wrong_value_for(t: mi.Type) -> Any:
    """A value msgspec must refuse for a field of type ``t``."""
    if isinstance(t, (mi.StrType, mi.BytesType)):
        return 12
    if isinstance(t, (mi.IntType, mi.FloatType, mi.BoolType)):
        return "12"
    if isinstance(t, (mi.ListType, mi.DictType, mi.StructType, mi.UnionType)):
        return 12.5
    raise NotImplementedError(repr(t))


# ---- the schema itself -------------------------------------------------------------


def test_every_message_has_its_own_tag() -> None:
    tags = [tag_of(cls) for cls in all_subclasses(m.Msg)]
    assert None not in tags
    assert len(tags) == len(set(tags)), sorted(tags)


def test_every_message_belongs_to_a_union() -> None:
    values = set(typing.get_args(m.Value))
    orphans = [cls.__name__ for cls in all_subclasses(m.Msg) if cls not in HOME and cls not in values]
    assert orphans == []


def test_every_request_carries_a_correlation_number_its_reply_echoes() -> None:
    pairs = [
        (m.GetObject, m.ObjectReply),
        (m.RequestLease, m.LeaseGranted),
        (m.RequestLease, m.LeaseRefused),
        (m.WorkerExitQuery, m.WorkerExitReply),
        (m.NodeInfoRequest, m.NodeInfoReply),
        (m.RegisterDriver, m.DriverRegistered),
        (m.ClusterInfoRequest, m.ClusterInfoReply),
        (m.StoreCreate, m.StoreFd),
        (m.StoreSeal, m.StoreOk),
        (m.StoreGet, m.StoreError),
        (m.StoreStatsRequest, m.StoreStats),
    ]
    for request, reply in pairs:
        for cls in (request, reply):
            assert "req" in cls.__struct_fields__, cls.__name__


# ---- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda cls: cls.__name__)
@given(data=st.data())
@settings(max_examples=15, deadline=None)
def test_round_trips_through_its_union(cls: type, data: st.DataObject) -> None:
    message = data.draw(instances(cls))
    decoded = DECODERS[HOME[cls]].decode(msgspec.msgpack.encode(message))
    assert type(decoded) is cls
    assert decoded == message


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda cls: cls.__name__)
@given(data=st.data())
@settings(max_examples=5, deadline=None)
def test_is_refused_by_every_other_union(cls: type, data: st.DataObject) -> None:
    encoded = msgspec.msgpack.encode(data.draw(instances(cls)))
    for name, decoder in DECODERS.items():
        if name != HOME[cls]:
            with pytest.raises(msgspec.ValidationError):
                decoder.decode(encoded)


def test_representative_task_round_trip() -> None:
    message = m.PushTask(
        task_id=b"t" * 16,
        fn_id=b"f" * 16,
        fn_blob=None,
        name="square",
        args=m.Inline(data=b"\x80\x05", buffers=[b"big"]),
        resolved=[
            m.Inline(data=b"1"),
            m.Stored(object_id=b"o" * 18, node_id=b"n" * 16, size=1 << 30, store="unix:/s.sock"),
            m.ErrorValue(data=b"boom"),
        ],
        num_returns=2,
        job_id="01",
        owner="unix:/d.sock",
        owner_id=b"d" * 16,
        attempt=3,
    )
    assert msgspec.msgpack.Decoder(m.CoreMessage).decode(msgspec.msgpack.encode(message)) == message


def test_an_older_sender_without_a_trailing_defaulted_field_still_decodes() -> None:
    # The evolution rule: fields are added at the end with a default.
    old = msgspec.msgpack.encode(["done", b"task", []])
    assert DECODERS["CoreMessage"].decode(old) == m.TaskDone(task_id=b"task", returns=[], elapsed=0.0)


def test_a_newer_sender_with_an_extra_trailing_field_still_decodes() -> None:
    new = msgspec.msgpack.encode(["cancel", b"task", 2, True, "a field from the future"])
    assert DECODERS["CoreMessage"].decode(new) == m.CancelTask(task_id=b"task", num_returns=2, recursive=True)


# ---- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda cls: cls.__name__)
@given(data=st.data())
@settings(max_examples=10, deadline=None)
def test_a_wrong_typed_field_is_refused_naming_its_position(cls: type, data: st.DataObject) -> None:
    fields = mi.type_info(cls).fields  # type: ignore[attr-defined]
    if not fields:
        return
    as_array = msgspec.msgpack.decode(msgspec.msgpack.encode(data.draw(instances(cls))))
    index = data.draw(st.integers(0, len(fields) - 1))
    as_array[index + 1] = wrong_value_for(fields[index].type)  # [0] is the tag
    with pytest.raises(msgspec.ValidationError, match=rf"\$\[{index + 1}\]"):
        DECODERS[HOME[cls]].decode(msgspec.msgpack.encode(as_array))


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda cls: cls.__name__)
def test_a_message_missing_a_required_field_is_refused(cls: type) -> None:
    required = [f for f in mi.type_info(cls).fields if f.required]  # type: ignore[attr-defined]
    if not required:
        return
    with pytest.raises(msgspec.ValidationError):
        DECODERS[HOME[cls]].decode(msgspec.msgpack.encode([tag_of(cls)]))


@pytest.mark.parametrize("encoded", [
    msgspec.msgpack.encode(["no-such-tag", 1]),
    msgspec.msgpack.encode({"t": "cancel", "task_id": b"x"}),  # a map, not an array
    msgspec.msgpack.encode("cancel"),
    msgspec.msgpack.encode([]),
])
def test_malformed_envelopes_are_validation_errors(encoded: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        DECODERS["CoreMessage"].decode(encoded)


@pytest.mark.parametrize("garbage", [b"", b"\xc1", b"\x93\x01", b"\xdb\xff\xff\xff\xff"])
def test_garbage_is_a_decode_error(garbage: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        DECODERS["CoreMessage"].decode(garbage)


# msgspec raises UnicodeDecodeError, not DecodeError, for a str that is not
# UTF-8 (msgspec/msgspec#714): whoever decodes frames must catch both
# (see test_channel.py::test_a_frame_with_invalid_utf8_is_a_protocol_error).
DECODE_FAILURES = (msgspec.DecodeError, UnicodeDecodeError)  # ValidationError is a DecodeError


def test_invalid_utf8_in_a_string_field_is_a_unicode_decode_error() -> None:
    not_utf8 = msgspec.msgpack.encode(["refused", "x"]).replace(b"\xa1x", b"\xa1\x80")
    with pytest.raises(DECODE_FAILURES):
        DECODERS["Handshake"].decode(not_utf8)


@pytest.mark.parametrize("name", sorted(DECODERS))
@given(garbage=st.binary(max_size=200))
@settings(max_examples=150, deadline=None)
def test_random_bytes_raise_nothing_but_decode_errors(name: str, garbage: bytes) -> None:
    try:
        DECODERS[name].decode(garbage)
    except DECODE_FAILURES:
        pass


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda cls: cls.__name__)
@given(data=st.data())
@settings(max_examples=10, deadline=None)
def test_corrupted_valid_messages_raise_nothing_but_decode_errors(cls: type, data: st.DataObject) -> None:
    encoded = bytearray(msgspec.msgpack.encode(data.draw(instances(cls))))
    for _ in range(data.draw(st.integers(1, 4))):
        encoded[data.draw(st.integers(0, len(encoded) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    try:
        DECODERS[HOME[cls]].decode(bytes(encoded[:cut]))
    except DECODE_FAILURES:
        pass


# ---- values a peer may not send -------------------------------------------------------


@pytest.mark.parametrize("num_returns", [-1, m.MAX_NUM_RETURNS + 1, 2**63 - 1])
@pytest.mark.parametrize(
    "message",
    [
        m.PushTask(task_id=b"t", fn_id=b"f", fn_blob=None, name="f", args=m.Inline(data=b""), resolved=[], num_returns=1,
                   job_id="", owner="", owner_id=b""),
        m.CallActor(call_id=b"c", method="m", args=m.Inline(data=b""), resolved=[], num_returns=1, job_id="", owner="", owner_id=b""),
        m.CancelTask(task_id=b"t"),
    ],
    ids=lambda message: type(message).__name__,
)  # fmt: skip
def test_a_call_with_an_absurd_number_of_returns_is_refused_by_the_decoder(message: Any, num_returns: int) -> None:
    """Else a callee builds a list of num_returns error replies: 2**63 of them is a dead worker."""
    encoded = msgspec.msgpack.encode(msgspec.structs.replace(message, num_returns=num_returns))
    with pytest.raises(msgspec.ValidationError, match="num_returns|Expected `int` >= 0|<= 100000"):
        DECODERS["CoreMessage"].decode(encoded)
    fine = msgspec.msgpack.encode(msgspec.structs.replace(message, num_returns=m.MAX_NUM_RETURNS))
    assert DECODERS["CoreMessage"].decode(fine).num_returns == m.MAX_NUM_RETURNS
