from .consumer import Consumer, ConsumerSpec, Handler, PermanentError
from .deadletters import dead_letter
from .publisher import Publisher
from .streams import ensure_input_stream, ensure_stream, ensure_streams, stream_config

__all__ = [
    "Consumer",
    "ConsumerSpec",
    "Handler",
    "PermanentError",
    "Publisher",
    "dead_letter",
    "ensure_input_stream",
    "ensure_stream",
    "ensure_streams",
    "stream_config",
]
