"""The gateway: Twilio's only door in. Checks, stores an event, then answers."""
