from .consumer import Consumer, ConsumerSpec, Delivery, Handler, PermanentError, current_delivery
from .deadletters import dead_letter
from .handlers import Handlers
from .publish_retry import RetryingPublisher, Stored
from .publisher import Publisher
from .streams import ensure_input_stream, ensure_stream, ensure_streams, stream_config

__all__ = [
    "Consumer",
    "ConsumerSpec",
    "Delivery",
    "Handler",
    "Handlers",
    "PermanentError",
    "Publisher",
    "RetryingPublisher",
    "Stored",
    "current_delivery",
    "dead_letter",
    "ensure_input_stream",
    "ensure_stream",
    "ensure_streams",
    "stream_config",
]
