"""A Twilio simulator for local runs and tests, and a WhatsApp chat CLI that drives it.

The simulator speaks the parts of Twilio that Switchboard touches (Messages API, media with
basic auth, signed inbound webhooks and status callbacks, approved templates), so the real
``twilio`` SDK runs on its real code path with only its HTTP client swapped (see
``twilio_sim.sdk``).
"""

from .app import create_app
from .config import Account, Number, SimConfig, Template, load_config

__all__ = ["Account", "Number", "SimConfig", "Template", "create_app", "load_config"]
