"""The sender: agent replies out through the Twilio Messages API, in order, never twice."""
