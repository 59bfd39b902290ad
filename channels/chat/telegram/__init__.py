"""The Telegram channel: updates (polling or webhook) become `Inbound`, acknowledged only after commit."""
