"""The conversation service: the Conversation aggregate, event-sourced on JetStream."""
