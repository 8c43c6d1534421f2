"""The wire: addresses, framing, message Structs, authenticated channels."""

from ._address import is_loopback, is_unix, join, local_part, open_listener, open_stream, parts, reachable, split_host_port, unix_address, unix_path
from ._auth import AuthenticationError, check_token, new_token, read_token, write_token
from ._blocking import BlockingChannel
from ._channel import Channel, connect, serve
from ._errors import ConnectionFailed
from ._framing import DEFAULT_MAX_FRAME, FrameReader, ProtocolError
from ._messages import *  # noqa: F403
from ._pending import Pending
