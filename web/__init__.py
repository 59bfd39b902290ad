"""HTTP plumbing that the channels' endpoints and the desk share: the runtime key, body readers, JSON errors,
bearer auth, the route table and its OpenAPI document, rate limits, uploads and page rendering.

It imports `tickets` (and the libraries), never `channels`, `desk` or `switchboard`: those build on it."""
