"""Serialization of user values, functions and errors."""

from ._errors import LOST_ARGUMENT, box, box_system, boxed_type, unbox
from ._functions import Exported, FunctionCache, export
from ._values import INLINE_THRESHOLD, Serialized, deserialize, deserialize_inline, record_ref, serialize
