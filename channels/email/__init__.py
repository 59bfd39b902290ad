"""The email channel: raw RFC 5322 messages received over SMTP become `Inbound` messages."""
