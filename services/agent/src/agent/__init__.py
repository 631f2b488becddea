"""The agent service: ReplyRequested in, ReplyGenerated / ReplyFailed out."""
