"""``switchboard-chat``: talk to the stack as a WhatsApp user, through the simulator."""
