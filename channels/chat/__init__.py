"""Chat channels: Telegram (aiogram) today; each turns a chat message into `Inbound`."""
